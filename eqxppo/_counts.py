"""Counts (budgets, episodes, seeds) as users write them: the one parser eqxppo has.

ARLBench's configs write budgets as `1e5`, YAML and JSON hand back floats, NumPy hands
back its own integers; all of those are fine when they are whole. A fractional count
(`1.5`) or a bool is a mistake, never something to truncate or to read as "the
default". Every place a count enters (the facades, `train`, the AutoRL environments,
sweeps, `tune`, the command line) goes through `as_count`. No eqxppo dependencies.
"""

import argparse
import math
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple, TypeAlias

import numpy as np


# A count as ARLBench's configs write it: an int, a NumPy integer, or an integral float (1e5).
Count: TypeAlias = int | float | np.integer | np.floating


def as_count(name: str, value: Any, low: int = 0) -> int:
    """`value` as an int >= `low`: ints, NumPy integers and integral floats (`1e5`) pass.

    **Raises:**

    `TypeError` for a bool or a non-number; `ValueError` for a fractional or non-finite
    float (`1.5`), or a count below `low`. The message names `name`.
    """
    if isinstance(value, bool | np.bool_) or not isinstance(
        value, int | float | np.integer | np.floating
    ):
        raise TypeError(f"`{name}` must be an integer, got {value!r} ({type(value).__name__}).")
    if isinstance(value, float | np.floating):
        if not math.isfinite(value) or not float(value).is_integer():
            raise ValueError(f"`{name}` must be a whole number, got {value!r}.")
    count = int(value)
    if count < low:
        raise ValueError(f"`{name}` must be >= {low}, got {value!r}.")
    return count


class Budget(NamedTuple):
    """A training budget as ints: environment steps, evaluation chunks, episodes each."""

    n_total_timesteps: int
    n_eval_steps: int
    n_eval_episodes: int


def check_budget(n_total_timesteps: Any, n_eval_steps: Any, n_eval_episodes: Any) -> Budget:
    """The budget as ints (`as_count`; at least one chunk and one episode)."""
    return Budget(
        as_count("n_total_timesteps", n_total_timesteps, 0),
        as_count("n_eval_steps", n_eval_steps, 1),
        as_count("n_eval_episodes", n_eval_episodes, 1),
    )


def budget_or_defaults(
    defaults: Mapping[str, Any],
    n_total_timesteps: Any = None,
    n_eval_steps: Any = None,
    n_eval_episodes: Any = None,
) -> Budget:
    """`check_budget` where `None` (and only `None`: `0` is a count) takes the value of
    `defaults` (a mapping with `Budget`'s field names, such as an AutoRL config)."""
    given = {"n_total_timesteps": n_total_timesteps, "n_eval_steps": n_eval_steps,
             "n_eval_episodes": n_eval_episodes}  # fmt: skip
    return check_budget(**{k: defaults[k] if v is None else v for k, v in given.items()})


def count_arg(low: int = 0) -> Callable[[str], int]:
    """An `argparse` type for a count flag: `100000`, `100_000` and `1e5` pass through
    `as_count`; anything else is argparse's usual one-line error."""

    def parse(text: str) -> int:
        try:
            number = int(text)
        except ValueError:
            try:
                number = float(text)
            except ValueError:
                raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        try:
            return as_count("value", number, low)
        except (TypeError, ValueError) as error:
            raise argparse.ArgumentTypeError(str(error).replace("`value` ", "")) from None

    return parse
