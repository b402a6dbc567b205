"""Populations: grouping, member order, no recompilation, PBT, sharding."""

import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest
from conftest import assert_bitwise_equal, count_compiles

from eqxppo import PPO, make_env
from eqxppo.population import PopulationState, exploit_and_explore
from eqxppo.population._compile import program_keys
from eqxppo.population._grouped import bucket_size
from eqxppo.ppo import PPORunnerState


# `compat` marks the tests of JAX APIs whose behaviour moves between releases (vmap,
# sharding, compile counts, ahead-of-time compilation): every line of the matrix runs them.


SMALL = {"n_steps": 16, "minibatch_size": 32, "update_epochs": 2}
NAS = {"hidden_size": 16}
BUDGET = {"n_total_timesteps": 256, "n_eval_steps": 2, "n_eval_episodes": 3}


@pytest.fixture(scope="module")
def env():
    return make_env("gymnax", "CartPole-v1", n_envs=4)


def _first_weight(runner_state):
    return np.asarray(runner_state.train_state.network.actor.layers[0].weight)


@pytest.fixture(scope="module")
def mixed(env):
    """Configurations 0 and 2 share a static structure; configuration 1 does not."""
    configs = [
        {**SMALL, "learning_rate": 1e-3},
        {**SMALL, "n_steps": 8, "learning_rate": 3e-4, "ent_coef": 0.1},
        {**SMALL, "learning_rate": 1e-2, "gamma": 0.9},
    ]
    pop = PPO.population(configs, env, seeds=(3, 7), nas_config=NAS)
    state = pop.init(jr.key(0))
    trained, result = pop.train(state, **BUDGET)
    return configs, pop, state, trained, result


@pytest.mark.compat
def test_groups_follow_static_structure(mixed):
    _, pop, _, _, result = mixed
    assert pop.n_members == 6
    assert [g.members for g in pop.groups] == [(0, 1, 4, 5), (2, 3)]
    assert [g.config.n_steps for g in pop.groups] == [16, 8]
    assert pop.member_seeds == (3, 7, 3, 7, 3, 7)
    assert result.eval_rewards.shape == (6, 2, 3)


@pytest.mark.compat
def test_members_match_single_runs_in_member_order(env, mixed):
    configs, pop, _, trained, result = mixed
    for member in (1, 2, 4):
        config, seed = configs[member // 2], pop.seeds[member % 2]
        agent = PPO(config, env, nas_config=NAS)
        single, single_result = agent.train(*agent.init(jr.fold_in(jr.key(0), seed)), **BUDGET)
        np.testing.assert_allclose(
            _first_weight(pop.member(trained, member).runner_state),
            _first_weight(single.runner_state),
            rtol=1e-4,
            atol=1e-6,
        )
        np.testing.assert_allclose(result.eval_rewards[member], single_result.eval_rewards)
        assert pop.member_hpo_config(member, trained)["learning_rate"] == pytest.approx(
            config["learning_rate"]
        )


def test_same_seed_shares_initial_weights_different_seeds_do_not(mixed):
    _, pop, state, _, _ = mixed
    w = [_first_weight(pop.member(state, m).runner_state) for m in range(pop.n_members)]
    np.testing.assert_array_equal(w[0], w[4])  # seed 3, configurations 0 and 2
    assert not np.array_equal(w[0], w[1])  # seeds 3 and 7


def test_member_state_works_with_the_facade(env, mixed):
    _, pop, _, trained, _ = mixed
    member = pop.member(trained, 3)
    agent = PPO.from_population(pop, 3, trained)
    assert agent.config.n_steps == 8
    obs = member.runner_state.obs
    actions = agent.predict(member.runner_state, obs)
    assert actions.shape == (4,)
    state, _ = agent.train(*member, **BUDGET)  # a member state continues as a single run
    assert int(state.runner_state.global_step) == 512


@pytest.mark.compat
def test_update_hparams_takes_effect_without_recompiling(mixed):
    _, pop, state, trained, _ = mixed
    lrs = np.geomspace(1e-4, 1e-2, pop.n_members).astype(np.float32)
    state = pop.update_hparams(state, learning_rate=lrs, ent_coef=0.05)
    with count_compiles() as compiles:
        retrained, result = pop.train(state, **BUDGET)
        jax.block_until_ready((retrained, result))
    assert compiles.count == 0, compiles.names
    got = pop.get_hparams(retrained)
    np.testing.assert_allclose(got["learning_rate"], lrs, rtol=1e-6)
    np.testing.assert_allclose(got["ent_coef"], 0.05)
    for m in range(pop.n_members):
        assert not np.allclose(
            _first_weight(pop.member(retrained, m).runner_state),
            _first_weight(pop.member(trained, m).runner_state),
        )


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"n_steps": 4}, "Unknown continuous hyperparameter.*n_steps"),
        ({"learning_rate": np.ones(5)}, "learning_rate.*shape"),
        ({"gamma": 1.5}, "gamma"),
    ],
)
def test_update_hparams_rejects_bad_values(mixed, kwargs, match):
    _, pop, state, _, _ = mixed
    with pytest.raises(ValueError, match=match):
        pop.update_hparams(state, **kwargs)


