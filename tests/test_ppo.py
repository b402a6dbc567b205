"""The `PPO` facade: ARLBench's API on the free functions."""

import jax
import jax.numpy as jnp
import jax.random as jr
import jax.tree_util as jtu
import numpy as np
import optax
import pytest
from conftest import assert_bitwise_equal, count_compiles

from eqxppo import PPO, PPOState, make_env


HPO = {"n_steps": 16, "minibatch_size": 32, "update_epochs": 2}
NAS = {"hidden_size": 16}
BUDGET_SMALL = {"n_total_timesteps": 128, "n_eval_steps": 1, "n_eval_episodes": 1}


@pytest.fixture(scope="module")
def env():
    return make_env("gymnax", "CartPole-v1", n_envs=4)


def test_quick_start_contract(env):
    agent = PPO(HPO, env, nas_config=NAS, track_metrics=True, track_trajectories=True)
    state = agent.init(jr.key(0))
    assert isinstance(state, PPOState) and state.buffer_state is None
    state, result = agent.train(*state, n_total_timesteps=256, n_eval_steps=2, n_eval_episodes=3)
    assert result.eval_rewards.shape == (2, 3)
    assert int(state.runner_state.global_step) == 256
    action = agent.predict(state.runner_state, state.runner_state.obs[0], jr.key(1))
    assert action.shape == () and 0 <= int(action) < 2
    factory = PPO.get_checkpoint_factory(state.runner_state, result)
    assert set(factory) >= {"opt_state", "params", "loss", "trajectories"}
    traj = factory["trajectories"]()
    assert traj["states"].shape == (2 * 2, 16, 4, 4)  # (chunks x updates) merged
    assert factory["loss"]()[0].shape == (2, 2, 2, 2)
    assert PPO.get_checkpoint_factory(state.runner_state, None)["trajectories"]() is None


def test_configuration_objects_and_default_space(env):
    agent = PPO(PPO.get_default_hpo_config(), env, nas_config=PPO.get_default_nas_config())
    assert agent.minibatch_size == 64 and agent.n_minibatches == 8 and agent.rollout_size == 512
    assert agent.network_config.hidden_size == 64


def test_update_hpo_config_takes_effect_without_recompiling(env):
    agent = PPO(HPO, env, nas_config=NAS)
    state = agent.init(jr.key(0))
    first, _ = agent.train(*state, n_total_timesteps=256, n_eval_steps=2, n_eval_episodes=3)
    assert agent.update_hpo_config({**HPO, "learning_rate": 1e-2, "ent_coef": 0.2}) is None
    with count_compiles() as compiles:
        second, _ = agent.train(*state, n_total_timesteps=256, n_eval_steps=2, n_eval_episodes=3)
        jax.block_until_ready(second)
    assert compiles.count == 0, compiles.names
    assert float(second.runner_state.hparams.learning_rate) == pytest.approx(1e-2)
    w1 = first.runner_state.train_state.network.actor.layers[0].weight
    w2 = second.runner_state.train_state.network.actor.layers[0].weight
    assert not np.allclose(w1, w2)


def test_static_change_compiles_the_new_program(env):
    agent = PPO(HPO, env, nas_config=NAS)
    state = agent.init(jr.key(0))
    agent.train(*state, n_total_timesteps=256, n_eval_steps=1, n_eval_episodes=1)
    agent.update_hpo_config({**HPO, "n_steps": 32})
    with count_compiles() as compiles:
        out, _ = agent.train(*state, n_total_timesteps=256, n_eval_steps=1, n_eval_episodes=1)
        jax.block_until_ready(out)
    assert compiles.count >= 1
    assert int(out.runner_state.global_step) == 256  # 2 updates of 4 x 32, not 4 x 16


def test_mismatched_state_fails_clearly(env):
    small = PPO(HPO, env, nas_config=NAS)
    big = PPO(HPO, env, nas_config={"hidden_size": 32})
    state = small.init(jr.key(0))
    with pytest.raises(ValueError, match="hidden_size=32"):
        big.train(*state, n_total_timesteps=64, n_eval_steps=1, n_eval_episodes=1)
    with pytest.raises(ValueError, match="network_params"):
        big.init(jr.key(0), network_params=state.runner_state.train_state.network)


def test_init_reuses_given_network_and_optimizer_state(env):
    agent = PPO(HPO, env, nas_config=NAS)
    state = agent.init(jr.key(0))
    trained, _ = agent.train(*state, n_total_timesteps=128, n_eval_steps=1, n_eval_episodes=1)
    ts = trained.runner_state.train_state
    again = agent.init(jr.key(5), network_params=ts.network, opt_state=ts.opt_state)
    new_ts = again.runner_state.train_state
    np.testing.assert_array_equal(
        new_ts.network.actor.layers[0].weight, ts.network.actor.layers[0].weight
    )
    for a, b in zip(jax.tree.leaves(new_ts.opt_state), jax.tree.leaves(ts.opt_state)):
        np.testing.assert_array_equal(a, b)


