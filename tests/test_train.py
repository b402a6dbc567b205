"""Free functions `init`, `train`, `predict`, `evaluate` on small budgets."""

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import optax
import pytest
from conftest import count_compiles

from eqxppo import PPO, make_env
from eqxppo.configspaces import parse_hpo_config, parse_nas_config
from eqxppo.ppo import evaluate, init, make_optimizer, ppo_loss, predict, train


# `compat` marks the tests of JAX APIs whose behaviour moves between releases (vmap,
# sharding, compile counts, ahead-of-time compilation): every line of the matrix runs them.


SMALL = {"n_steps": 16, "minibatch_size": 32, "update_epochs": 2}
NET = parse_nas_config({"hidden_size": 16})
BUDGET = {"n_total_timesteps": 256, "n_eval_steps": 2, "n_eval_episodes": 3}


def _arrays(tree):
    return jax.tree.leaves(eqx.filter(tree, eqx.is_array))


def _run(key, env, hpo=SMALL, timesteps=256, **kwargs):
    config, hparams = parse_hpo_config(hpo)
    runner_state, _ = init(key, env, NET, hparams)
    return train(
        runner_state, env, config, n_total_timesteps=timesteps, n_eval_steps=2, n_eval_episodes=3,
        **kwargs,
    )  # fmt: skip


@pytest.fixture(scope="module")
def cartpole():
    return make_env("gymnax", "CartPole-v1", n_envs=4)


@pytest.mark.compat
def test_same_seed_same_bits_other_seed_differs(cartpole):
    a, ra = _run(jr.key(0), cartpole)
    b, rb = _run(jr.key(0), cartpole)
    c, _ = _run(jr.key(1), cartpole)
    for x, y in zip(_arrays(a.train_state), _arrays(b.train_state)):
        np.testing.assert_array_equal(x, y)
    np.testing.assert_array_equal(ra.eval_rewards, rb.eval_rewards)
    assert any(
        not np.array_equal(x, y) for x, y in zip(_arrays(a.train_state), _arrays(c.train_state))
    )


def test_budget_rounding_and_shapes(cartpole):
    # 300 steps in 2 chunks of 4 envs x 16 steps: ceil(300 / 128) = 3 updates per chunk.
    state, result = _run(jr.key(0), cartpole, timesteps=300)
    assert int(state.global_step) == 2 * 3 * 4 * 16
    assert result.eval_rewards.shape == (2, 3)
    assert result.metrics is None and result.trajectories is None
    assert int(state.train_state.step) == 2 * 3 * 2 * 2  # updates x epochs x minibatches


@pytest.mark.compat
def test_tracked_metrics_and_trajectories(cartpole):
    _, result = _run(jr.key(0), cartpole, track_metrics=True, track_trajectories=True)
    total, (v_loss, a_loss, entropy) = result.metrics.loss
    assert total.shape == (2, 2, 2, 2)  # chunks, updates (256 / 128), epochs, minibatches
    assert result.metrics.grads.shape == (2, 2, 2, 2)
    assert result.metrics.advantages.shape == (2, 2, 16, 4)
    traj = result.trajectories
    assert traj.obs.shape == (2, 2, 16, 4, 4) and traj.action.dtype == jnp.int32
    np.testing.assert_array_equal(traj.done, traj.terminated | traj.truncated)


@pytest.mark.compat
def test_continuous_hparams_recompile_nothing_and_take_effect(cartpole):
    config, hparams = parse_hpo_config(SMALL)
    state, _ = init(jr.key(0), cartpole, NET, hparams)
    base, _ = train(state, cartpole, config, **BUDGET)  # compiles
    with count_compiles() as compiles:
        for change in ({"learning_rate": 1e-2}, {"ent_coef": 0.3}, {"gamma": 0.5}):
            _, new_hparams = parse_hpo_config({**SMALL, **change})
            out, _ = train(state._replace(hparams=new_hparams), cartpole, config, **BUDGET)
            jax.block_until_ready(out)
            assert float(getattr(out.hparams, next(iter(change)))) == pytest.approx(
                next(iter(change.values()))
            )
            assert any(
                not np.array_equal(x, y)
                for x, y in zip(_arrays(base.train_state), _arrays(out.train_state))
            ), change
    assert compiles.count == 0, compiles.names


