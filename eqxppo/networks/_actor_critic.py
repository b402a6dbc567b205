"""The actor-critic interface PPO trains, and the activation functions NAS can choose."""

import abc
from collections.abc import Callable

import equinox as eqx
import jax
from jaxtyping import Array, Bool, Float, PyTree, Scalar

from .._xla_cpu import Kernels
from ..configspaces import Activation
from ._distributions import AbstractDistribution


ACTIVATION_FNS: dict[Activation, Callable[[Array], Array]] = {
    "tanh": jax.nn.tanh,
    "relu": jax.nn.relu,
}


class AbstractActorCritic(eqx.Module):
    """Policy and value of one observation; `vmap` for batches.

    Every actor-critic is also a recurrent one whose memory may be empty: PPO runs all
    of them through `initial_hidden`, `step`, `forward_batch` and `sequence`. A
    feed-forward network (this base class's defaults) remembers nothing: its hidden
    state is `None` (a pytree without leaves), `step` passes it through, and a sequence
    is a batch of independent observations. `AbstractRecurrentActorCritic` fills the
    memory in.
    """

    @abc.abstractmethod
    def policy(self, obs: Float[Array, "*obs_shape"]) -> AbstractDistribution:
        """The action distribution at `obs` (an episode's first observation, for a
        network with memory)."""

    @abc.abstractmethod
    def value(self, obs: Float[Array, "*obs_shape"]) -> Scalar:
        """The state value at `obs`."""

    def __call__(self, obs: Float[Array, "*obs_shape"]) -> tuple[AbstractDistribution, Scalar]:
        return self.policy(obs), self.value(obs)

    def initial_hidden(self) -> PyTree[Array]:
        """One environment's hidden state at an episode's first observation: `None`,
        no memory."""
        return None

    def step(
        self, hidden: PyTree[Array], obs: Float[Array, "*obs_shape"]
    ) -> tuple[PyTree[Array], AbstractDistribution, Scalar]:
        """One observation after `hidden`: the hidden state after it, the policy and the
        value. A feed-forward network's hidden state passes through."""
        return hidden, self.policy(obs), self.value(obs)

    def forward_batch(
        self, obs: Float[Array, "batch *obs_shape"], hidden: PyTree[Array] = None
    ) -> tuple[AbstractDistribution, Float[Array, " batch"]]:
        """Policies and values of a batch of observations, each after its own hidden
        state (`(batch, ...)` leaves; `None` for a network without memory), as
        `jax.vmap(self.step)(hidden, obs)` gives them.

        PPO's loss and its rollout values call this; a subclass may override it with a
        faster batched form that gives the same values and the same reverse-mode
        gradients.
        """
        del hidden
        return jax.vmap(self)(obs)

    def sequence(
        self,
        hidden: PyTree[Array],
        obs: Float[Array, "time *obs_shape"],
        starts: Bool[Array, " time"],
    ) -> tuple[AbstractDistribution, Float[Array, " time"]]:
        """Policies and values along one environment's observations, from `hidden`,
        restarting from `initial_hidden()` before observation `t` where `starts[t]` (an
        episode began there). Without memory: a batch of independent observations."""
        del hidden, starts
        return self.forward_batch(obs)


def kernels_of(network: AbstractActorCritic) -> Kernels:
    """The kernels `network` computes with (its static `kernels` field); a network that
    declares none uses the plain forms."""
    return getattr(network, "kernels", "plain")