def test_bad_input_names_the_key(env):
    with pytest.raises(ValueError, match="learning_rate"):
        PPO({"learning_rate": -1.0}, env)
    with pytest.raises(ValueError, match="bogus"):
        PPO({"bogus": 1}, env)
    with pytest.raises(ValueError, match="activation"):
        PPO({}, env, nas_config={"activation": "swish"})
    with pytest.raises(ValueError, match=r"\(H, W, C\)"):
        PPO({}, env, cnn_policy=True)
    with pytest.raises(ValueError, match="needs an `rng`"):
        agent = PPO(HPO, env, nas_config=NAS)
        agent.predict(agent.init(jr.key(0)).runner_state, jnp.zeros(4), deterministic=False)


def test_continuous_predict_through_facade():
    env = make_env("gymnax", "Pendulum-v1", n_envs=2)
    agent = PPO(HPO, env, nas_config=NAS)
    state = agent.init(jr.key(0))
    action = agent.predict(state.runner_state, state.runner_state.obs, jr.key(1), False)
    assert action.shape == (2, 1) and np.all(np.abs(np.asarray(action)) <= 2.0)


def test_checkpoint_factory_params_and_opt_state_go_back_into_init(env):
    # ARLBench's AutoRL loop restores a run from the factory's `params` and `opt_state`.
    agent = PPO(HPO, env, nas_config=NAS)
    trained, result = agent.train(*agent.init(jr.key(0)), **BUDGET_SMALL)
    factory = PPO.get_checkpoint_factory(trained.runner_state, result)
    params, opt_state = factory["params"](), factory["opt_state"]()
    # The optimizer state is optax's over the parameter tree, not over a flat vector.
    adam = opt_state[1]
    assert isinstance(adam, optax.ScaleByAdamState) and int(adam.count) > 0
    assert jtu.tree_structure(adam.mu) == jtu.tree_structure(params)
    restored = agent.init(jr.key(5), network_params=params, opt_state=opt_state)
    assert_bitwise_equal(restored.runner_state.train_state.params, params)
    assert_bitwise_equal(restored.runner_state.train_state.opt_state, opt_state)
    continued, _ = agent.train(*restored, **BUDGET_SMALL)
    assert int(continued.runner_state.train_state.opt_state[1].count) > int(adam.count)
    # A per-leaf optax state of the same tree (another optimizer's layout) is refused.
    with pytest.raises(ValueError, match="opt_state does not fit"):
        agent.init(jr.key(5), network_params=params, opt_state=optax.sgd(0.1).init(params))
    flat = optax.adam(1e-3).init(jnp.zeros(10))
    with pytest.raises(ValueError, match="opt_state does not fit"):
        agent.init(jr.key(5), opt_state=flat)


def test_eval_and_budgets_as_arlbench_passes_them(env):
    agent = PPO(HPO, env, nas_config=NAS, track_metrics=True)
    state = agent.init(jr.key(0))
    # ARLBench's configs give budgets as floats (1e5) and NumPy integers.
    trained, result = agent.train(
        *state, n_total_timesteps=256.0, n_eval_steps=np.int64(2), n_eval_episodes=3
    )
    assert int(trained.runner_state.global_step) == 256
    returns = agent.eval(trained.runner_state, 5)
    assert returns.shape == (5,) and np.all(np.asarray(returns) >= 1)
    np.testing.assert_array_equal(agent.eval(trained.runner_state, 5.0), returns)
    for bad, error, match in [
        (1.5, ValueError, "whole number"),
        (float("inf"), ValueError, "whole number"),
        (True, TypeError, "integer"),
        ("100", TypeError, "integer"),
        (-1, ValueError, ">= 0"),
    ]:
        with pytest.raises(error, match=f"n_total_timesteps.*{match}"):
            agent.train(*state, n_total_timesteps=bad, n_eval_steps=1)
    with pytest.raises(ValueError, match="num_eval_episodes"):
        agent.eval(trained.runner_state, 0)
    # ARLBench's `grad_info` state feature: gradient norm and variance per update.
    assert result.metrics is not None
    norm, var = result.metrics.grad_info()
    assert norm.shape == var.shape == (2, 2)  # chunks, updates
    assert np.all(np.asarray(norm) > 0) and np.all(np.asarray(var) > 0)
    assert agent.action_type == "discrete"
    assert agent.network.actor.layers[0].weight.shape == (16, 4)
