"""Learning runs (slow): `nox -s slow` or `pytest -m slow`.

Each is a whole training run on a task with published PPO results, with its own budget
and configuration (`benchmarks/learning.py` records the same kind of run, with curves,
for the README; the tests do not depend on it).
"""

import jax
import jax.random as jr
import numpy as np
import pytest

from eqxppo import PPO, make_env


pytestmark = pytest.mark.slow


def _final_and_best(name: str, timesteps: int, n_envs: int, hpo=None, nas=None):
    env = make_env("gymnax", name, n_envs=n_envs, seed=0)
    agent = PPO(hpo or {}, env, nas_config=nas)
    state, result = agent.train(
        *agent.init(jr.key(0)), n_total_timesteps=timesteps, n_eval_steps=10, n_eval_episodes=16
    )
    curve = np.asarray(jax.block_until_ready(result.eval_rewards)).mean(axis=1)
    assert not bool(state.runner_state.diverged)
    print(name, curve.round(1).tolist())
    return float(curve[-1]), float(curve.max())


def test_cartpole_default_config_reaches_the_cap():
    final, best = _final_and_best("CartPole-v1", 150_000, 8)
    assert best == 500.0 and final >= 475.0


def test_acrobot_learns_clearly():
    final, _ = _final_and_best("Acrobot-v1", 500_000, 8)
    assert final > -120.0  # random policy: -500


def test_pendulum_learns_clearly():
    # ARLBench's default space has no setting that suits Pendulum's dense, scaled reward;
    # a standard PPO-on-Pendulum configuration from inside the HPO space.
    hpo = {"n_steps": 256, "minibatch_size": 128, "learning_rate": 1e-3, "gamma": 0.95,
           "gae_lambda": 0.95, "ent_coef": 0.0, "normalize_observations": True,
           "update_epochs": 10, "clip_eps": 0.2, "max_grad_norm": 0.5}  # fmt: skip
    final, _ = _final_and_best("Pendulum-v1", 1_000_000, 16, hpo, {"hidden_size": 64})
    assert final > -400.0  # random policy: about -1200
