"""XLA:CPU kernels: other formulations of the same functions, for CPU speed.

The algorithm and the networks are written in plain Equinox and JAX (`jax.vmap(network)`,
`eqx.nn.Conv2d`, `jax.random.permutation`). On XLA:CPU a few of those formulations run
on slow generic paths; this module holds equivalent forms that stay on fast ones. Each
computes the same values and the same reverse-mode gradients as the plain form (tested
in `tests/test_xla_cpu.py`); `benchmarks/README.md` has what each one buys.

Which form runs is not read at trace time: `default_kernels()` resolves the choice once,
when a network is made (`EQXPPO_KERNELS`: `auto`, the default, means the CPU forms when
JAX's default backend is the CPU; `cpu` or `plain` force one), and the network holds it
as a static field (`kernels`). A module's computation is then a function of its fields,
and every cache keyed by a program's inputs (`jit`'s, `eqxppo.ppo`'s `PROGRAMS`) sees it.
Only code in this module knows about the CPU; the callers pass the choice they hold.
"""

import math
import os
from typing import Literal, TypeAlias, get_args

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
from jax import lax
from jaxtyping import Array, Float, Int, PRNGKeyArray

from ._sums import column_sum


KERNELS_ENV_VAR = "EQXPPO_KERNELS"
# The CPU forms of this module, or the plain Equinox/JAX forms (the reference, and the
# ones every other backend runs).
Kernels: TypeAlias = Literal["cpu", "plain"]
KERNELS: tuple[Kernels, ...] = get_args(Kernels)


def default_kernels() -> Kernels:
    """The kernels a new network uses: `EQXPPO_KERNELS` (`auto` by default: the CPU
    forms when JAX's default backend is the CPU)."""
    choice = os.environ.get(KERNELS_ENV_VAR, "auto").lower()
    if choice == "auto":
        return "cpu" if jax.default_backend() == "cpu" else "plain"
    return check_kernels(choice, what=KERNELS_ENV_VAR)


def check_kernels(choice: str, *, what: str = "kernels") -> Kernels:
    """`choice` as a `Kernels` value; `ValueError` naming `what` otherwise."""
    for kernels in KERNELS:
        if choice == kernels:
            return kernels
    raise ValueError(f"{what}={choice!r}; expected one of {['auto', *KERNELS]}.")


# -- compiler options ---------------------------------------------------------------------

# XLA options for the programs eqxppo compiles ahead of time (a population's). They are
# XLA's defaults, the options `jit` compiles a single run with: a member then trains
# bit for bit as its single run (`tests/test_reproducibility.py`). LLVM's optimisation
# level 1 compiled a population's train program in 9.3 s instead of 14.5 s (CartPole-v1,
# 8 members, 100k steps) and trained as fast, but LLVM then fuses a few float operations
# differently (an observation variance differed in its last bit after five updates),
# and a study's numbers would depend on whether a trial trained alone or in a batch.


def compiler_options(kernels: Kernels) -> dict[str, int]:
    """XLA options for the programs eqxppo compiles ahead of time for networks that use
    `kernels`: XLA's defaults with either kernels (see above)."""
    del kernels
    return {}


# -- dense layers -------------------------------------------------------------------------

# Input sizes for which XLA:CPU's product against a transposed weight is slow.
SLOW_INPUT_SIZES = (2, 3)


def _batched_forward(x: Array, weight: Array, bias: Array) -> Array:
    if weight.shape[1] in SLOW_INPUT_SIZES:
        # The barrier keeps XLA from folding the transpose back into the product.
        return x @ lax.optimization_barrier(weight.T) + bias[None]
    return x @ weight.T + bias[None]


@jax.custom_vjp
def batched_linear(
    x: Float[Array, "batch in_features"],
    weight: Float[Array, "out_features in_features"],
    bias: Float[Array, " out_features"],
) -> Float[Array, "batch out_features"]:
    """`jax.vmap(eqx.nn.Linear)`, i.e. `x @ weight.T + bias`, with a hand-written backward.

    Autodiff takes the weight gradient as `g.T @ x`, both operands contracted over their
    leading (batch) axis, which XLA:CPU runs about twice as slowly as a plain product.
    Here it is a plain product on a transposed copy of `g` (for 2 or 3 input features,
    `x.T @ g` transposed afterwards). Reverse mode only (`jax.grad`, `jax.vjp`, under
    `vmap` too), as for any `jax.custom_vjp` function.
    """
    return _batched_forward(x, weight, bias)


def _batched_linear_fwd(x: Array, weight: Array, bias: Array) -> tuple[Array, tuple[Array, Array]]:
    return _batched_forward(x, weight, bias), (x, weight)


def _batched_linear_bwd(residuals: tuple[Array, Array], g: Array) -> tuple[Array, Array, Array]:
    x, weight = residuals
    if x.shape[1] in SLOW_INPUT_SIZES:
        grad_weight = lax.optimization_barrier(x.T @ g).T
    else:
        grad_weight = lax.optimization_barrier(g.T) @ x
    # The bias gradient in a fixed order: XLA:CPU orders `jnp.sum(g, axis=0)` by the
    # shape around it, so a population member's would round unlike its single run's.
    return g @ weight, grad_weight, column_sum(g)


