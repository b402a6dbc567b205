"""The optional frameworks' adapters (xland, brax, envpool, gymnasium) on real environments.

Each keeps the contract of `envs/_environment.py`: float32 observations, terminated and
truncated apart, `final_obs` the observation a step reached while `obs` starts the next
episode. A framework that is not installed skips its tests, naming its extra.
"""

import sys

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest
from conftest import assert_bitwise_equal

import eqxppo
from eqxppo import PPO, make_env
from eqxppo._third_party import third_party_numpy
from eqxppo.envs import MissingExtraError


# framework -> (module, extra, a cheap environment, env_kwargs that cut episodes at 5 steps)
FRAMEWORKS = {
    "xland": ("xminigrid", "MiniGrid-EmptyRandom-5x5", {"max_steps": 5}),
    "brax": ("brax", "inverted_pendulum", {"episode_length": 5}),
    "envpool": ("envpool", "CartPole-v1", {"max_episode_steps": 5}),
    "gymnasium": ("gymnasium", "CartPole-v1", {"max_episode_steps": 5}),
}
JAX_NATIVE = ("xland", "brax")
# Where the observations do not matter (populations, checkpoints): the cheapest to compile.
CHEAP = {"brax": "fast"}
HPO = {"n_steps": 32, "minibatch_size": 64, "update_epochs": 2}
NAS = {"hidden_size": 16}


def _require(framework: str) -> None:
    module = FRAMEWORKS[framework][0]
    pytest.importorskip(module, reason=f"{module} not installed: pip install 'eqxppo[{framework}]'")


@pytest.fixture(params=list(FRAMEWORKS))
def framework(request) -> str:
    _require(request.param)
    return request.param


def _steps(env, n_steps: int, action_fn, key=jr.key(0)):
    """`n_steps` steps under `jit` with `action_fn(t)` for every environment."""

    @eqx.filter_jit
    def run(env, key):
        reset_key, step_key = jr.split(key)
        state, obs = env.reset(reset_key)

        def body(state, inputs):
            t, k = inputs
            action = jnp.broadcast_to(action_fn(t), (env.n_envs, *action_fn(t).shape))
            state, step = env.step(state, action, k)
            return state, step

        keys = jr.split(step_key, n_steps)
        _, steps = jax.lax.scan(body, state, (jnp.arange(n_steps), keys))
        return obs, steps

    return run(env, key)


def _constant_action(env):
    spec = env.action_spec
    if spec.discrete:  # xland: turn in place; CartPole: push left
        value = jnp.int32(1 if env.make_env_args()["env_framework"] == "xland" else 0)
        return lambda t: value
    return lambda t: jnp.zeros(spec.action_dim, jnp.float32)


def test_contract_shapes_and_a_time_limit(framework):
    _, name, limit = FRAMEWORKS[framework]
    env = make_env(framework, name, n_envs=3, env_kwargs=limit)
    first_obs, steps = _steps(env, 12, _constant_action(env))
    assert first_obs.shape == (3, *env.observation_shape) and first_obs.dtype == jnp.float32
    assert steps.obs.shape == steps.final_obs.shape == (12, 3, *env.observation_shape)
    assert steps.reward.dtype == jnp.float32 and steps.terminated.dtype == jnp.bool_
    obs, final_obs = np.asarray(steps.obs), np.asarray(steps.final_obs)
    truncated, terminated = np.asarray(steps.truncated), np.asarray(steps.terminated)
    # The 5th step hits the time limit: truncated, not terminated.
    assert truncated[4].all() and not terminated[4].any()
    assert not truncated[:4].any() and not terminated[:4].any()
    np.testing.assert_array_equal(final_obs[:4], obs[:4])  # no reset before the limit
    if framework == "envpool":
        # envpool resets on the next step: the ending step reports what it reached, the
        # reset step is marked invalid and starts the new episode.
        valid = np.asarray(steps.valid)
        np.testing.assert_array_equal(obs[4], final_obs[4])
        assert valid[:5].all() and not valid[5].any() and valid[6:11].all()
        new_first, old_last = obs[5], final_obs[4]
    else:
        assert steps.valid is None
        new_first, old_last = obs[4], final_obs[4]
    assert not np.allclose(new_first, old_last)
    if name == "CartPole-v1":  # first observations are uniform in [-0.05, 0.05]
        assert np.abs(new_first).max() <= 0.05 < np.abs(old_last).max()
    # Every reset draws new randomness: the episodes' first observations differ.
    assert not np.allclose(np.asarray(first_obs), new_first)


