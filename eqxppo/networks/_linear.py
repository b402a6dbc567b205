"""An affine layer over a batch, with its reverse-mode derivative written out.

The point is the form of the three matrix products. Differentiating `x @ W.T + b`
automatically takes the weight gradient as `g.T @ x` with both operands contracted over
their leading (batch) axis, a product XLA:CPU runs about twice as slowly as the other two
(64 x 64 x 64: 11-14 us against 5-6 us). Here it is `barrier(g.T) @ x`: one transposed
copy of `g` (the barrier keeps XLA from folding the transpose back into the product), then
a plain product. Nothing else changes: the same values, the same gradients up to float
rounding. (Per-product times from the profiler trace, 2 CPU cores, jax 0.9.2.)
"""

import jax
import jax.numpy as jnp
from jax import lax
from jaxtyping import Array, Float


# Input sizes for which XLA:CPU's product against a transposed weight is slow (measured 1-16).
SLOW_INPUT_SIZES = (2, 3)


def _forward(x: Array, weight: Array, bias: Array) -> Array:
    if weight.shape[1] in SLOW_INPUT_SIZES:
        # 64 x 3 x 64: 5.2 us against 0.3 us on a transposed copy (see `_mlp.py`).
        return x @ lax.optimization_barrier(weight.T) + bias[None]
    return x @ weight.T + bias[None]


@jax.custom_vjp
def batched_linear(
    x: Float[Array, "batch in_features"],
    weight: Float[Array, "out_features in_features"],
    bias: Float[Array, " out_features"],
) -> Float[Array, "batch out_features"]:
    """`x @ weight.T + bias`, i.e. `jax.vmap(eqx.nn.Linear)`, for reverse-mode autodiff.

    `jax.grad` and `jax.vjp` work (under `vmap` too); forward mode (`jax.jvp`,
    `jax.jacfwd`) does not, as for any `jax.custom_vjp` function.
    """
    return _forward(x, weight, bias)


def _batched_linear_fwd(x: Array, weight: Array, bias: Array) -> tuple[Array, tuple[Array, Array]]:
    return _forward(x, weight, bias), (x, weight)


def _batched_linear_bwd(residuals: tuple[Array, Array], g: Array) -> tuple[Array, Array, Array]:
    x, weight = residuals
    # The weight gradient as a plain product on a transposed copy of `g`: CartPole's
    # minibatch step 66-71 -> 63-66 us (2 CPU cores, jax 0.9.2; benchmarks/README.md).
    # For 2 or 3 input features, `x.T @ g` (short output rows) is the fast form, transposed
    # after the barrier: Pendulum's step 83-84 us with `g.T @ x`, 75-79 us this way.
    if x.shape[1] in SLOW_INPUT_SIZES:
        grad_weight = lax.optimization_barrier(x.T @ g).T
    else:
        grad_weight = lax.optimization_barrier(g.T) @ x
    return g @ weight, grad_weight, jnp.sum(g, axis=0)


batched_linear.defvjp(_batched_linear_fwd, _batched_linear_bwd)
