"""`lax.scan` over a carry that holds Equinox modules with non-array leaves."""

from collections.abc import Callable
from typing import Any, TypeVar

import equinox as eqx
import jax


Carry = TypeVar("Carry")


def filter_scan(
    f: Callable[[Carry, Any], tuple[Carry, Any]],
    init: Carry,
    xs: Any = None,
    length: int | None = None,
) -> tuple[Carry, Any]:
    """`jax.lax.scan` whose carry may contain non-arrays (activation functions, ...).

    The carry is split into arrays, which `scan` threads, and everything else, which
    must stay the same across iterations and is closed over.
    """
    dynamic, static = eqx.partition(init, eqx.is_array)

    def body(dynamic_carry, x):
        carry, y = f(eqx.combine(dynamic_carry, static), x)
        new_dynamic, new_static = eqx.partition(carry, eqx.is_array)
        if not eqx.tree_equal(new_static, static):
            raise ValueError("filter_scan: the non-array part of the carry changed.")
        return new_dynamic, y

    dynamic, ys = jax.lax.scan(body, dynamic, xs, length)
    return eqx.combine(dynamic, static), ys