@pytest.mark.parametrize(
    "hpo",
    [
        # Every corner the HPO space can reach: minibatch larger than the batch, one env.
        {"n_steps": 5, "minibatch_size": 2048, "update_epochs": 1, "max_grad_norm": 0.0,
         "clip_eps": 0.0, "vf_clip_eps": 0.0, "gamma": 1.0, "gae_lambda": 0.9999},
        # Minibatch not dividing the batch (5 * 3 = 15 = 2 x 7 + 1), observation
        # normalisation on, no advantage normalisation.
        {"n_steps": 5, "minibatch_size": 7, "update_epochs": 1, "normalize_observations": True,
         "normalize_advantage": False, "ent_coef": 0.5, "learning_rate": 0.1},
    ],
)  # fmt: skip
def test_corner_configurations_train_and_stay_finite(hpo):
    env = make_env("gymnax", "CartPole-v1", n_envs=3 if hpo["minibatch_size"] == 7 else 1)
    config, hparams = parse_hpo_config(hpo)
    net = parse_nas_config({"hidden_size": 1})
    state, _ = init(jr.key(0), env, net, hparams)
    out, result = train(state, env, config, n_total_timesteps=40, n_eval_steps=2, n_eval_episodes=2)
    leaves = _arrays(out.train_state)
    assert all(np.all(np.isfinite(x)) for x in leaves)
    before = _arrays(state.train_state.network)
    after = _arrays(out.train_state.network)
    assert any(not np.array_equal(x, y) for x, y in zip(before, after))  # it trained
    assert np.all(np.isfinite(result.eval_rewards))
    # The statistics move only while the (traced) switch is on.
    seen = int(out.global_step) if hpo.get("normalize_observations") else 0
    assert float(out.normalizer_state.count) == seen


def test_wrong_environment_for_state_is_rejected(cartpole):
    config, hparams = parse_hpo_config(SMALL)
    state, _ = init(jr.key(0), cartpole, NET, hparams)
    other = make_env("gymnax", "CartPole-v1", n_envs=2)
    with pytest.raises(ValueError, match=r"runner_state.obs has shape \(4, 4\)"):
        train(state, other, config, n_total_timesteps=64, n_eval_steps=1, n_eval_episodes=1)
    with pytest.raises(ValueError, match="n_eval_steps"):
        train(state, cartpole, config, n_total_timesteps=64, n_eval_steps=0, n_eval_episodes=1)


def test_evaluation_is_bounded_by_the_time_limit(getkey):
    # Pendulum never terminates: every episode runs to its (shortened) time limit.
    env = make_env("gymnax", "Pendulum-v1", n_envs=2, env_kwargs={"max_steps_in_episode": 7})
    _, hparams = parse_hpo_config({})
    state, _ = init(getkey(), env, NET, hparams)
    returns = evaluate(state.train_state.network, state.normalizer_state, env, getkey(), 5)
    assert returns.shape == (5,)
    # Pendulum's reward lies in [-16.3, 0]: 7 steps give a return in [-115, 0).
    assert np.all((np.asarray(returns) < 0) & (np.asarray(returns) > -115))


def test_predict_discrete_and_continuous(getkey):
    for name in ("CartPole-v1", "Pendulum-v1"):
        env = make_env("gymnax", name, n_envs=2)
        config, hparams = parse_hpo_config({})
        state, _ = init(getkey(), env, NET, hparams)
        obs = state.obs
        one = predict(state, obs[0], getkey(), env)
        batch = predict(state, obs, getkey(), env, deterministic=False)
        nested = predict(state, jnp.stack([obs, obs]), getkey(), env)
        spec = env.action_spec
        if spec.discrete:
            assert one.shape == () and batch.shape == (2,) and nested.shape == (2, 2)
            assert one.dtype == jnp.int32
        else:
            assert one.shape == (1,) and batch.shape == (2, 1) and nested.shape == (2, 2, 1)
            assert np.all(np.abs(np.asarray(batch)) <= 2.0)
        with pytest.raises(ValueError, match="obs_shape"):
            predict(state, jnp.ones((2, 5)), getkey(), env)


@pytest.mark.compat
def test_vmapped_init_and_train_over_seeds(cartpole):
    # A population of seeds under one vmap (the batched-QR trap of jax 0.10 on CPU).
    config, hparams = parse_hpo_config(SMALL)
    keys = jr.split(jr.key(0), 3)
    states = eqx.filter_vmap(lambda k: init(k, cartpole, NET, hparams).runner_state)(keys)
    assert states.obs.shape == (3, 4, 4)
    out, result = eqx.filter_vmap(
        lambda s: train(
            s, cartpole, config, n_total_timesteps=128, n_eval_steps=1, n_eval_episodes=2
        )
    )(states)
    assert result.eval_rewards.shape == (3, 1, 2)
    single, _ = init(keys[1], cartpole, NET, hparams)
    np.testing.assert_allclose(
        states.train_state.network.actor.layers[0].weight[1],
        single.train_state.network.actor.layers[0].weight,
        atol=1e-6,
    )