batched_linear.defvjp(_batched_linear_fwd, _batched_linear_bwd)


def mlp_forward(mlp: eqx.nn.MLP, x: Float[Array, " in_size"]) -> Array:
    """`mlp(x)` for one input; with 2 or 3 input features the first product is `x @ W.T`
    on a transposed copy (under `vmap`, `W @ x` becomes a slow product on XLA:CPU).

    Assumes elementwise activations, the ones `NetworkConfig` offers.
    """
    first, *rest = mlp.layers
    if first.in_features in SLOW_INPUT_SIZES:
        h = x @ lax.optimization_barrier(first.weight.T)
    else:
        h = first.weight @ x
    if first.bias is not None:
        h = h + first.bias
    for layer in rest:
        h = layer(mlp.activation(h))
    return mlp.final_activation(h)


def mlp_forward_batch(mlp: eqx.nn.MLP, x: Float[Array, "batch in_size"]) -> Array:
    """`jax.vmap(mlp)(x)` as batched products through `batched_linear`, `(batch, out)`
    (a `"scalar"` output as `(batch, 1)`)."""
    h = x
    for i, layer in enumerate(mlp.layers):
        if i > 0:
            h = mlp.activation(h)
        bias = jnp.zeros(layer.weight.shape[0], h.dtype) if layer.bias is None else layer.bias
        h = batched_linear(h, layer.weight, bias)
    return mlp.final_activation(h)


# -- convolutions -------------------------------------------------------------------------


def conv_channels_last(conv: eqx.nn.Conv2d, x: Float[Array, "h w c"]) -> Float[Array, "h2 w2 o"]:
    """`conv` on a channels-last image, as image patches (one gather) times the kernel.

    Inside the training loop's `scan` XLA:CPU runs the convolution and its weight
    gradient on slow generic paths (the kernel is a loop-carried value); a gather with
    constant indices and one matrix product stay on fast paths, forward and backward.
    """
    (kh, kw), (sh, sw), (dh, dw) = conv.kernel_size, conv.stride, conv.dilation
    height, width, _ = x.shape
    if isinstance(conv.padding, str):
        window = ((kh - 1) * dh + 1, (kw - 1) * dw + 1)
        pads = lax.padtype_to_pads((height, width), window, (sh, sw), conv.padding)
    else:
        pads = conv.padding
    x = jnp.pad(x, (*pads, (0, 0)))
    out_h = (x.shape[0] - (kh - 1) * dh - 1) // sh + 1
    out_w = (x.shape[1] - (kw - 1) * dw - 1) // sw + 1
    rows = np.arange(out_h)[:, None] * sh + np.arange(kh)[None, :] * dh  # (out_h, kh)
    cols = np.arange(out_w)[:, None] * sw + np.arange(kw)[None, :] * dw  # (out_w, kw)
    patches = x[rows[:, None, :, None], cols[None, :, None, :]]  # (out_h, out_w, kh, kw, c)
    patches = patches.reshape(out_h, out_w, -1)
    kernel = jnp.transpose(conv.weight, (0, 2, 3, 1)).reshape(conv.out_channels, -1)
    out = patches @ kernel.T
    if conv.bias is not None:
        out = out + conv.bias.reshape(1, 1, -1)
    return out


# -- shuffling ----------------------------------------------------------------------------

# jax.random.permutation's criterion: enough rounds of random keys that a collision of
# keys (which leaves two samples in their previous order) is unlikely.
_ROUNDS_EXPONENT = 3
# Above this many index bits too few random bits remain; use jax.random.permutation.
_MAX_INDEX_BITS = 24


def permutation(key: PRNGKeyArray, n: int) -> Int[Array, " n"]:
    """A uniformly random permutation of `0, ..., n - 1` (int32), by one-operand sorts.

    `jax.random.permutation` sorts (random key, index) pairs, which XLA:CPU runs through
    a comparator call per comparison. Here each round sorts `n` random 32-bit words whose
    low `ceil(log2 n)` bits hold the position, and reads the positions back in sorted
    order; a later round reorders the previous one's result, so colliding words keep a
    random order. The number of rounds follows `jax.random.permutation`'s rule for the
    random bits left. Same distribution, other draws than `jax.random.permutation`.
    """
    index_bits = max(1, math.ceil(math.log2(max(n, 2))))
    if index_bits > _MAX_INDEX_BITS:
        return jr.permutation(key, n).astype(jnp.int32)
    random_bits = 32 - index_bits
    n_rounds = math.ceil(_ROUNDS_EXPONENT * math.log2(max(n, 2)) / random_bits)
    low = jnp.uint32((1 << index_bits) - 1)
    positions = jnp.arange(n, dtype=jnp.uint32)
    order = None
    for round_key in jr.split(key, n_rounds):
        words = (jr.bits(round_key, (n,), jnp.uint32) & ~low) | positions
        step = (jnp.sort(words) & low).astype(jnp.int32)
        order = step if order is None else order[step]
    assert order is not None
    return order
