"""A network's trainable arrays and their optimizer state as vectors, inside the update.

The public state keeps the network and an optax state over its parameter tree (what
optax and user code expect, and what per-leaf transforms need). The update epochs work
on one vector instead: a minibatch step then runs one gradient, one norm and one Adam
kernel rather than one per parameter leaf, which matters on every backend where the
step is a chain of small kernels. `update_step` flattens once per update and rebuilds
the tree afterwards; `tests/test_update.py` checks the vector steps against optax on
the tree.
"""

from collections.abc import Callable

import equinox as eqx
import jax.tree_util as jtu
import optax
from jax.flatten_util import ravel_pytree
from jaxtyping import Array, Float

from ..networks import AbstractActorCritic


def flatten_network(
    network: AbstractActorCritic,
) -> tuple[Float[Array, " n_params"], Callable[[Array], AbstractActorCritic]]:
    """`(vector, unflatten)`: the inexact array leaves in one vector, and the way back.

    `unflatten(vector)` rebuilds the network (activation functions and other static
    parts included); the vector's order is `jax.flatten_util.ravel_pytree`'s.
    """
    params, static = eqx.partition(network, eqx.is_inexact_array)
    flat, unravel = ravel_pytree(params)
    return flat, lambda vector: eqx.combine(unravel(vector), static)


def flatten_opt_state(
    opt_state: optax.OptState, network: AbstractActorCritic
) -> tuple[optax.OptState, Callable[[optax.OptState], optax.OptState]]:
    """`opt_state` over `flatten_network(network)`'s vector, and the way back.

    Every part of `opt_state` shaped like the network's parameters (Adam's moments) is
    raveled in the parameters' order; everything else (step counts, empty states) stays.
    """
    params = eqx.filter(network, eqx.is_inexact_array)
    unravel = ravel_pytree(params)[1]
    params_def = jtu.tree_structure(params)
    is_params = lambda x: jtu.tree_structure(x) == params_def
    parts, opt_def = jtu.tree_flatten(opt_state, is_leaf=is_params)
    shaped = [is_params(part) for part in parts]
    flat_parts = [ravel_pytree(p)[0] if s else p for p, s in zip(parts, shaped)]

    def unflatten(flat_opt_state: optax.OptState) -> optax.OptState:
        flat_parts = opt_def.flatten_up_to(flat_opt_state)
        parts = [unravel(p) if s else p for p, s in zip(flat_parts, shaped)]
        return jtu.tree_unflatten(opt_def, parts)

    return jtu.tree_unflatten(opt_def, flat_parts), unflatten
