import os
import subprocess
import sys
import textwrap

import jax
import pytest

import eqxppo
from eqxppo.__main__ import main


# A fresh process: importing eqxppo (every subpackage, the command line) must leave JAX's
# backends unstarted, so that `use_cpu_cores` can still set the device count after it.
_FRESH = textwrap.dedent(
    """
    import numpy as np
    import eqxppo, eqxppo.autorl, eqxppo.sweeps, eqxppo.envs, eqxppo.__main__
    from eqxppo._cores import backends_started
    assert not backends_started(), "importing eqxppo started JAX's backends"
    assert eqxppo.use_cpu_cores(2) == 2
    import jax, jax.random as jr
    from eqxppo import PPO, make_env
    assert jax.device_count() == 2, jax.devices()
    assert eqxppo.use_cpu_cores(2) == 2  # the same count again is fine
    try:
        eqxppo.use_cpu_cores(3)
    except RuntimeError as error:
        assert "before the first JAX computation" in str(error), error
    else:
        raise AssertionError("a second count was accepted")

    env = make_env("gymnax", "CartPole-v1", n_envs=4)
    base = {"minibatch_size": 32, "update_epochs": 2}
    configs = [{**base, "n_steps": 16, "learning_rate": 3e-3}]  # a group of one
    configs += [{**base, "n_steps": 32, "learning_rate": lr} for lr in (1e-3, 3e-3, 1e-2, 1e-4)]
    budget = dict(n_total_timesteps=512, n_eval_steps=2, n_eval_episodes=3)
    out = {}
    for name, devices in (("two", None), ("one", jax.devices()[:1])):
        pop = PPO.population(configs, env, seeds=(0,), nas_config={"hidden_size": 16},
                             devices=devices)
        state, result = pop.train(pop.init(jr.key(0)), **budget)
        weights = [rs.train_state.network.actor.layers[0].weight for rs in state.groups]
        out[name] = (
            [g.n_padded for g in pop.groups],
            [len(w.sharding.device_set) for w in weights],
            np.asarray(result.eval_rewards),
            pop.get_hparams(state)["learning_rate"],
            [np.asarray(w[: len(g.members)]) for w, g in zip(weights, pop.groups)],
        )
    # The one-member group runs on one device with one padding copy (two rows a device:
    # one row would compile another program); the four-member group is sharded.
    assert out["two"][:2] == ([2, 4], [1, 2]), out["two"][:2]
    assert out["one"][:2] == ([2, 4], [1, 1]), out["one"][:2]
    np.testing.assert_allclose(out["two"][2], out["one"][2])
    np.testing.assert_allclose(out["two"][3], [3e-3, 1e-3, 3e-3, 1e-2, 1e-4])
    for a, b in zip(out["two"][4], out["one"][4]):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    print("OK")
    """
)


@pytest.mark.compat
def test_members_shard_over_one_cpu_device_per_core_with_two_rows_a_device():
    env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "JAX_PLATFORMS")}
    proc = subprocess.run(
        [sys.executable, "-c", _FRESH], env=env, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0 and "OK" in proc.stdout, proc.stderr[-4000:]


def test_use_cpu_cores_after_jax_started_accepts_only_the_count_it_has():
    jax.devices()  # this process has started
    n = len(jax.devices("cpu"))
    assert eqxppo.use_cpu_cores(n) == n
    with pytest.raises(RuntimeError, match=f"already started with {n} CPU"):
        eqxppo.use_cpu_cores(n + 1)
    with pytest.raises(ValueError, match="`n`"):
        eqxppo.use_cpu_cores(0)
    assert eqxppo.cpu_cores() >= 1


def test_the_cpu_devices_flag_names_a_count_it_cannot_have(capsys, tmp_path):
    n = len(jax.devices("cpu"))
    args = ["sweep", "--n-configs", "1", "--timesteps", "256", "--out", str(tmp_path)]
    assert main([*args, "--cpu-devices", str(n + 1)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--cpu-devices" in err and "already started" in err, err
    assert main([*args, "--cpu-devices", "none"]) == 2
    assert "--cpu-devices" in capsys.readouterr().err


def test_a_population_on_one_cpu_device_of_a_multicore_machine_says_so_once(monkeypatch):
    import warnings

    from eqxppo import _cores

    assert len(jax.devices()) == 1, "this test needs the test process's one CPU device"
    env = eqxppo.make_env("gymnax", "CartPole-v1", n_envs=2)
    configs = [{"n_steps": 16, "minibatch_size": 32}] * 2
    monkeypatch.setattr(_cores, "_warned_one_device", False)
    monkeypatch.setattr(_cores, "cpu_cores", lambda: 4)
    with pytest.warns(eqxppo.OneCPUDeviceWarning, match=r"1 CPU device.*4 cores.*use_cpu_cores"):
        eqxppo.PPO.population(configs, env, seeds=(0,))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # once per process: the second population is quiet
        eqxppo.PPO.population(configs, env, seeds=(0,))
        monkeypatch.setattr(_cores, "_warned_one_device", False)
        eqxppo.PPO.population(configs, env, seeds=(0,), devices=jax.devices())  # chosen
        eqxppo.PPO.population(configs[:1], env, seeds=(0,))  # one member: nothing to spread
        monkeypatch.setattr(_cores, "cpu_cores", lambda: 1)
        eqxppo.PPO.population(configs, env, seeds=(0,))  # one core: nothing idle
