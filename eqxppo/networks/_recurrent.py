"""Recurrent actor-critics: an encoder, a GRU or LSTM core, and actor and critic heads.

The hidden state of one environment is one array of `hidden_shape`: `(hidden,)` for a
GRU, `(2, hidden)` for an LSTM (its `h` and `c` stacked), so the runner state, a
population's member axis and checkpoints hold it like any other array. It is zeros at
an episode's first observation.
"""

import abc
import math
from collections.abc import Callable
from typing import Literal

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
from jaxtyping import Array, Bool, Float, PRNGKeyArray, Scalar

from .. import _xla_cpu
from ._actor_critic import AbstractActorCritic
from ._cnn import NatureCNNEncoder
from ._distributions import AbstractDistribution, action_distribution
from ._init import init_layer, init_mlp


Cell = Literal["gru", "lstm"]


class AbstractRecurrentActorCritic(AbstractActorCritic):
    """An actor-critic with memory: a policy and a value of the observations so far.

    A subclass gives `hidden_shape` and `step`; the hidden state of one environment is
    one array of `hidden_shape`, zeros at an episode's first observation. `sequence`
    (what PPO's loss calls) has a plain form here, a scan of `step`, which a subclass
    may replace by a faster one with the same values and gradients. `policy(obs)` and
    `value(obs)` are the agent at an episode's first observation.
    """

    @property
    @abc.abstractmethod
    def hidden_shape(self) -> tuple[int, ...]:
        """The shape of one environment's hidden state."""

    @abc.abstractmethod
    def step(
        self, hidden: Float[Array, "*hidden_shape"], obs: Float[Array, "*obs_shape"]
    ) -> tuple[Float[Array, "*hidden_shape"], AbstractDistribution, Scalar]:
        """One observation: the new hidden state, the policy and the value after it."""

    def initial_hidden(self) -> Float[Array, "*hidden_shape"]:
        """The hidden state at an episode's first observation: zeros."""
        return jnp.zeros(self.hidden_shape, jnp.float32)

    def policy(self, obs: Float[Array, "*obs_shape"]) -> AbstractDistribution:
        return self.step(self.initial_hidden(), obs)[1]

    def value(self, obs: Float[Array, "*obs_shape"]) -> Scalar:
        return self.step(self.initial_hidden(), obs)[2]

    def forward_batch(
        self,
        obs: Float[Array, "batch *obs_shape"],
        hidden: Float[Array, "batch *hidden_shape"] | None = None,
    ) -> tuple[AbstractDistribution, Float[Array, " batch"]]:
        if hidden is None:  # each observation an episode's first
            return super().forward_batch(obs)
        return jax.vmap(lambda h, o: self.step(h, o)[1:])(hidden, obs)

    def sequence(
        self,
        hidden: Float[Array, "*hidden_shape"],
        obs: Float[Array, "time *obs_shape"],
        starts: Bool[Array, " time"],
    ) -> tuple[AbstractDistribution, Float[Array, " time"]]:
        def one(h, inputs):
            o, start = inputs
            h, dist, value = self.step(jnp.where(start, self.initial_hidden(), h), o)
            return h, (dist, value)

        return jax.lax.scan(one, hidden, (obs, starts))[1]