def test_bad_member_and_foreign_state(env, mixed):
    _, pop, state, _, _ = mixed
    with pytest.raises(IndexError, match="member 6"):
        pop.member(state, 6)
    other = PPO.population([SMALL], env, seeds=(0,), nas_config=NAS)
    with pytest.raises(ValueError, match="group"):
        pop.train(other.init(jr.key(0)), **BUDGET)


def test_exploit_and_explore_copies_best_into_worst(env):
    pop = PPO.population([SMALL] * 4, env, seeds=(0,), nas_config=NAS)
    (group,) = pop.init(jr.key(0)).groups
    scores = jnp.asarray([3.0, 0.0, 2.0, 1.0])
    other_scores = jnp.asarray([0.0, 1.0, 2.0, 3.0])
    with count_compiles() as first:
        out = exploit_and_explore(group, scores, jr.key(1), n_worst=2)
    with count_compiles() as second:
        again = exploit_and_explore(group, other_scores, jr.key(2), n_worst=2)
        jax.block_until_ready(again)
    assert first.count >= 1 and second.count == 0, second.names
    w_in, w_out = _first_weight(group), _first_weight(out)
    lr_in = np.asarray(group.hparams.learning_rate)
    lr_out = np.asarray(out.hparams.learning_rate)
    for m in (0, 2):  # the best two are untouched
        np.testing.assert_array_equal(w_out[m], w_in[m])
        assert lr_out[m] == lr_in[m]
    for m in (1, 3):  # the worst two copy one of them and perturb
        assert any(np.array_equal(w_out[m], w_in[src]) for src in (0, 2))
        assert lr_out[m] / lr_in[0] == pytest.approx(0.8) or lr_out[m] / lr_in[0] == (
            pytest.approx(1.25)
        )
        assert 0.0 <= float(out.hparams.gamma[m]) <= 1.0
    # Copies keep their own key and environments.
    np.testing.assert_array_equal(jr.key_data(out.rng), jr.key_data(group.rng))
    np.testing.assert_array_equal(out.obs, group.obs)
    with pytest.raises(ValueError, match="n_worst"):
        exploit_and_explore(group, scores, jr.key(1), n_worst=3)


@pytest.mark.compat
def test_pbt_loop_compiles_only_in_the_first_round(env):
    pop = PPO.population(
        [{**SMALL, "learning_rate": lr} for lr in (1e-3, 3e-3, 1e-2, 3e-4)],
        env,
        seeds=(0,),
        nas_config=NAS,
    )
    state = pop.init(jr.key(0))
    for round_ in range(3):
        with count_compiles() as compiles:
            state, result = pop.train(state, **BUDGET)
            scores = np.asarray(result.eval_rewards[:, -1].mean(-1))
            state = pop.exploit_and_explore(state, scores, jr.key(round_), fraction=0.25)
            jax.block_until_ready(state)
        if round_ > 0:
            assert compiles.count == 0, compiles.names
    assert len(set(pop.get_hparams(state)["learning_rate"].tolist())) >= 3


@pytest.mark.parametrize(
    ("members", "rows"),
    [(1, 1), (2, 2), (3, 3), (4, 4), (5, 6), (6, 6), (7, 8), (9, 12), (13, 16), (17, 24), (25, 32)],
)
def test_bucket_sizes_are_powers_of_two_and_three_times_them(members, rows):
    assert bucket_size(members) == rows