def test_cnn_policy_trains_on_minatar():
    env = make_env("gymnax", "Breakout-MinAtar", cnn_policy=True, n_envs=2)
    config, hparams = parse_hpo_config({"n_steps": 8, "minibatch_size": 8, "update_epochs": 1})
    net = parse_nas_config({"hidden_size": 8}, cnn_policy=True)
    state, _ = init(jr.key(0), env, net, hparams)
    out, result = train(state, env, config, n_total_timesteps=16, n_eval_steps=1, n_eval_episodes=1)
    assert int(out.global_step) == 16 and result.eval_rewards.shape == (1, 1)


# Within ARLBench's space: the largest learning rate and entropy bonus, no clipping. The
# entropy bonus pushes Pendulum's log-std up by about the learning rate per step until
# the Gaussian overflows float32.
DIVERGES = {"learning_rate": 0.1, "ent_coef": 0.5, "max_grad_norm": 0.0, "n_steps": 64,
            "minibatch_size": 32}  # fmt: skip


@pytest.mark.compat
def test_a_diverging_run_is_reported_and_keeps_its_last_finite_network():
    env = make_env("gymnax", "Pendulum-v1", n_envs=4)
    config, hparams = parse_hpo_config(DIVERGES)
    state, _ = init(jr.key(0), env, NET, hparams)
    assert not bool(state.diverged)
    out, result = train(
        state, env, config, n_total_timesteps=30_000, n_eval_steps=10, n_eval_episodes=2,
        track_metrics=True,
    )  # fmt: skip
    assert result.metrics is not None
    losses_finite = np.isfinite(np.asarray(result.metrics.loss[0])).reshape(10, -1).all(-1)
    assert losses_finite[0] and not losses_finite.all()  # it really diverges, after a while
    assert bool(out.diverged)
    assert all(np.all(np.isfinite(x)) for x in _arrays(out.train_state))
    assert np.all(np.isfinite(np.asarray(result.eval_rewards)))
    # Frozen at the divergence: training on changes nothing of the network.
    again, _ = train(out, env, config, n_total_timesteps=2_000, n_eval_steps=1, n_eval_episodes=1)
    for x, y in zip(_arrays(out.train_state), _arrays(again.train_state)):
        np.testing.assert_array_equal(x, y)


def test_a_diverged_run_freezes_its_observation_statistics_too():
    """The frozen policy depends on the statistics it normalises with: they must not
    move once the run diverged (they kept moving with every rollout)."""
    env = make_env("gymnax", "Pendulum-v1", n_envs=4)
    config, hparams = parse_hpo_config({**DIVERGES, "normalize_observations": True})
    state, _ = init(jr.key(0), env, NET, hparams)
    out, _ = train(state, env, config, n_total_timesteps=30_000, n_eval_steps=1)
    assert bool(out.diverged)
    again, _ = train(out, env, config, n_total_timesteps=2_000, n_eval_steps=1, n_eval_episodes=1)
    assert int(again.global_step) > int(out.global_step)  # the environments still step
    for x, y in zip(_arrays(out.normalizer_state), _arrays(again.normalizer_state), strict=True):
        np.testing.assert_array_equal(x, y)


def _overflowing_loss(network, batch, hparams):
    """PPO's loss plus a term whose value stays finite (about 1e25) but whose gradient
    squared (about 1e50) overflows float32 in Adam's second moment."""
    total, aux = ppo_loss(network, batch, hparams)
    _, values = network.forward_batch(batch.obs)
    return total + 1e25 * jnp.mean(values), aux


def test_an_update_that_overflows_the_optimizer_state_is_dropped_and_reported(cartpole):
    # With max_grad_norm = 0 nothing clips the gradient; Adam's `nu` becomes inf, its
    # update exactly 0: the losses and the parameters stay finite, the run never learns
    # again, and only the optimizer state shows it.
    config, hparams = parse_hpo_config({**SMALL, "max_grad_norm": 0.0})
    state, _ = init(jr.key(0), cartpole, NET, hparams)
    options = {"n_total_timesteps": 64, "n_eval_steps": 1, "n_eval_episodes": 1}
    out, result = train(state, cartpole, config, loss=_overflowing_loss, track_metrics=True,
                        **options)  # fmt: skip
    assert result.metrics is not None
    assert np.all(np.isfinite(np.asarray(result.metrics.loss[0])))  # the losses look fine
    assert bool(out.diverged)
    for x, y in zip(_arrays(state.train_state), _arrays(out.train_state), strict=True):
        np.testing.assert_array_equal(x, y)  # the update was dropped, moments included