def test_final_obs_is_what_the_raw_environment_reached(framework):
    if framework not in JAX_NATIVE:
        pytest.skip("checked against the raw environment where it is a pure JAX function")
    _, name, limit = FRAMEWORKS[framework]
    env = make_env(framework, name, n_envs=2, env_kwargs=limit)
    action = jnp.broadcast_to(_constant_action(env)(0), (2, *_constant_action(env)(0).shape))

    @eqx.filter_jit
    def run(env):
        state, _ = env.reset(jr.key(3))
        for _ in range(4):
            state, _ = env.step(state, action, jr.key(4))
        _, step = env.step(state, action, jr.key(4))  # the 5th step: the time limit
        with third_party_numpy():  # the framework's own step, as the adapter runs it
            if framework == "xland":
                raw = jax.vmap(env.env.step, in_axes=(None, 0, 0))(env.params, state, action)
                return step, raw.observation.reshape(2, -1)
            return step, jax.vmap(env.env.step)(state, action).obs

    step, reached = run(env)
    assert np.asarray(step.truncated).all()
    np.testing.assert_allclose(step.final_obs, reached)
    np.testing.assert_array_equal(step.obs, env.reset(jr.key(4))[1])  # fresh, from the key


def test_terminated_is_not_truncated(framework):
    if framework == "xland":
        pytest.skip("no constant action reaches the goal")
    name = FRAMEWORKS[framework][1]
    env = make_env(framework, name, n_envs=2)
    action = _constant_action(env)
    if not env.action_spec.discrete:
        action = lambda t: jnp.ones(env.action_spec.action_dim, jnp.float32)  # push it over
    _, steps = _steps(env, 60, action)
    terminated = np.asarray(steps.terminated)
    assert terminated.any(axis=0).all()  # every pole falls
    assert not np.asarray(steps.truncated).any()


def test_unknown_env_kwargs_and_names_raise_listing_valid_ones(framework):
    _, name, limit = FRAMEWORKS[framework]
    with pytest.raises(ValueError, match="bogus"):
        make_env(framework, name, env_kwargs={"bogus": 1})
    with pytest.raises(ValueError, match="NoSuchEnv"):
        make_env(framework, "NoSuchEnv-v9")


@pytest.mark.parametrize("framework", list(FRAMEWORKS))
def test_a_missing_framework_names_its_extra(framework, monkeypatch):
    module = FRAMEWORKS[framework][0]
    for loaded in [m for m in sys.modules if m == module or m.startswith(f"{module}.")]:
        monkeypatch.delitem(sys.modules, loaded)
    monkeypatch.setitem(sys.modules, module, None)  # what `import` finds when absent
    with pytest.raises(MissingExtraError, match=rf"pip install 'eqxppo\[{framework}\]'"):
        make_env(framework, FRAMEWORKS[framework][1])


def test_populations_where_the_environment_vmaps(framework):
    name = CHEAP.get(framework, FRAMEWORKS[framework][1])
    env = make_env(framework, name, n_envs=4)
    configs = [{**HPO, "learning_rate": 1e-3}, {**HPO, "learning_rate": 3e-3}]
    if framework not in JAX_NATIVE:
        with pytest.raises(ValueError, match="vmap"):
            PPO.population(configs, env, nas_config=NAS)
        return
    pop = PPO.population(configs, env, seeds=(0, 1), nas_config=NAS)
    state, result = pop.train(pop.init(jr.key(0)), n_total_timesteps=256, n_eval_steps=1,
                              n_eval_episodes=2)  # fmt: skip
    assert result.eval_rewards.shape == (4, 1, 2)
    weights = [pop.member(state, m).runner_state.train_state.params for m in range(4)]
    assert not np.allclose(jax.tree.leaves(weights[0])[0], jax.tree.leaves(weights[2])[0])