@pytest.mark.compat
def test_bucketed_rows_train_members_as_unbucketed_and_reuse_the_program_of_a_size(env):
    configs = [{**SMALL, "learning_rate": lr} for lr in (1e-3, 3e-3, 1e-2, 3e-4, 2e-3, 5e-3)]
    plain = PPO.population(configs[:5], env, nas_config=NAS)
    bucketed = PPO.population(configs[:5], env, nas_config=NAS, bucket_rows=True)
    assert [g.n_padded for g in plain.groups] == [5]
    assert [g.n_padded for g in bucketed.groups] == [6]
    key = jr.key(0)
    plain_state, plain_result = plain.train(plain.init(key), **BUDGET)
    bucketed_state, bucketed_result = bucketed.train(bucketed.init(key), **BUDGET)
    assert bucketed_result.eval_rewards.shape == (5, 2, 3)
    np.testing.assert_allclose(bucketed_result.eval_rewards, plain_result.eval_rewards)
    for m in (0, 4):
        np.testing.assert_allclose(
            _first_weight(bucketed.member(bucketed_state, m).runner_state),
            _first_weight(plain.member(plain_state, m).runner_state),
            rtol=1e-5,
            atol=1e-7,
        )
    # A population of six is the same bucket: its train program is the one compiled
    # for five (what lets PBT's iterations regroup members without compiling again).
    six = PPO.population(configs, env, nas_config=NAS, bucket_rows=True)
    with count_compiles() as compiles:
        six.train(six.init(key), **BUDGET)
    assert not any("train" in name for name in compiles.names), compiles.names


def test_pbt_replaces_one_member_of_a_population_of_two(env):
    # The worst quarter rounds up (at most half): two members are enough to exploit.
    pop = PPO.population([SMALL, {**SMALL, "learning_rate": 1e-2}], env, seeds=(0,),
                         nas_config=NAS)  # fmt: skip
    state = pop.init(jr.key(0))
    new = pop.exploit_and_explore(state, np.array([1.0, 0.0]), jr.key(0), fraction=0.25)
    rates = pop.get_hparams(new)["learning_rate"]
    assert rates[0] == pop.get_hparams(state)["learning_rate"][0]
    assert rates[1] != pop.get_hparams(state)["learning_rate"][1]  # 1e-2 replaced by a copy


_SHARDED = textwrap.dedent(
    """
    import jax, jax.random as jr, numpy as np
    from eqxppo import PPO, make_env

    assert jax.device_count() == 4, jax.devices()
    env = make_env("gymnax", "CartPole-v1", n_envs=4)
    configs = [{"n_steps": 16, "minibatch_size": 32, "update_epochs": 2, "learning_rate": lr}
               for lr in (1e-3, 3e-3, 1e-2)]
    budget = dict(n_total_timesteps=256, n_eval_steps=2, n_eval_episodes=3)
    out = {}
    for name, devices in (("sharded", None), ("single", jax.devices()[:1])):
        pop = PPO.population(configs, env, seeds=(0, 1), nas_config={"hidden_size": 16},
                             devices=devices)
        state, result = pop.train(pop.init(jr.key(0)), **budget)
        (group,) = state.groups
        weights = group.train_state.network.actor.layers[0].weight
        out[name] = (pop.groups[0].n_padded, len(weights.sharding.device_set),
                     np.asarray(result.eval_rewards), np.asarray(weights[:6]))
    # At least two rows per device: six members on three of the four devices.
    assert out["sharded"][:2] == (6, 3), out["sharded"][:2]
    assert out["single"][:2] == (6, 1), out["single"][:2]
    np.testing.assert_allclose(out["sharded"][2], out["single"][2])
    np.testing.assert_allclose(out["sharded"][3], out["single"][3], rtol=1e-4, atol=1e-6)
    print("OK")
    """
)