def test_the_loss_and_the_optimizer_are_arguments(cartpole):
    """`train(loss=..., optimizer=...)` swaps PPO's objective and its optimizer: a loss
    that adds the entropy bonus back trains as `ent_coef = 0` does, and plain SGD
    (its state made by `init(optimizer=...)`) trains otherwise than Adam."""

    def without_entropy_bonus(network, batch, hparams):
        total, (value_loss, actor_loss, entropy) = ppo_loss(network, batch, hparams)
        return total + hparams.ent_coef * entropy, (value_loss, actor_loss, entropy)

    runs = {}
    for name, hpo, loss in (
        ("custom", {**SMALL, "ent_coef": 0.3}, without_entropy_bonus),
        ("zero", {**SMALL, "ent_coef": 0.0}, ppo_loss),
    ):
        config, hparams = parse_hpo_config(hpo)
        state, _ = init(jr.key(0), cartpole, NET, hparams)
        runs[name], _ = train(state, cartpole, config, loss=loss, **BUDGET)
    for x, y in zip(_arrays(runs["custom"].train_state), _arrays(runs["zero"].train_state)):
        np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-6)

    sgd = lambda hparams: optax.sgd(hparams.learning_rate)
    config, hparams = parse_hpo_config(SMALL)
    state, _ = init(jr.key(0), cartpole, NET, hparams, optimizer=sgd)
    out, _ = train(state, cartpole, config, optimizer=sgd, **BUDGET)
    adam = runs["zero"].train_state.network
    moved = [
        not np.array_equal(x, y) for x, y in zip(_arrays(out.train_state.network), _arrays(adam))
    ]
    assert any(moved) and not bool(out.diverged)


def test_a_multi_transform_that_freezes_the_critic_trains_only_the_actor():
    """The optimizer sees the parameter tree as optax does: `optax.multi_transform` with
    the critic's leaves labelled "freeze" leaves the critic exactly as initialised while
    the actor trains, through `PPO(..., optimizer=...)`. (On one raveled vector the
    labels would not even match the parameters' structure.)"""

    def labels(params):
        train_all = jax.tree.map(lambda _: "train", params)
        freeze = lambda critic: jax.tree.map(lambda _: "freeze", critic)
        return eqx.tree_at(lambda p: p.critic, train_all, replace_fn=freeze)

    def actor_only(hparams):
        transforms = {"train": make_optimizer(hparams), "freeze": optax.set_to_zero()}
        return optax.multi_transform(transforms, labels)

    env = make_env("gymnax", "CartPole-v1", n_envs=4)
    agent = PPO({**SMALL, "n_steps": 16}, env, optimizer=actor_only)
    state = agent.init(jr.key(0))
    before = state.runner_state.train_state.network
    out, _ = agent.train(*state, n_total_timesteps=512, n_eval_steps=1, n_eval_episodes=2)
    after = out.runner_state.train_state.network
    assert not bool(out.runner_state.diverged)
    for x, y in zip(_arrays(before.critic), _arrays(after.critic)):
        np.testing.assert_array_equal(x, y)
    assert any(
        not np.array_equal(x, y) for x, y in zip(_arrays(before.actor), _arrays(after.actor))
    )
    # The default optimizer trains the critic too.
    default = PPO({**SMALL, "n_steps": 16}, env)
    out, _ = default.train(
        *default.init(jr.key(0)), n_total_timesteps=512, n_eval_steps=1, n_eval_episodes=2
    )
    moved = out.runner_state.train_state.network.critic
    assert any(not np.array_equal(x, y) for x, y in zip(_arrays(before.critic), _arrays(moved)))


def test_a_loss_may_report_any_pytree_of_extras_in_a_population():
    """`loss=` on `Population`: the extras are whatever the loss returns (here a dict
    with an approximate KL), stacked per member and minibatch, and named in the rows."""
    from eqxppo.ppo import policy_and_value
    from eqxppo.tracking import evaluation_rows, member_result

    def with_kl(network, batch, hparams):
        total, (value_loss, actor_loss, entropy) = ppo_loss(network, batch, hparams)
        dist, _ = policy_and_value(network, batch)
        log_prob = jax.vmap(lambda d, a: d.log_prob(a))(dist, batch.action)
        kl = jnp.mean(batch.log_prob - log_prob)
        return total, {"kl": kl, "terms": (value_loss, actor_loss, entropy)}

    env = make_env("gymnax", "CartPole-v1", n_envs=4)
    pop = PPO.population([{**SMALL, "n_steps": 16}], env, seeds=(0, 1), loss=with_kl,
                         track_metrics=True)  # fmt: skip
    state, result = pop.train(pop.init(jr.key(0)), 512, 1, 2)
    assert result.metrics is not None
    total, extras = result.metrics.loss
    assert set(extras) == {"kl", "terms"} and extras["kl"].shape == total.shape
    assert total.shape[0] == 2 and np.all(np.isfinite(extras["kl"]))
    row = evaluation_rows(member_result(result, 0), steps=[512])[0]
    assert {"loss", "loss/kl", "loss/terms/0", "grad_norm"} <= set(row)
