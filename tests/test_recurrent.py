"""Recurrent PPO: the core against an unrolled reference, hidden states through rollouts
(episode starts, truncation), the sequence minibatches, and every path a feed-forward
agent has (resume, populations, PBT, AutoRL, learning on a memory task)."""

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest
from conftest import assert_bitwise_equal

import eqxppo
from eqxppo import PPO, make_env
from eqxppo.configspaces import NetworkConfig, parse_hpo_config
from eqxppo.envs import ActionSpec, EnvStep
from eqxppo.networks import AbstractRecurrentActorCritic, make_network
from eqxppo.population import Population, exploit_and_explore
from eqxppo.ppo import collect_rollout, policy_and_value, rollout_values
from eqxppo.ppo._rollout import episode_starts
from eqxppo.ppo._update import _training_batch


HPO = {"n_steps": 16, "minibatch_size": 32, "update_epochs": 2, "learning_rate": 1e-3}
GRU = {"hidden_size": 16, "recurrent": "gru"}
BUDGET = {"n_total_timesteps": 256, "n_eval_steps": 2, "n_eval_episodes": 3}


def _network(cell, obs_shape, *, key, discrete=True):
    config = NetworkConfig("tanh", 8, cnn_policy=len(obs_shape) == 3, recurrent=cell)
    return make_network(config, obs_shape, ActionSpec(discrete, 3), key=key)


def _unrolled(network, hidden, obs, starts):
    """The reference: one `step` per observation, the hidden state zeroed by hand."""
    logits, values = [], []
    for t in range(obs.shape[0]):
        if starts[t]:
            hidden = jnp.zeros_like(hidden)
        hidden, dist, value = network.step(hidden, obs[t])
        logits.append(dist.logits if hasattr(dist, "logits") else dist.mean)
        values.append(value)
    return jnp.stack(logits), jnp.stack(values)