def test_checkpoint_round_trip(framework, tmp_path):
    name = CHEAP.get(framework, FRAMEWORKS[framework][1])
    env = make_env(framework, name, n_envs=2)
    agent = PPO(HPO, env, nas_config=NAS)
    budget = {"n_total_timesteps": 128, "n_eval_steps": 1, "n_eval_episodes": 1}
    half, _ = agent.train(*agent.init(jr.key(0)), **budget)
    loaded_agent, loaded = eqxppo.load(eqxppo.save(tmp_path / "run.eqx", agent, half))
    assert loaded_agent.env.make_env_args() == env.make_env_args()
    saved, restored = half.runner_state, loaded.runner_state
    for field in ("train_state", "normalizer_state", "rng", "global_step", "hparams"):
        assert_bitwise_equal(getattr(restored, field), getattr(saved, field))
    if env.restorable:  # the environments too: the resumed run is the same run
        assert_bitwise_equal(restored, saved)
        assert_bitwise_equal(
            loaded_agent.train(*loaded, **budget)[0], agent.train(*half, **budget)[0]
        )
    else:  # fresh environments, everything else as saved
        assert restored.obs.shape == saved.obs.shape
        continued, _ = loaded_agent.train(*loaded, **budget)
        assert int(continued.runner_state.global_step) == 2 * int(saved.global_step)


# Measured on 2 CPU cores (jax 0.10.2, seed 0, 16 evaluation episodes): random -> trained
# xland 0.33 -> 0.95, brax inverted_pendulum 6.6 -> 109, envpool CartPole 18.9 -> 450,
# gymnasium CartPole 20.2 -> 500: the untrained stochastic policy against the return
# after a short run of the default configuration. The thresholds sit between the two.
LEARNS = {
    "xland": ("MiniGrid-EmptyRandom-5x5", {}, 20_000, 0.8),
    "brax": ("inverted_pendulum", {"episode_length": 200}, 30_000, 50.0),
    "envpool": ("CartPole-v1", {}, 20_000, 150.0),
    "gymnasium": ("CartPole-v1", {}, 20_000, 150.0),
}


def test_a_short_run_beats_a_random_policy(framework):
    name, kwargs, timesteps, threshold = LEARNS[framework]
    env = make_env(framework, name, n_envs=8, env_kwargs=kwargs)
    random_policy = PPO({}, env, deterministic_eval=False)
    random_return = float(random_policy.eval(random_policy.init(jr.key(0)).runner_state, 16).mean())
    agent = PPO({}, env)
    _, result = agent.train(*agent.init(jr.key(0)), n_total_timesteps=timesteps, n_eval_steps=1,
                            n_eval_episodes=16)  # fmt: skip
    trained = float(np.asarray(result.eval_rewards).mean())
    assert random_return < threshold < trained, (random_return, trained)


