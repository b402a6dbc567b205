"""The actor-critic interface PPO trains, and the activation functions NAS can choose."""

import abc
from collections.abc import Callable

import equinox as eqx
import jax
from jaxtyping import Array, Float, Scalar

from .._xla_cpu import Kernels, check_kernels
from ..configspaces import Activation
from ._distributions import AbstractDistribution


ACTIVATION_FNS: dict[Activation, Callable[[Array], Array]] = {
    "tanh": jax.nn.tanh,
    "relu": jax.nn.relu,
}


class AbstractActorCritic(eqx.Module):
    """Policy and value of one observation; `vmap` for batches."""

    @abc.abstractmethod
    def policy(self, obs: Float[Array, "*obs_shape"]) -> AbstractDistribution:
        """The action distribution at `obs`."""

    @abc.abstractmethod
    def value(self, obs: Float[Array, "*obs_shape"]) -> Scalar:
        """The state value at `obs`."""

    def __call__(self, obs: Float[Array, "*obs_shape"]) -> tuple[AbstractDistribution, Scalar]:
        return self.policy(obs), self.value(obs)

    def forward_batch(
        self, obs: Float[Array, "batch *obs_shape"]
    ) -> tuple[AbstractDistribution, Float[Array, " batch"]]:
        """Policies and values of a batch of observations, as `jax.vmap(self)(obs)`.

        PPO's loss calls this; a subclass may override it with a faster batched form
        that gives the same values and the same reverse-mode gradients.
        """
        return jax.vmap(self)(obs)


def kernels_of(network: AbstractActorCritic) -> Kernels:
    """The kernels `network` computes with (its static `kernels` field); a network that
    declares none uses the plain forms."""
    return getattr(network, "kernels", "plain")


def with_kernels(network: AbstractActorCritic, kernels: str) -> AbstractActorCritic:
    """The same network (the same parameters) computed by other kernels.

    `kernels` is a static field, which `eqx.tree_at` cannot replace: the copy is
    rebuilt from the network's leaves and its field set on it.
    """
    if not hasattr(network, "kernels"):
        raise TypeError(f"{type(network).__name__} has no `kernels` field to set.")
    leaves, treedef = jax.tree.flatten(network)
    copy = jax.tree.unflatten(treedef, leaves)
    object.__setattr__(copy, "kernels", check_kernels(kernels))
    return copy
