"""PPO's initialisation: orthogonal weights with a gain per layer, zero biases.

`orthogonal` is safe under `vmap`: a batch of keys is mapped one at a time with
`lax.map`, so XLA never emits a batched QR. On CPU, jax 0.10.x can deadlock in the
batched LAPACK QR that a plain vmapped `jnp.linalg.qr` lowers to (the vmapped `init` of
a population); an unbatched QR per member sidesteps it at no measurable cost at init.
"""

import functools
import math

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
from jaxtyping import Array, Float, PRNGKeyArray


def _orthogonal_matrix(key_data: Array, n_rows: int, n_cols: int) -> Array:
    key = jr.wrap_key_data(key_data)
    big, small = max(n_rows, n_cols), min(n_rows, n_cols)
    q, r = jnp.linalg.qr(jr.normal(key, (big, small), jnp.float32))
    q = q * jnp.sign(jnp.diagonal(r))[None, :]  # unique, uniformly distributed (Mezzadri 2007)
    return q if n_rows >= n_cols else q.T


@functools.cache
def _orthogonal_fn(n_rows: int, n_cols: int):
    @jax.custom_batching.custom_vmap
    def fn(key_data):
        return _orthogonal_matrix(key_data, n_rows, n_cols)

    @fn.def_vmap
    def _vmap_rule(axis_size, in_batched, key_data):
        (batched,) = in_batched
        if not batched:
            out = fn(key_data)
            return jnp.broadcast_to(out, (axis_size, *out.shape)), True
        return jax.lax.map(fn, key_data), True

    return fn


def orthogonal(key: PRNGKeyArray, shape: tuple[int, ...], gain: float) -> Float[Array, "*shape"]:
    """A `gain`-scaled orthogonal matrix; axis 0 is the output axis, the rest are flattened.

    Matches `jax.nn.initializers.orthogonal` in distribution for Equinox's `(out, in, ...)`
    weight layout.
    """
    n_rows = shape[0]
    n_cols = 1
    for size in shape[1:]:
        n_cols *= size
    matrix = _orthogonal_fn(n_rows, n_cols)(jr.key_data(key))
    return gain * matrix.reshape(shape)


def init_layer(
    layer: eqx.nn.Linear | eqx.nn.Conv2d, gain: float, *, key: PRNGKeyArray
) -> eqx.nn.Linear | eqx.nn.Conv2d:
    """`layer` with orthogonal weights of `gain` and zero bias."""
    weight = orthogonal(key, layer.weight.shape, gain)
    layer = eqx.tree_at(lambda l: l.weight, layer, weight)
    if layer.bias is not None:
        layer = eqx.tree_at(lambda l: l.bias, layer, jnp.zeros_like(layer.bias))
    return layer


def init_mlp(mlp: eqx.nn.MLP, output_gain: float, *, key: PRNGKeyArray) -> eqx.nn.MLP:
    """`mlp` with gain sqrt(2) on hidden layers and `output_gain` on the last layer."""
    keys = jr.split(key, len(mlp.layers))
    gains = [math.sqrt(2.0)] * (len(mlp.layers) - 1) + [output_gain]
    layers = tuple(
        init_layer(layer, gain, key=k) for layer, gain, k in zip(mlp.layers, gains, keys)
    )
    return eqx.tree_at(lambda m: m.layers, mlp, layers)
