"""PPO's optimizer (global-norm clipping, Adam with eps 1e-5, the learning rate, all
traced) and what `optimizer=` takes in its place."""

from collections.abc import Callable
from typing import TypeAlias

import equinox as eqx
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


def ppo_transformation(hparams: PPOHyperparams) -> optax.GradientTransformation:
    """PPO's optimizer for `hparams`: clip to the global norm `max_grad_norm`, Adam
    (eps 1e-5), the learning rate. Rebuilt at each update from traced values; its
    state's structure does not depend on them, so one optimizer state serves every
    learning rate and clipping norm, and new values never recompile."""
    return optax.chain(
        clip_by_global_norm(hparams.max_grad_norm),
        optax.scale_by_adam(eps=1e-5),
        optax.scale_by_learning_rate(hparams.learning_rate),
    )


# What `init`, `train`, `PPO` and `Population` take as `optimizer=`: an optax
# transformation built from the traced hyperparameters at each update. It sees the
# network's parameters as optax does, a tree (`PPOTrainState.params`), so per-leaf
# transformations (`optax.multi_transform`, `optax.masked`, LAMB's trust ratio) mean
# what they mean in optax. Its state's structure must not depend on the values (the
# state is made once, by `init`).
OptimizerFactory: TypeAlias = Callable[[PPOHyperparams], optax.GradientTransformation]


class Elementwise(eqx.Module):
    """An optimizer factory whose transformations treat every parameter entry alike:
    each step elementwise, or over all entries together (a global norm), as
    `ppo_transformation`'s are.

    For such a transformation the parameter tree's leaves may as well be one vector,
    and the update runs it so (`ppo/_params.py`): a minibatch step is then one
    gradient, one norm and one Adam kernel instead of one per leaf. Wrap only factories
    that hold this: a per-leaf transformation given the vector would silently do
    something else. Calling the wrapper calls the factory.
    """

    factory: OptimizerFactory = eqx.field(static=True)

    def __call__(self, hparams: PPOHyperparams) -> optax.GradientTransformation:
        return self.factory(hparams)


# PPO's optimizer, the default everywhere: `ppo_transformation`, run on the vector.
make_optimizer = Elementwise(ppo_transformation)
