"""PPO's optimizer: global-norm clipping, Adam (eps 1e-5), learning rate, all traced."""

from collections.abc import Callable
from typing import TypeAlias

import jax.numpy as jnp
import jax.tree_util as jtu
import optax
from jaxtyping import Array, Float, PyTree

from .._sums import fixed_sum
from ..configspaces import PPOHyperparams


def global_norm(tree: PyTree[Array]) -> Float[Array, ""]:
    """The l2 norm of all leaves together (`None` leaves, as in filtered grads, skipped)."""
    # Each leaf's sum in a fixed order (`eqxppo._sums`): a member clips as its single run.
    return jnp.sqrt(sum((fixed_sum(jnp.square(x)) for x in jtu.tree_leaves(tree)), jnp.float32(0)))


def clip_by_global_norm(max_norm: Float[Array, ""]) -> optax.GradientTransformation:
    """Scale updates down to global norm `max_norm`; `max_norm = 0` disables clipping.

    Unlike `optax.clip_by_global_norm`, zero means "off" (ARLBench's zero freezes
    training, or divides 0 by 0 for a zero gradient), and `max_norm` may be traced.
    """

    def init_fn(params):
        del params
        return optax.EmptyState()

    def update_fn(updates, state, params=None):
        del params
        norm = global_norm(updates)
        clip = (max_norm > 0) & (norm > max_norm)
        scale = jnp.where(clip, max_norm / jnp.where(clip, norm, 1.0), 1.0)
        return jtu.tree_map(lambda g: g * scale.astype(g.dtype), updates), state

    return optax.GradientTransformation(init_fn, update_fn)


def make_optimizer(hparams: PPOHyperparams) -> optax.GradientTransformation:
    """The optimizer for `hparams`, rebuilt at each update from traced values.

    Its state's structure does not depend on the values, so one optimizer state serves
    every learning rate and clipping norm; new values never recompile.
    """
    return optax.chain(
        clip_by_global_norm(hparams.max_grad_norm),
        optax.scale_by_adam(eps=1e-5),
        optax.scale_by_learning_rate(hparams.learning_rate),
    )


# What `init` and `train` can take in place of `make_optimizer`: an optax transformation
# built from the traced hyperparameters at each update. Its state's structure must not
# depend on their values (the state is made once, by `init`).
OptimizerFactory: TypeAlias = Callable[[PPOHyperparams], optax.GradientTransformation]