def test_a_recurrent_agent_restarts_after_envpool_s_reset_steps():
    # envpool's step after an episode's end only resets (`valid=False`), and was given
    # the old episode's last observation: the new episode's first step must still start
    # from zero hidden states, and the update's re-run must reproduce the rollout.
    _require("envpool")
    from eqxppo.configspaces import NetworkConfig
    from eqxppo.envs import init_normalizer
    from eqxppo.networks import make_network
    from eqxppo.ppo import collect_rollout, policy_and_value, rollout_values
    from eqxppo.ppo._update import _training_batch

    env = make_env("envpool", "CartPole-v1", n_envs=2, env_kwargs={"max_episode_steps": 5})
    config = NetworkConfig("tanh", 8, recurrent="gru")
    network = make_network(config, env.observation_shape, env.action_spec, key=jr.key(1))
    hidden0 = jnp.zeros((2, *network.hidden_shape))

    @eqx.filter_jit
    def rollout(network, env):
        env_state, obs = env.reset(jr.key(2))
        normalizer = init_normalizer(env.observation_shape)
        _, out = collect_rollout(network, normalizer, env, env_state, obs, hidden0,
                                 jr.key(3), 16, normalize_observations=False)  # fmt: skip
        return out, rollout_values(network, normalizer, out, normalize_observations=False)[0]

    out, value = rollout(network, env)
    valid = np.asarray(out.step.valid)
    assert not valid.all()
    for t, e in zip(*np.nonzero(~valid[:-1])):
        fresh = network.step(network.initial_hidden(), out.obs[t + 1, e])[0]
        np.testing.assert_array_equal(out.hidden[t + 1, e], 0.0)
        np.testing.assert_allclose(out.next_hidden[t + 1, e], fresh, rtol=1e-5, atol=1e-6)
    zeros = jnp.zeros_like(value)
    batch = _training_batch(out, out.obs, value, zeros, zeros, sequences=True)
    dist, _ = policy_and_value(network, batch)
    flat = batch.samples()
    log_prob = jax.vmap(lambda d, a: d.log_prob(a))(dist, flat.action)
    np.testing.assert_allclose(log_prob, flat.log_prob, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(flat.weight, valid.T.reshape(-1))  # reset steps weigh 0


def test_arlbench_s_random_actions_step_every_framework(framework):
    name = CHEAP.get(framework, FRAMEWORKS[framework][1])
    env = make_env(framework, name, n_envs=4)
    actions = env.sample_actions(jr.key(0))
    spec = env.action_spec
    assert actions.shape == ((4,) if spec.discrete else (4, spec.action_dim))
    assert env.observation_space.shape == env.observation_shape

    @eqx.filter_jit
    def step(env, key):
        env_state, _ = env.reset(key)
        return env.step(env_state, env.sample_actions(key), key)[1]

    assert step(env, jr.key(1)).reward.shape == (4,)


def test_an_arlbench_tree_trains_lunar_lander_on_envpool(tmp_path, monkeypatch):
    # ARLBench's box2d_lunar_lander environment file (envpool's LunarLander-v2) composed
    # from an experiment tree, with a tiny budget from the command line's overrides.
    _require("envpool")
    pytest.importorskip("hydra", reason="hydra not installed: pip install 'eqxppo[hydra]'")
    from test_experiments import write_tree

    from eqxppo.experiments import plan, run_jobs

    monkeypatch.chdir(tmp_path)
    tree = write_tree(tmp_path / "configs")
    overrides = ["environment=box2d_lunar_lander", "seed=3",
                 "environment.n_total_timesteps=512", "environment.n_envs=2"]  # fmt: skip
    (job,) = plan(tree, overrides=overrides)
    assert (job.autorl["env_framework"], job.autorl["env_name"]) == ("envpool", "LunarLander-v2")
    (value,) = run_jobs([job])
    assert np.isfinite(value) and job.out == tmp_path / "results" / "ppo_LunarLander-v2" / "3"
    rows = (job.out / "metrics.csv").read_text().splitlines()
    assert len(rows) == 1 + 2  # header and the tree's n_eval_steps evaluations
    assert float((job.out / "performance.csv").read_text()) == value


def test_tune_trains_envpool_trials_one_by_one_and_they_learn(tmp_path):
    # envpool cannot be vmapped: `tune` trains each member alone (a population would
    # refuse it), from the start, and a trial asked again at a larger budget trains anew.
    _require("envpool")
    from ConfigSpace import ConfigurationSpace

    from eqxppo.autorl import tune

    env_config = {"env_framework": "envpool", "env_name": "CartPole-v1", "n_envs": 4,
                  "n_eval_episodes": 4}  # fmt: skip
    space = ConfigurationSpace({"learning_rate": (1e-3, 3e-3)}, seed=0)
    trials = tune("random", space=space, env_config=env_config, n_trials=2, batch=2,
                  timesteps=20_000, seeds=(0, 1), out=tmp_path, reports=2,
                  base_config={**HPO, "n_steps": 64})  # fmt: skip
    assert [t.status for t in trials] == ["complete", "complete"]
    # A random policy's CartPole return is about 20.
    assert all(t.objective is not None and t.objective > 60 for t in trials), trials


def test_envpool_runs_with_one_seed_see_the_same_episodes_in_one_process():
    # envpool seeds a pool once, when it is made: every environment made owns a fresh
    # pool, so two runs with one seed train bit for bit alike in one process (they shared
    # one pool, and so one episode stream, before), and an AutoRL episode after the first
    # starts on pools made anew.
    _require("envpool")
    from eqxppo.autorl import AutoRLEnv

    def run():
        env = make_env("envpool", "CartPole-v1", n_envs=4, seed=3)
        agent = PPO(HPO, env, nas_config=NAS)
        state, result = agent.train(*agent.init(jr.key(0)), n_total_timesteps=512,
                                    n_eval_steps=1, n_eval_episodes=4)  # fmt: skip
        return state.runner_state.train_state.params, result.eval_rewards

    first, second = run(), run()
    assert_bitwise_equal(first, second)
    made = make_env("envpool", "CartPole-v1", n_envs=4, seed=3)
    assert made.pool is not make_env("envpool", "CartPole-v1", n_envs=4, seed=3).pool
    assert made.with_n_envs(2).pool is not made.pool

    env = AutoRLEnv({"env_framework": "envpool", "env_name": "CartPole-v1", "n_envs": 4,
                     "n_total_timesteps": 512, "n_eval_episodes": 4, "seed": 3,
                     "nas_config": NAS})  # fmt: skip
    objectives = []
    for _ in range(2):
        env.reset()
        objectives.append(env.step(HPO)[1]["reward_mean"])
    assert objectives[0] == objectives[1]
