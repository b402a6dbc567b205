"""A population's member axis over a mesh that spans two processes (`jax.distributed`
with CPU collectives) equals the same population in one process."""

import json
import socket
import subprocess
import sys
import textwrap

import jax
import jax.random as jr
import numpy as np

from eqxppo import PPO, make_env
from eqxppo.population import to_host


CONFIGS = [
    {"n_steps": 8, "minibatch_size": 16, "update_epochs": 1, "learning_rate": lr}
    for lr in (1e-3, 3e-3, 1e-2)
]
SEEDS = (0, 1)  # 6 members: 3 rows on each process's device
NAS = {"hidden_size": 8}
BUDGET = {"n_total_timesteps": 64, "n_eval_steps": 2, "n_eval_episodes": 2}

_WORKER = textwrap.dedent(f"""
    import json, sys
    import jax
    process, port, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(f"localhost:{{port}}", num_processes=2, process_id=process)
    import jax.random as jr
    from eqxppo import PPO, make_env
    from eqxppo.population import to_host

    assert len(jax.devices()) == 2 and len(jax.local_devices()) == 1
    env = make_env("gymnax", "CartPole-v1", n_envs=2)
    pop = PPO.population({CONFIGS!r}, env, seeds={SEEDS!r}, nas_config={NAS!r})
    assert pop.mesh.size == 2
    state, result = pop.train(pop.init(jr.key(0)), **{BUDGET!r})
    rewards = to_host(result.eval_rewards)
    weight = to_host(state.groups[0].train_state.network.actor.layers[0].weight)
    member = pop.member(state, 4).runner_state.train_state.network.actor.layers[0].weight
    if process == 0:
        with open(out, "w") as f:
            json.dump({{"rewards": rewards.tolist(), "weight": weight.tolist(),
                        "member": jax.device_get(member).tolist()}}, f)
""")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def test_a_population_over_two_processes_equals_the_single_process_one(tmp_path):
    port, out = str(_free_port()), tmp_path / "out.json"
    procs = [
        subprocess.Popen([sys.executable, "-c", _WORKER, str(p), port, str(out)],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for p in (0, 1)
    ]  # fmt: skip
    logs = [proc.communicate(timeout=300)[0] for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0], logs
    got = json.loads(out.read_text())

    pop = PPO.population(CONFIGS, make_env("gymnax", "CartPole-v1", n_envs=2), seeds=SEEDS,
                         nas_config=NAS, devices=jax.devices()[:1])  # fmt: skip
    state, result = pop.train(pop.init(jr.key(0)), **BUDGET)
    np.testing.assert_allclose(got["rewards"], to_host(result.eval_rewards))
    weight = to_host(state.groups[0].train_state.network.actor.layers[0].weight)
    np.testing.assert_allclose(got["weight"], weight, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got["member"], weight[4], rtol=1e-5, atol=1e-6)
