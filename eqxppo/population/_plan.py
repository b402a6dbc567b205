"""Which members share a compiled program: the grouping rule, explicit and costed.

Members whose `PPOConfig`s are equal always share a program. Members that differ only
in `update_epochs` *may* share one: the program holds as many epoch slots as its
largest member needs, and each member runs its own `hparams.update_epochs` of them.
Under `vmap` a skipped slot is not free (the branch becomes a select, so the member
computes the epoch and throws it away), so merging trades a compilation for masked
work. The rule weighs the two in seconds:

- a group costs `compile_seconds` once;
- a member with `e` epochs in a group of `E` slots wastes
  `(E - e) * n_timesteps * sample_epoch_seconds`: the gradient work of `E - e` epochs
  over the `n_timesteps` samples its budget collects.

Within each family of equal `(n_steps, minibatch_size)`, the distinct epoch counts,
sorted, are cut into contiguous runs that minimise compile plus masked seconds
(dynamic programming over the cut points, so the plan is optimal under the model).
Without a budget (`n_timesteps=None`) nothing is merged. The default costs were
measured on a 2-core CPU with the default MLP (a CartPole program compiles in about
4 s; one epoch of one sample costs about 2.5 us per member); on an accelerator the
masked work is much cheaper and merging pays more often: pass your own.
"""

from collections.abc import Sequence
from typing import NamedTuple

from ..configspaces import PPOConfig


class GroupingCost(NamedTuple):
    """The cost model `plan_groups` uses: seconds per compilation and per masked epoch."""

    compile_seconds: float = 4.0
    sample_epoch_seconds: float = 2.5e-6


class PlannedGroup(NamedTuple):
    """One compiled program: its config (epoch slots = the largest member's epochs) and
    its members in member order."""

    config: PPOConfig
    members: tuple[int, ...]


def _masked_seconds(
    epochs: Sequence[int], counts: Sequence[int], n_timesteps: int, cost: GroupingCost
) -> float:
    slots = max(epochs)
    idle = sum(c * (slots - e) for e, c in zip(epochs, counts))
    return idle * n_timesteps * cost.sample_epoch_seconds


def _cut(
    epochs: list[int], counts: list[int], n_timesteps: int, cost: GroupingCost
) -> list[tuple[int, int]]:
    """Optimal contiguous runs `[(i, j), ...]` of the sorted `epochs` (`j` exclusive)."""
    k = len(epochs)
    best = [0.0] + [float("inf")] * k  # best[j]: cheapest plan of epochs[:j]
    cut_at = [0] * (k + 1)
    for j in range(1, k + 1):
        for i in range(j):
            total = best[i] + cost.compile_seconds
            total += _masked_seconds(epochs[i:j], counts[i:j], n_timesteps, cost)
            if total < best[j]:
                best[j], cut_at[j] = total, i
    runs, j = [], k
    while j > 0:
        runs.append((cut_at[j], j))
        j = cut_at[j]
    return runs[::-1]


def plan_groups(
    configs: Sequence[PPOConfig],
    *,
    n_timesteps: int | None = None,
    cost: GroupingCost = GroupingCost(),
) -> list[PlannedGroup]:
    """Group members (one `PPOConfig` each) into compiled programs.

    **Arguments:**

    - `configs`: each member's own static structure.
    - `n_timesteps`: the budget each member will train for, which prices the masked
      epochs; `None` merges nothing (one group per distinct config).
    - `cost`: the seconds of one compilation and of one sample's epoch (`GroupingCost`).

    **Returns:**

    The groups, ordered by their first member; every member is in exactly one, and a
    group's `config.update_epochs` is the largest of its members'.
    """
    families: dict[tuple[int, int], dict[int, list[int]]] = {}
    for m, config in enumerate(configs):
        family = families.setdefault((config.n_steps, config.minibatch_size), {})
        family.setdefault(config.update_epochs, []).append(m)
    groups = []
    for (n_steps, minibatch_size), by_epochs in families.items():
        epochs = sorted(by_epochs)
        if n_timesteps is None:
            runs = [(i, i + 1) for i in range(len(epochs))]
        else:
            counts = [len(by_epochs[e]) for e in epochs]
            runs = _cut(epochs, counts, n_timesteps, cost)
        for i, j in runs:
            members = sorted(m for e in epochs[i:j] for m in by_epochs[e])
            config = PPOConfig(n_steps, minibatch_size, epochs[j - 1])
            groups.append(PlannedGroup(config, tuple(members)))
    return sorted(groups, key=lambda g: g.members[0])


def planned_seconds(
    groups: Sequence[PlannedGroup],
    configs: Sequence[PPOConfig],
    *,
    n_timesteps: int,
    cost: GroupingCost = GroupingCost(),
) -> float:
    """The model's compile plus masked seconds of a plan (what `plan_groups` minimises)."""
    total = 0.0
    for group in groups:
        epochs = [configs[m].update_epochs for m in group.members]
        total += cost.compile_seconds
        total += _masked_seconds(epochs, [1] * len(epochs), n_timesteps, cost)
    return total