@pytest.mark.parametrize("cell", ["gru", "lstm"])
@pytest.mark.parametrize("obs_shape", [(5,), (10, 10, 3)], ids=["mlp", "cnn"])
def test_sequence_equals_the_unrolled_steps_with_their_restarts(cell, obs_shape, getkey):
    network = _network(cell, obs_shape, key=getkey())
    assert isinstance(network, AbstractRecurrentActorCritic)
    hidden = jr.normal(getkey(), network.hidden_shape)
    obs = jr.normal(getkey(), (7, *obs_shape))
    starts = jnp.array([False, False, True, False, False, True, False])
    ref_logits, ref_values = _unrolled(network, hidden, obs, starts)
    fast = network.sequence(hidden, obs, starts)  # encoder and heads batched over time
    plain = AbstractRecurrentActorCritic.sequence(network, hidden, obs, starts)  # scanned steps
    for dist, values in (fast, plain):
        np.testing.assert_allclose(dist.logits, ref_logits, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(values, ref_values, rtol=1e-5, atol=1e-6)
    # The restart really restarts: the step after it does not depend on the hidden state.
    other = network.sequence(hidden + 1.0, obs, starts)[1]
    assert not np.allclose(other[:2], fast[1][:2])
    np.testing.assert_allclose(other[2:], fast[1][2:], rtol=1e-6)

    # And the gradients of the two forms agree.
    def total(net, form):
        dist, values = form(net, hidden, obs, starts)
        return jnp.sum(values) + jnp.sum(dist.logits)

    forms = (type(network).sequence, AbstractRecurrentActorCritic.sequence)
    grads = [eqx.filter_grad(total)(network, form) for form in forms]
    for a, b in zip(jax.tree.leaves(grads[0]), jax.tree.leaves(grads[1])):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_episode_starts_follow_ends_and_envpool_reset_steps():
    step = EnvStep(
        obs=jnp.zeros((4, 1)),
        reward=jnp.zeros(4),
        terminated=jnp.array([True, False, False, False]),
        truncated=jnp.array([False, True, False, False]),
        final_obs=jnp.zeros((4, 1)),
        info={},
        valid=jnp.array([True, True, False, True]),  # envpool's reset-only step
    )
    np.testing.assert_array_equal(episode_starts(step), [True, True, True, False])
    no_reset_steps = EnvStep(step.obs, step.reward, step.terminated, step.truncated,
                             step.final_obs, step.info)  # fmt: skip
    np.testing.assert_array_equal(episode_starts(no_reset_steps), [True, True, False, False])


def _rollout(env, network, hidden, n_steps, key):
    agent_state = eqx.filter_jit(env.reset)(jr.fold_in(key, 1))
    normalizer = eqxppo.envs.init_normalizer(env.observation_shape)
    (_, _, last_hidden), rollout = eqx.filter_jit(collect_rollout)(
        network, normalizer, env, *agent_state, hidden, key, n_steps,
        normalize_observations=False,
    )  # fmt: skip
    return normalizer, rollout, last_hidden


def test_the_hidden_state_restarts_where_an_episode_ends_mid_rollout(getkey):
    # MemoryChain's episodes last exactly six steps: every environment ends one at step 5.
    env = make_env("gymnax", "MemoryChain-bsuite", n_envs=3)
    network = _network("gru", env.observation_shape, key=getkey())
    hidden0 = jr.normal(getkey(), (3, *network.hidden_shape))  # mid-episode, not zeros
    normalizer, rollout, last = _rollout(env, network, hidden0, 10, getkey())
    ends = np.asarray(rollout.step.terminated | rollout.step.truncated)
    assert ends[5].all() and ends.sum() == 3
    values = rollout_values(network, normalizer, rollout, normalize_observations=False)[0]

    for e in range(3):  # the reference, one environment and one step at a time
        h = hidden0[e]
        for t in range(10):
            np.testing.assert_allclose(rollout.hidden[t, e], h, rtol=1e-5, atol=1e-6)
            h, dist, value = network.step(h, rollout.obs[t, e])
            np.testing.assert_allclose(rollout.next_hidden[t, e], h, rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(values[t, e], value, rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(
                rollout.log_prob[t, e], dist.log_prob(rollout.action[t, e]), rtol=1e-5, atol=1e-6
            )
            if ends[t, e]:
                h = jnp.zeros_like(h)
        np.testing.assert_allclose(last[e], h, rtol=1e-5, atol=1e-6)
    # After the end the new episode's first step saw zeros, whatever came before.
    np.testing.assert_array_equal(rollout.hidden[6], 0.0)
    fresh = jax.vmap(lambda o: network.step(network.initial_hidden(), o)[0])(rollout.obs[6])
    np.testing.assert_allclose(rollout.next_hidden[6], fresh, rtol=1e-5, atol=1e-6)


def test_a_truncated_step_bootstraps_with_the_hidden_state_it_reached(getkey):
    env = make_env("gymnax", "CartPole-v1", n_envs=2, env_kwargs={"max_steps_in_episode": 4})
    network = _network("gru", env.observation_shape, key=getkey())
    hidden0 = jnp.zeros((2, *network.hidden_shape))
    normalizer, rollout, _ = _rollout(env, network, hidden0, 8, getkey())
    truncated = np.asarray(rollout.step.truncated)
    assert truncated[3].all()  # the time limit, not a fall
    value, next_value = rollout_values(network, normalizer, rollout, normalize_observations=False)
    for e in range(2):
        final = rollout.step.final_obs[3, e]
        expected = network.step(rollout.next_hidden[3, e], final)[2]
        np.testing.assert_allclose(next_value[3, e], expected, rtol=1e-5, atol=1e-6)
        # Not the value from a restarted hidden state, nor the next episode's first value.
        assert abs(float(next_value[3, e]) - float(network.value(final))) > 1e-6
        assert abs(float(next_value[3, e]) - float(value[4, e])) > 1e-6
    # Inside an episode V(final_obs) is the next step's value.
    np.testing.assert_allclose(next_value[:3], value[1:4], rtol=1e-5, atol=1e-6)


def test_the_update_re_runs_each_sequence_as_the_rollout_ran_it(getkey):
    # Before any gradient step the loss's re-run must give the rollout's log-probabilities
    # and values exactly: the ratio is 1. A restart at the wrong step would break this.
    env = make_env("gymnax", "MemoryChain-bsuite", n_envs=4)
    network = _network("lstm", env.observation_shape, key=getkey())
    hidden0 = jr.normal(getkey(), (4, *network.hidden_shape))
    normalizer, rollout, _ = _rollout(env, network, hidden0, 16, getkey())
    value = rollout_values(network, normalizer, rollout, normalize_observations=False)[0]
    zeros = jnp.zeros_like(value)
    batch = _training_batch(rollout, rollout.obs, value, zeros, zeros, sequences=True)
    assert batch.obs.shape[:2] == (4, 16)  # one sequence per environment
    np.testing.assert_array_equal(batch.starts[:, 0], False)
    np.testing.assert_array_equal(batch.starts[:, 6], True)  # after each episode's end
    dist, values = policy_and_value(network, batch)
    flat = batch.samples()
    log_prob = jax.vmap(lambda d, a: d.log_prob(a))(dist, flat.action)
    np.testing.assert_allclose(log_prob, flat.log_prob, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(values, flat.value, rtol=1e-5, atol=1e-5)


def test_sequence_minibatches_hold_whole_environments():
    config, _ = parse_hpo_config({"n_steps": 16, "minibatch_size": 40})
    assert config.minibatches(8, sequences=True) == (8, 2, 4)
    config, _ = parse_hpo_config({"n_steps": 128, "minibatch_size": 64})
    assert config.minibatches(4, sequences=True)[1] == 1  # never less than one sequence
    config, _ = parse_hpo_config({"n_steps": 4, "minibatch_size": 1000})
    assert config.minibatches(3, sequences=True)[1] == 3  # never more than the environments
    agent = PPO({"n_steps": 16, "minibatch_size": 40}, make_env("gymnax", "CartPole-v1", n_envs=8),
                nas_config=GRU)  # fmt: skip
    assert (agent.minibatch_size, agent.n_minibatches) == (32, 4)


@pytest.fixture(scope="module")
def agent():
    env = make_env("gymnax", "CartPole-v1", n_envs=4, env_kwargs={"max_steps_in_episode": 50})
    return PPO(HPO, env, nas_config=GRU)


@pytest.mark.compat
@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_a_resumed_recurrent_run_is_bitwise_equal_to_an_uninterrupted_one(cell, tmp_path):
    env = make_env("gymnax", "CartPole-v1", n_envs=4, env_kwargs={"max_steps_in_episode": 50})
    agent = PPO(HPO, env, nas_config={**GRU, "recurrent": cell})
    full, full_result = agent.train(*agent.init(jr.key(0)), **BUDGET)
    half_budget = {**BUDGET, "n_total_timesteps": 128, "n_eval_steps": 1}
    half, _ = agent.train(*agent.init(jr.key(0)), **half_budget)
    assert not np.all(np.asarray(half.runner_state.hidden) == 0)  # mid-episode memory
    path = eqxppo.save(tmp_path / "half.eqx", agent, half)
    loaded_agent, loaded = eqxppo.load(path)
    assert loaded_agent.network_config.recurrent == cell
    assert_bitwise_equal(loaded.runner_state, half.runner_state)
    resumed, result = loaded_agent.train(*loaded, **half_budget)
    assert_bitwise_equal(resumed.runner_state, full.runner_state)
    np.testing.assert_array_equal(result.eval_rewards[0], full_result.eval_rewards[1])


@pytest.mark.e2e
def test_predict_takes_and_returns_the_hidden_state(agent):
    state = agent.init(jr.key(1)).runner_state
    obs = jr.normal(jr.key(2), (5, *agent.env.observation_shape))
    hidden = agent.initial_hidden((5,))
    assert hidden.shape == (5, 16)
    actions, after = agent.predict(state, obs, hidden=hidden)
    network = state.train_state.network
    expected = jax.vmap(lambda o: network.step(network.initial_hidden(), o))(obs)
    np.testing.assert_allclose(after, expected[0], rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(actions, jax.vmap(lambda d: d.mode())(expected[1]))
    with pytest.raises(ValueError, match="hidden state"):
        agent.predict(state, obs)  # the action depends on the memory: not without it
    with pytest.raises(ValueError, match="hidden has shape"):
        agent.predict(state, obs, hidden=hidden[:2])


@pytest.mark.compat
def test_a_recurrent_population_member_equals_its_single_run(agent):
    configs = [HPO, {**HPO, "learning_rate": 3e-4}]
    population = Population(configs, agent.env, seeds=[0, 1], nas_config=GRU)
    state, result = population.train(population.init(jr.key(0)), **BUDGET)
    for member, (config, seed) in enumerate([(c, s) for c in configs for s in (0, 1)]):
        single = PPO(config, agent.env, nas_config=GRU)
        alone, alone_result = single.train(*single.init(jr.fold_in(jr.key(0), seed)), **BUDGET)
        mine = population.member(state, member).runner_state
        np.testing.assert_allclose(mine.hidden, alone.runner_state.hidden, rtol=2e-5, atol=2e-5)
        arrays = lambda tree: jax.tree.leaves(eqx.filter(tree, eqx.is_array))
        for a, b in zip(arrays(mine.train_state), arrays(alone.runner_state.train_state)):
            np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-5)
        np.testing.assert_allclose(result.eval_rewards[member], alone_result.eval_rewards)


@pytest.mark.e2e
def test_pbt_copies_the_network_and_keeps_each_member_s_own_hidden_states(agent):
    population = Population([HPO] * 3, agent.env, nas_config=GRU)
    state, _ = population.train(population.init(jr.key(0)), **BUDGET)
    (runner,) = state.groups
    scores = jnp.arange(runner.hidden.shape[0], dtype=jnp.float32)  # the last row is best
    new = exploit_and_explore(runner, scores, jr.key(3), n_worst=1, n_best=1)
    np.testing.assert_array_equal(new.hidden, runner.hidden)  # each its own episodes' memory
    leaf = lambda r: jax.tree.leaves(eqx.filter(r.train_state.network, eqx.is_array))[0]
    np.testing.assert_array_equal(leaf(new)[0], leaf(runner)[-1])  # the best network copied


@pytest.mark.e2e
def test_both_autorl_environments_train_a_recurrent_agent():
    from eqxppo.autorl import AutoRLEnv, AutoRLPopulationEnv

    config = {"n_total_timesteps": 256, "n_steps": 2, "env_name": "CartPole-v1", "n_envs": 4,
              "nas_config": GRU, "n_eval_episodes": 3}  # fmt: skip
    env = AutoRLEnv(config)
    env.reset()
    _, objectives, *_ = env.step({**HPO})
    assert np.isfinite(objectives["reward_mean"])
    hidden = env.algorithm_state.runner_state.hidden
    assert hidden is not None and hidden.shape == (4, 16)

    population_env = AutoRLPopulationEnv(config)
    population_env.reset()
    for _ in range(2):  # the second step moves the members' states, hidden ones too
        _, objectives, *_ = population_env.step([HPO, {**HPO, "learning_rate": 3e-4}])
        assert all(np.isfinite(o["reward_mean"]) for o in objectives)
    member = population_env.population.member(population_env.state, 1).runner_state
    assert member.hidden is not None and member.hidden.shape == (4, 16)


@pytest.mark.e2e
def test_the_command_line_trains_evaluates_and_sweeps_a_recurrent_agent(tmp_path, capsys):
    from eqxppo.__main__ import main

    small = ["--n-envs", "2", "--chunks", "2", "--eval-episodes", "2", "--set", "n_steps=16",
             "--set", "minibatch_size=32", "--set", "update_epochs=1", "--set", "hidden_size=8",
             "--set", "recurrent=lstm"]  # fmt: skip
    run = tmp_path / "run"
    assert main(["train", "--timesteps", "256", *small, "--out", str(run)]) == 0
    agent, state = eqxppo.load(run / "checkpoint.eqx")
    assert agent.network_config.recurrent == "lstm" and state.runner_state.hidden is not None
    assert main(["evaluate", str(run), "--episodes", "2"]) == 0
    sweep = tmp_path / "sweep"
    code = main(["sweep", "--n-configs", "2", "--seeds", "1", "--timesteps", "256",
                 "--cpu-devices", "auto", *small, "--out", str(sweep)])  # fmt: skip
    assert code == 0 and (sweep / "results.csv").exists()
    assert "1 compiled group" in capsys.readouterr().out


def _memory_chain_return(recurrent, *, memory_length, budget, seed, n_steps=32):
    env = make_env("gymnax", "MemoryChain-bsuite", n_envs=16,
                   env_kwargs={"memory_length": memory_length})  # fmt: skip
    hpo = {"n_steps": n_steps, "minibatch_size": 2 * n_steps, "learning_rate": 1e-3}
    agent = PPO(hpo, env, nas_config={"hidden_size": 32, "recurrent": recurrent})
    _, result = agent.train(*agent.init(jr.key(seed)), n_total_timesteps=budget,
                            n_eval_steps=1, n_eval_episodes=200)  # fmt: skip
    return float(result.eval_rewards[-1].mean())


def test_memory_chain_needs_memory_and_the_recurrent_agent_has_it():
    # The cue is shown only at the first of six steps and the answer is scored at the
    # last: a feed-forward policy answers at chance (mean return 0), a recurrent one
    # learns to remember the cue. 20k steps, 16 environments x 32 steps (about 10 s).
    assert _memory_chain_return("gru", memory_length=5, budget=20_000, seed=0) >= 0.9
    assert abs(_memory_chain_return("none", memory_length=5, budget=20_000, seed=0)) <= 0.2


@pytest.mark.slow
@pytest.mark.parametrize("recurrent", ["gru", "lstm"])
def test_a_longer_memory_chain_is_solved_by_both_cores(recurrent):
    # 31-step episodes, sequences of 64 steps, 300k steps per run (about 20 s each).
    for seed in (0, 1):
        ret = _memory_chain_return(
            recurrent, memory_length=30, budget=300_000, seed=seed, n_steps=64
        )
        assert ret >= 0.9, (seed, ret)
    feed_forward = _memory_chain_return(
        "none", memory_length=30, budget=300_000, seed=0, n_steps=64
    )
    assert abs(feed_forward) <= 0.2
