"""The MLP actor-critic: separate actor and critic towers of two hidden layers."""

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
from jaxtyping import Array, Float, PRNGKeyArray, Scalar

from .. import _xla_cpu
from ._actor_critic import AbstractActorCritic
from ._distributions import AbstractDistribution, action_distribution
from ._init import init_mlp


class MLPActorCritic(AbstractActorCritic):
    """ARLBench's `MLPActorCritic` in Equinox.

    Actor: `obs_dim -> hidden -> hidden -> action_dim` (gains sqrt(2), sqrt(2), 0.01).
    Critic: `obs_dim -> hidden -> hidden -> 1` (gains sqrt(2), sqrt(2), 1.0). Continuous
    actions add a state-independent `log_std`, initialised to zero.

    `kernels` (static) says which forms compute it: `"plain"` Equinox, or `"cpu"`, the
    XLA:CPU forms of `eqxppo._xla_cpu` (same values and gradients, faster on the CPU);
    `"plain"` unless given (`make_network` passes the configuration's).
    """

    actor: eqx.nn.MLP
    critic: eqx.nn.MLP
    log_std: Float[Array, " action_dim"] | None
    discrete: bool = eqx.field(static=True)
    kernels: _xla_cpu.Kernels = eqx.field(static=True)

    def __init__(
        self,
        obs_dim: int,
        action_dim: int,
        discrete: bool,
        hidden_size: int,
        activation: Callable[[Array], Array],
        *,
        key: PRNGKeyArray,
        kernels: _xla_cpu.Kernels = "plain",
    ):
        actor_key, critic_key, actor_init, critic_init = jr.split(key, 4)
        actor = eqx.nn.MLP(obs_dim, action_dim, hidden_size, 2, activation, key=actor_key)
        critic = eqx.nn.MLP(obs_dim, "scalar", hidden_size, 2, activation, key=critic_key)
        self.actor = init_mlp(actor, 0.01, key=actor_init)
        self.critic = init_mlp(critic, 1.0, key=critic_init)
        self.log_std = None if discrete else jnp.zeros((action_dim,), jnp.float32)
        self.discrete = discrete
        self.kernels = _xla_cpu.check_kernels(kernels)

    def policy(self, obs: Float[Array, " obs_dim"]) -> AbstractDistribution:
        head = _xla_cpu.mlp_forward(self.actor, obs) if self.kernels == "cpu" else self.actor(obs)
        return action_distribution(head, self.log_std)

    def value(self, obs: Float[Array, " obs_dim"]) -> Scalar:
        return _xla_cpu.mlp_forward(self.critic, obs) if self.kernels == "cpu" else self.critic(obs)

    def forward_batch(
        self, obs: Float[Array, "batch obs_dim"], hidden: None = None
    ) -> tuple[AbstractDistribution, Float[Array, " batch"]]:
        if self.kernels != "cpu":
            return super().forward_batch(obs, hidden)
        head = _xla_cpu.mlp_forward_batch(self.actor, obs)
        dist = jax.vmap(action_distribution, in_axes=(0, None))(head, self.log_std)
        return dist, _xla_cpu.mlp_forward_batch(self.critic, obs)[:, 0]
