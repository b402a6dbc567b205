"""The parameters an update's epochs train: the network's trainable arrays as a tree,
or raveled into one vector.

The public state keeps the network and an optax state over its parameter tree
(`PPOTrainState.params`): what optax and user code expect, and what per-leaf
transformations need, so every optimizer sees that tree. PPO's own optimizer treats
every entry alike (`Elementwise`): for it the leaves are raveled into one vector for
the epochs, so a minibatch step runs one gradient, one norm and one Adam kernel instead
of one per leaf, which matters on every backend where the step is a chain of small
kernels. Either way `update_step` takes the view once per update and rebuilds the
train state afterwards; `tests/test_update.py` checks the vector steps against optax
on the tree.
"""

import dataclasses
from collections.abc import Callable

import equinox as eqx
import jax.tree_util as jtu
import optax
from jax.flatten_util import ravel_pytree
from jaxtyping import Array, Int, PyTree

from ..networks import AbstractActorCritic
from ._state import PPOTrainState


class EpochState(eqx.Module):
    """The train state inside the update epochs: the parameters (a tree, or one vector)
    and their optimizer state."""

    params: PyTree[Array]
    opt_state: optax.OptState
    step: Int[Array, ""]


@dataclasses.dataclass(frozen=True)
class ParamsView:
    """How to go from an `EpochState` back to the network and the train state."""

    network: Callable[[PyTree[Array]], AbstractActorCritic]
    opt_state: Callable[[optax.OptState], optax.OptState]

    def train_state(self, state: EpochState) -> PPOTrainState:
        return PPOTrainState(
            self.network(state.params), self.opt_state(state.opt_state), state.step
        )


def params_view(train_state: PPOTrainState, *, vector: bool) -> tuple[EpochState, ParamsView]:
    """The train state as the epochs train it: the parameter tree, or with `vector` the
    parameters and every part of the optimizer state shaped like them (Adam's moments)
    raveled in `jax.flatten_util.ravel_pytree`'s order; and the way back."""
    params, static = eqx.partition(train_state.network, eqx.is_inexact_array)
    if not vector:
        state = EpochState(params, train_state.opt_state, train_state.step)
        return state, ParamsView(lambda p: eqx.combine(p, static), lambda s: s)
    flat, unravel = ravel_pytree(params)
    params_def = jtu.tree_structure(params)
    is_params = lambda x: jtu.tree_structure(x) == params_def
    parts, opt_def = jtu.tree_flatten(train_state.opt_state, is_leaf=is_params)
    shaped = [is_params(part) for part in parts]
    flat_parts = [ravel_pytree(p)[0] if s else p for p, s in zip(parts, shaped)]

    def unflatten_opt_state(flat_opt_state: optax.OptState) -> optax.OptState:
        flat_parts = opt_def.flatten_up_to(flat_opt_state)
        parts = [unravel(p) if s else p for p, s in zip(flat_parts, shaped)]
        return jtu.tree_unflatten(opt_def, parts)

    state = EpochState(flat, jtu.tree_unflatten(opt_def, flat_parts), train_state.step)
    return state, ParamsView(lambda v: eqx.combine(unravel(v), static), unflatten_opt_state)