class RecurrentActorCritic(AbstractRecurrentActorCritic):
    """Encoder, recurrent core and two heads, as PureJaxRL's `ppo_rnn` and
    XLand-MiniGrid's baselines build them.

    Encoder: one dense layer of `hidden_size` with the activation (flat observations),
    or the NatureCNN trunk (images, `cnn_policy`). Core: a GRU or LSTM cell of
    `hidden_size` units (Equinox's initialisation). Heads on the core's output: actor
    `hidden -> hidden -> action_dim` (gains sqrt(2), 0.01) and critic `hidden -> hidden
    -> 1` (gains sqrt(2), 1.0); continuous actions add a state-independent `log_std`.
    """

    encoder: eqx.nn.Linear | NatureCNNEncoder
    core: eqx.nn.GRUCell | eqx.nn.LSTMCell
    actor: eqx.nn.MLP
    critic: eqx.nn.MLP
    log_std: Float[Array, " action_dim"] | None
    cell: Cell = eqx.field(static=True)
    activation: Callable[[Array], Array] = eqx.field(static=True)
    kernels: _xla_cpu.Kernels = eqx.field(static=True)

    def __init__(
        self,
        obs_shape: tuple[int, ...],
        action_dim: int,
        discrete: bool,
        hidden_size: int,
        activation: Callable[[Array], Array],
        cell: Cell,
        *,
        key: PRNGKeyArray,
        kernels: _xla_cpu.Kernels = "plain",
    ):
        enc_key, enc_init, core_key, actor_key, critic_key, actor_init, critic_init = jr.split(
            key, 7
        )
        if len(obs_shape) == 3:
            h, w, c = obs_shape
            self.encoder = NatureCNNEncoder((h, w, c), hidden_size, activation, key=enc_key,
                                            kernels=kernels)  # fmt: skip
        else:
            (obs_dim,) = obs_shape
            dense = eqx.nn.Linear(obs_dim, hidden_size, key=enc_key)
            self.encoder = init_layer(dense, math.sqrt(2.0), key=enc_init)  # pyright: ignore[reportAttributeAccessIssue]
        if cell == "gru":
            self.core = eqx.nn.GRUCell(hidden_size, hidden_size, key=core_key)
        else:
            self.core = eqx.nn.LSTMCell(hidden_size, hidden_size, key=core_key)
        actor = eqx.nn.MLP(hidden_size, action_dim, hidden_size, 1, activation, key=actor_key)
        critic = eqx.nn.MLP(hidden_size, "scalar", hidden_size, 1, activation, key=critic_key)
        self.actor = init_mlp(actor, 0.01, key=actor_init)
        self.critic = init_mlp(critic, 1.0, key=critic_init)
        self.log_std = None if discrete else jnp.zeros((action_dim,), jnp.float32)
        self.cell = cell
        self.activation = activation
        self.kernels = kernels

    @property
    def hidden_shape(self) -> tuple[int, ...]:
        size = self.core.hidden_size
        return (size,) if self.cell == "gru" else (2, size)

    def encode(self, obs: Float[Array, "*obs_shape"]) -> Float[Array, " hidden"]:
        """The encoder's features of one observation (no memory involved)."""
        if isinstance(self.encoder, NatureCNNEncoder):
            return self.encoder(obs)
        return self.activation(self.encoder(obs))

    def recur(
        self, hidden: Float[Array, "*hidden_shape"], features: Float[Array, " hidden"]
    ) -> Float[Array, "*hidden_shape"]:
        """One step of the core: the hidden state after `features`."""
        if isinstance(self.core, eqx.nn.GRUCell):
            return self.core(features, hidden)
        h, c = self.core(features, (hidden[0], hidden[1]))
        return jnp.stack([h, c])

    def heads(self, hidden: Float[Array, "*hidden_shape"]) -> tuple[AbstractDistribution, Scalar]:
        """The policy and the value read from a hidden state (an LSTM's `h`)."""
        out = hidden if self.cell == "gru" else hidden[0]
        return action_distribution(self.actor(out), self.log_std), self.critic(out)

    def step(
        self, hidden: Float[Array, "*hidden_shape"], obs: Float[Array, "*obs_shape"]
    ) -> tuple[Float[Array, "*hidden_shape"], AbstractDistribution, Scalar]:
        hidden = self.recur(hidden, self.encode(obs))
        dist, value = self.heads(hidden)
        return hidden, dist, value

    def sequence(
        self,
        hidden: Float[Array, "*hidden_shape"],
        obs: Float[Array, "time *obs_shape"],
        starts: Bool[Array, " time"],
    ) -> tuple[AbstractDistribution, Float[Array, " time"]]:
        # Only the core is sequential: the encoder and the heads run on every step at once.
        features = jax.vmap(self.encode)(obs)
        zeros = self.initial_hidden()

        def one(h, inputs):
            f, start = inputs
            h = self.recur(jnp.where(start, zeros, h), f)
            return h, h

        hiddens = jax.lax.scan(one, hidden, (features, starts))[1]
        return jax.vmap(self.heads)(hiddens)
