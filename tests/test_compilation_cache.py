"""The persistent compilation cache: a second process loads the program it compiled
before, and a changed static structure never loads a foreign program."""

import json
import subprocess
import sys
import textwrap

import pytest


_SCRIPT = textwrap.dedent("""
    import json, sys
    import jax.random as jr
    import numpy as np
    import eqxppo
    from eqxppo import PPO, make_env

    cache, n_steps, lr = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    eqxppo.enable_compilation_cache(cache, min_compile_seconds=0)
    env = make_env("gymnax", "CartPole-v1", n_envs=2)
    agent = PPO({"n_steps": n_steps, "minibatch_size": 16, "update_epochs": 1,
                 "learning_rate": lr}, env, nas_config={"hidden_size": 8})
    state = agent.init(jr.key(0))
    with eqxppo.cache_stats() as stats:
        state, result = agent.train(*state, n_total_timesteps=64, n_eval_steps=1,
                                    n_eval_episodes=2)
    weight = np.asarray(state.runner_state.train_state.network.actor.layers[0].weight)
    print(json.dumps({"requests": stats.requests, "hits": stats.hits,
                      "weight": weight.ravel().tolist()}))
""")


def _run(cache, n_steps, lr):
    out = subprocess.run(
        [sys.executable, "-c", _SCRIPT, str(cache), str(n_steps), str(lr)],
        capture_output=True, text=True, timeout=300, check=True,
    )  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


# Two fresh processes (70 s): the newest line runs it; `test_enable_and_disable_in_one_process`
# checks the cache's switches on every line.
@pytest.mark.e2e
def test_a_second_process_loads_the_program_and_a_new_structure_misses(tmp_path):
    cache = tmp_path / "cache"
    first = _run(cache, 16, 1e-3)
    assert first["requests"] >= 1 and first["hits"] == 0
    assert any(cache.iterdir())  # the train program was written

    # Another learning rate is a traced input: the same program, loaded, not compiled;
    # and it really runs with the new value.
    second = _run(cache, 16, 3e-3)
    assert second["hits"] == second["requests"] >= 1
    assert second["weight"] != first["weight"]

    # Another n_steps is another program: its key differs, nothing is loaded.
    third = _run(cache, 8, 1e-3)
    assert third["requests"] >= 1 and third["hits"] == 0


def test_enable_and_disable_in_one_process(tmp_path):
    import jax

    import eqxppo

    folder = eqxppo.enable_compilation_cache(tmp_path / "c")
    try:
        assert folder.is_dir() and jax.config.jax_compilation_cache_dir == str(folder)  # pyright: ignore[reportAttributeAccessIssue]
    finally:
        eqxppo.disable_compilation_cache()
    assert jax.config.jax_compilation_cache_dir is None  # pyright: ignore[reportAttributeAccessIssue]


@pytest.mark.e2e
@pytest.mark.parametrize("flag", [[], ["--no-compilation-cache"]])
def test_the_command_line_uses_the_cache_unless_told_not_to(tmp_path, flag):
    cache = tmp_path / "cli-cache"
    cmd = [sys.executable, "-m", "eqxppo", "train", "--timesteps", "64", "--n-envs", "2",
           "--chunks", "1", "--eval-episodes", "1", "--set", "n_steps=16", "--set",
           "minibatch_size=16", "--set", "update_epochs=1", "--set", "hidden_size=8",
           "--out", str(tmp_path / "run"),
           *(flag or ["--compilation-cache", str(cache)])]  # fmt: skip
    subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=True)
    assert cache.is_dir() == (not flag)
    if not flag:
        assert any(cache.iterdir())
