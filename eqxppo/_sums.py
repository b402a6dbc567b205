"""Sums whose rounding does not depend on the program around them.

A population trains its members under `vmap`; for a member to train bit for bit as its
single run, every float operation must round the same with and without the member axis.
XLA:CPU orders the additions of a reduction over a leading axis by the shape around it
(`x.sum(axis=0)` alone and under `vmap` can differ in the last bit); an elementwise
addition of fixed operands rounds the same everywhere.
"""

import jax.numpy as jnp
from jax import lax
from jaxtyping import Array, Float


def column_sum(x: Float[Array, "n *rest"]) -> Float[Array, "*rest"]:
    """`x.sum(axis=0)` in a fixed order: zero-padded to a power of two, then halves added
    elementwise until one row is left.

    The same value under `vmap` as alone (see the module's text); costs `log2(n)`
    elementwise additions.
    """
    n = x.shape[0]
    size = 1 << max(0, (n - 1).bit_length())
    x = jnp.concatenate([x, jnp.zeros((size - n, *x.shape[1:]), x.dtype)]) if size > n else x
    while x.shape[0] > 1:
        half = x.shape[0] // 2
        x = x[:half] + x[half:]
    return x[0]


def fixed_sum(x: Float[Array, "..."]) -> Float[Array, ""]:
    """The sum of every entry of `x`, in `column_sum`'s fixed order."""
    return column_sum(x.reshape(-1))


def fixed_mean(x: Float[Array, "..."]) -> Float[Array, ""]:
    """The mean of every entry of `x`, in `column_sum`'s fixed order, times `1 / size`
    held opaque: XLA folds chains of constant factors (`0.5 * sum / n`, and their
    gradients) differently in different shapes, and cannot fold a value it cannot see."""
    inverse = lax.optimization_barrier(jnp.asarray(1.0 / x.size, x.dtype))
    return fixed_sum(x) * inverse


def fixed_var(x: Float[Array, "..."]) -> Float[Array, ""]:
    """The (population) variance of every entry of `x`, in `column_sum`'s fixed order."""
    return fixed_mean(jnp.square(x - fixed_mean(x)))
