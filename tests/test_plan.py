"""The grouping rule: which members share a compiled program, and what it costs."""

import itertools

import pytest

from eqxppo.configspaces import PPOConfig
from eqxppo.population import GroupingCost, plan_groups
from eqxppo.population._plan import planned_seconds


def _configs(epochs, n_steps=16, minibatch_size=32):
    return [PPOConfig(n_steps, minibatch_size, e) for e in epochs]


def test_without_a_budget_only_equal_configs_share_a_program():
    configs = _configs([2, 4, 2]) + [PPOConfig(8, 32, 2)]
    groups = plan_groups(configs)
    assert [g.members for g in groups] == [(0, 2), (1,), (3,)]
    assert [g.config for g in groups] == [configs[0], configs[1], configs[3]]


def test_a_small_budget_merges_epochs_a_large_one_does_not():
    configs = _configs([1, 3, 3, 2]) + [PPOConfig(8, 32, 1)]
    cost = GroupingCost(compile_seconds=4.0, sample_epoch_seconds=1e-6)
    # 10k steps: the idle epochs (2 + 1 member-epochs) cost 0.03 s, far below 4 s.
    merged = plan_groups(configs, n_timesteps=10_000, cost=cost)
    assert [g.members for g in merged] == [(0, 1, 2, 3), (4,)]
    assert merged[0].config == PPOConfig(16, 32, 3)  # slots for the largest member
    # 10M steps: one idle member-epoch costs 10 s, more than a compilation.
    apart = plan_groups(configs, n_timesteps=10_000_000, cost=cost)
    assert [g.members for g in apart] == [(0,), (1, 2), (3,), (4,)]
    # Families of another n_steps or minibatch size never merge.
    assert {g.config.n_steps for g in merged} == {16, 8}


@pytest.mark.parametrize("seed", range(6))
def test_the_plan_is_the_cheapest_contiguous_cut(seed):
    import random

    rng = random.Random(seed)
    epochs = [rng.randint(1, 12) for _ in range(rng.randint(1, 9))]
    configs = _configs(epochs)
    cost = GroupingCost(compile_seconds=rng.choice([0.5, 4.0, 20.0]), sample_epoch_seconds=1e-6)
    budget = rng.choice([10_000, 300_000, 3_000_000])
    plan = plan_groups(configs, n_timesteps=budget, cost=cost)
    assert sorted(m for g in plan for m in g.members) == list(range(len(configs)))
    got = planned_seconds(plan, configs, n_timesteps=budget, cost=cost)

    distinct = sorted(set(epochs))
    best = float("inf")
    for cuts in itertools.product((False, True), repeat=len(distinct) - 1):
        runs, start = [], 0
        for i, cut in enumerate(cuts, 1):
            if cut:
                runs.append(distinct[start:i])
                start = i
        runs.append(distinct[start:])
        candidate = [
            type(plan[0])(PPOConfig(16, 32, max(run)),
                          tuple(m for m, e in enumerate(epochs) if e in run))
            for run in runs
        ]  # fmt: skip
        best = min(best, planned_seconds(candidate, configs, n_timesteps=budget, cost=cost))
    assert got == pytest.approx(best)