@pytest.mark.compat
def test_sharded_population_matches_unsharded():
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4"}
    env.pop("JAX_PLATFORMS", None)
    proc = subprocess.run(
        [sys.executable, "-c", _SHARDED], env=env, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0 and "OK" in proc.stdout, proc.stderr[-4000:]


def test_population_rejects_bad_arguments(env):
    with pytest.raises(TypeError, match="(?i)sequence"):
        PPO.population(SMALL, env)  # pyright: ignore[reportArgumentType]
    with pytest.raises(ValueError, match="at least one"):
        PPO.population([SMALL], env, seeds=())
    with pytest.raises(ValueError, match="n_steps"):
        PPO.population([{**SMALL, "n_steps": 0}], env)


def test_one_diverging_member_does_not_spoil_the_others():
    from test_train import DIVERGES

    env = make_env("gymnax", "Pendulum-v1", n_envs=4)
    sane = {**DIVERGES, "learning_rate": 3e-4, "ent_coef": 0.0, "max_grad_norm": 0.5}
    budget = {"n_total_timesteps": 30_000, "n_eval_steps": 2, "n_eval_episodes": 2}
    runs = {}
    for first in ("diverges", "sane"):
        pop = PPO.population([DIVERGES if first == "diverges" else sane, sane], env,
                             seeds=(0,), nas_config=NAS)  # fmt: skip
        assert len(pop.groups) == 1  # one static structure: one program for both members
        state, result = pop.train(pop.init(jr.key(0)), **budget)
        runs[first] = (pop.diverged(state), pop.member(state, 1), result.eval_rewards[1])
    np.testing.assert_array_equal(runs["diverges"][0], [True, False])
    np.testing.assert_array_equal(runs["sane"][0], [False, False])
    # The sane member trains exactly as it does beside another sane member.
    assert_bitwise_equal(runs["diverges"][1], runs["sane"][1])
    np.testing.assert_array_equal(runs["diverges"][2], runs["sane"][2])


@pytest.mark.compat
def test_members_with_fewer_epochs_share_a_program_and_match_their_single_runs(env):
    # 1, 3 and 2 epochs in one program of 3 slots (a small budget makes merging pay).
    configs = [{**SMALL, "update_epochs": e, "learning_rate": 3e-3} for e in (1, 3, 2)]
    with count_compiles() as compiles:
        pop = PPO.population(configs, env, seeds=(5,), nas_config=NAS, planned_timesteps=256)
        trained, result = pop.train(pop.init(jr.key(0)), **BUDGET)
    assert [g.members for g in pop.groups] == [(0, 1, 2)]
    assert pop.groups[0].config.update_epochs == 3
    assert sum("train_population" in n for n in compiles.names) == 1, compiles.names
    for member, epochs in enumerate((1, 3, 2)):
        agent = PPO(configs[member], env, nas_config=NAS, track_metrics=True)
        assert agent.config.update_epochs == epochs  # alone: exactly its own slots
        single, single_result = agent.train(*agent.init(jr.fold_in(jr.key(0), 5)), **BUDGET)
        np.testing.assert_allclose(
            _first_weight(pop.member(trained, member).runner_state),
            _first_weight(single.runner_state),
            rtol=1e-4,
            atol=1e-6,
        )
        np.testing.assert_allclose(result.eval_rewards[member], single_result.eval_rewards)
        assert pop.member_hpo_config(member, trained)["update_epochs"] == epochs
    # Without a planned budget the three stay apart.
    assert len(PPO.population(configs, env, nas_config=NAS).groups) == 3


def test_skipped_epoch_slots_report_nan_and_grad_info_ignores_them(env):
    configs = [{**SMALL, "update_epochs": e} for e in (1, 2)]
    pop = PPO.population(configs, env, nas_config=NAS, planned_timesteps=256, track_metrics=True)
    _, result = pop.train(pop.init(jr.key(0)), **BUDGET)
    grads = np.asarray(result.metrics.grads)  # (member, chunk, update, slot, minibatch)
    assert np.all(np.isfinite(grads[1])) and np.all(np.isfinite(grads[0][:, :, 0]))
    assert np.all(np.isnan(grads[0][:, :, 1]))
    norm, var = result.metrics.grad_info()
    assert np.all(np.isfinite(norm)) and np.all(np.isfinite(var))
    np.testing.assert_allclose(norm[0], grads[0][:, :, 0].mean(-1), rtol=1e-6)


def test_metrics_of_groups_with_other_shapes_stack_nan_padded_and_match_single_runs(env):
    # n_steps 16 and 32: two programs whose per-update metrics differ in updates per
    # chunk and minibatches; a population with track_metrics returns them as one array
    # (it raised before), each member's missing slots NaN (both lack some: the first
    # has more updates, the second more minibatches).
    configs = [{**SMALL, "n_steps": n} for n in (16, 32)]
    pop = PPO.population(configs, env, nas_config=NAS, track_metrics=True)
    assert len(pop.groups) == 2
    _, result = pop.train(pop.init(jr.key(0)), **BUDGET)
    losses = np.asarray(result.metrics.loss[0])  # (member, chunk, update, slot, minibatch)
    for member, config in enumerate(configs):
        agent = PPO(config, env, nas_config=NAS, track_metrics=True)
        _, single = agent.train(*agent.init(jr.fold_in(jr.key(0), 0)), **BUDGET)
        own = np.asarray(single.metrics.loss[0])
        real = losses[member][tuple(slice(0, n) for n in own.shape)]
        np.testing.assert_allclose(real, own, rtol=1e-4, atol=1e-6)
        assert np.isnan(losses[member]).sum() == losses[member].size - own.size


def test_normalisation_switches_are_traced_and_split_no_group(env):
    configs = [
        {**SMALL, "normalize_advantage": a, "normalize_observations": o}
        for a in (True, False) for o in (True, False)
    ]  # fmt: skip
    pop = PPO.population(configs, env, nas_config=NAS)
    assert len(pop.groups) == 1
    trained, result = pop.train(pop.init(jr.key(0)), **BUDGET)
    for member in (1, 2):  # (True, False) and (False, True)
        agent = PPO(configs[member], env, nas_config=NAS)
        single, _ = agent.train(*agent.init(jr.fold_in(jr.key(0), 0)), **BUDGET)
        np.testing.assert_allclose(
            _first_weight(pop.member(trained, member).runner_state),
            _first_weight(single.runner_state),
            rtol=1e-4,
            atol=1e-6,
        )
    counts = np.asarray(trained.groups[0].normalizer_state.count)
    np.testing.assert_array_equal(counts > 0, [True, False, True, False])


# Each case: a NAS field, two values, and the environment's image flag. A population
# finds another's program in `PROGRAMS` when its key cannot tell the values apart
# (activation could not once: the key kept the static partition's structure, not the
# function it holds), and then trains like it (same shapes) or fails (other shapes).
# That a member trains as its single run is `test_members_match_single_runs_in_member_order`
# and the reproducibility tests' work.
STATIC_NAS_CASES = [
    ("activation", "tanh", "relu"),
    ("hidden_size", 16, 32),
    ("cnn_policy", False, True),
    ("recurrent", "gru", "lstm"),  # one hidden size, two cores
]


@pytest.mark.parametrize(("field", "first", "second"), STATIC_NAS_CASES, ids=lambda x: str(x))
def test_populations_differing_in_one_static_nas_value_never_share_a_program(field, first, second):
    # `PROGRAMS` holds a population's train programs by `program_keys`: two keys that
    # differ are two entries. (Training each would show the same, at a compilation each.)
    name = "Breakout-MinAtar" if field == "cnn_policy" else "CartPole-v1"
    keys = []
    for value in (first, second):
        nas = {**NAS, field: value} if field != "cnn_policy" else NAS
        cnn = field == "cnn_policy" and bool(value)
        env = make_env("gymnax", name, n_envs=4, cnn_policy=cnn)
        pop = PPO.population([SMALL], env, seeds=(0,), nas_config=nas, cnn_policy=cnn)
        options = pop.spec.train_options(**BUDGET)
        (key,) = program_keys(pop.spec, pop.groups, pop.init(jr.key(0)), options)[0]
        hash(key)  # a dict key
        keys.append(key)
    assert keys[0] != keys[1]


def test_the_runner_state_fields_are_each_learned_or_own():
    """PBT copies the learned fields and keeps the own ones: a new field of the runner
    state must be put on one side, or PBT would silently drop or keep it."""
    assert set(PPORunnerState.LEARNED_FIELDS) | set(PPORunnerState.OWN_FIELDS) == set(
        PPORunnerState._fields
    )
    assert not set(PPORunnerState.LEARNED_FIELDS) & set(PPORunnerState.OWN_FIELDS)


def test_pbt_revives_a_diverged_member_which_then_trains_again(env):
    """A diverged member is the likeliest worst one; replaced by a copy of a good member
    it must carry the copy's flag, or it would keep the good network and never train."""
    pop = PPO.population([SMALL] * 2, env, seeds=(0,), nas_config=NAS)
    (group,) = pop.init(jr.key(0)).groups
    group = group._replace(diverged=jnp.asarray([True, False]))
    revived = exploit_and_explore(group, jnp.asarray([-1.0, 1.0]), jr.key(1), n_worst=1)
    np.testing.assert_array_equal(np.asarray(revived.diverged), [False, False])
    np.testing.assert_array_equal(_first_weight(revived)[0], _first_weight(group)[1])
    before = _first_weight(revived)
    trained, _ = pop.train(PopulationState((revived,)), **BUDGET)
    assert not pop.diverged(trained).any()
    after = _first_weight(trained.groups[0])
    assert not np.array_equal(after[0], before[0])  # the revived member learns again
