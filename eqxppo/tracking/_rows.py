"""A training result as rows of scalars: one row per evaluation, the same for every
logger (CSV, TensorBoard, W&B) and for the command line's `metrics.csv`."""

import warnings
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np

from ..ppo import PPOTrainingResult


# One evaluation's scalars by column name, `step` (an int) among them.
Row = dict[str, int | float]

# A row's columns (the names `metrics.csv` uses) and the tag each has in TensorBoard and
# W&B: grouped into the dashboards' sections `eval/`, `train/` and `time/`.
TAGS: dict[str, str] = {
    "mean_return": "eval/return_mean",
    "min_return": "eval/return_min",
    "max_return": "eval/return_max",
    "loss": "train/loss",
    "value_loss": "train/value_loss",
    "actor_loss": "train/actor_loss",
    "entropy": "train/entropy",
    "grad_norm": "train/grad_norm",
    "steps_per_s": "time/steps_per_s",
    "diverged": "train/diverged",
}


def _mean(values: np.ndarray) -> float:
    """The mean over the finite-or-NaN entries, ignoring the NaN epoch slots a population
    member with fewer epochs than its group leaves; all NaN (a diverged update) stays NaN."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # "mean of empty slice"
        return float(np.nanmean(values))


PPO_TERMS = ("value_loss", "actor_loss", "entropy")


def loss_terms(extras: Any) -> list[tuple[str, Any]]:
    """A loss's extra outputs by name: PPO's three terms (`ppo_loss`'s tuple), or each
    leaf of another loss's pytree named by its path (`loss/kl`, `loss/0`, ...)."""
    leaves = jax.tree_util.tree_leaves_with_path(extras)
    if isinstance(extras, tuple) and len(extras) == len(PPO_TERMS) and len(leaves) == 3:
        return list(zip(PPO_TERMS, extras))
    return [("loss/" + "/".join(_key_name(k) for k in path), leaf) for path, leaf in leaves]


def _key_name(key: Any) -> str:
    """One step of a pytree path as a name: a dict's key, a sequence's index, a field."""
    for attr in ("key", "idx", "name"):
        if hasattr(key, attr):
            return str(getattr(key, attr))
    return str(key)


def evaluation_rows(result: PPOTrainingResult, *, steps: Sequence[int]) -> list[Row]:
    """One row per evaluation of one run's `result` (no member axis: see `member_result`).

    Each row holds `step` (from `steps`, one per evaluation: the global step at which it
    was taken) and the evaluation's `mean_return`, `min_return`, `max_return` over
    episodes; with `track_metrics`, also the means over that chunk's updates of `loss`,
    `value_loss`, `actor_loss`, `entropy` and `grad_norm`.
    """
    rewards = np.asarray(result.eval_rewards)
    if len(steps) != rewards.shape[0]:
        raise ValueError(f"{rewards.shape[0]} evaluations but {len(steps)} steps.")
    rows: list[Row] = []
    for i, step in enumerate(steps):
        returns = rewards[i]
        row: Row = {
            "step": int(step),
            "mean_return": round(float(returns.mean()), 4),
            "min_return": round(float(returns.min()), 4),
            "max_return": round(float(returns.max()), 4),
        }
        if result.metrics is not None:
            total, extras = result.metrics.loss
            terms = [("loss", total), *loss_terms(extras), ("grad_norm", result.metrics.grad_norm)]
            for name, values in terms:
                row[name] = round(_mean(np.asarray(values)[i]), 6)
        rows.append(row)
    return rows


def evaluation_steps(*, start_step: int, end_step: int, n_evaluations: int) -> list[int]:
    """The global steps of `train`'s evaluations: after each of its equal chunks."""
    chunk, rest = divmod(end_step - start_step, n_evaluations)
    if rest or chunk <= 0:
        raise ValueError(
            f"{end_step - start_step} steps do not split into {n_evaluations} equal chunks: "
            "pass the steps from the states before and after the same `train` call."
        )
    return [start_step + chunk * (i + 1) for i in range(n_evaluations)]


def member_result(result: PPOTrainingResult, member: int) -> PPOTrainingResult:
    """Member `member`'s part of a population's result (every leaf's leading axis)."""
    return jax.tree.map(lambda leaf: leaf[member], result)
