"""The MLP actor-critic: separate actor and critic towers of two hidden layers."""

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
from jax import lax
from jaxtyping import Array, Float, PRNGKeyArray, Scalar

from ._actor_critic import AbstractActorCritic
from ._distributions import AbstractDistribution, action_distribution
from ._init import init_mlp
from ._linear import SLOW_INPUT_SIZES, batched_linear


class MLPActorCritic(AbstractActorCritic):
    """ARLBench's `MLPActorCritic` in Equinox.

    Actor: `obs_dim -> hidden -> hidden -> action_dim` (gains sqrt(2), sqrt(2), 0.01).
    Critic: `obs_dim -> hidden -> hidden -> 1` (gains sqrt(2), sqrt(2), 1.0). Continuous
    actions add a state-independent `log_std`, initialised to zero.
    """

    actor: eqx.nn.MLP
    critic: eqx.nn.MLP
    log_std: Float[Array, " action_dim"] | None
    discrete: bool = eqx.field(static=True)

    def __init__(
        self,
        obs_dim: int,
        action_dim: int,
        discrete: bool,
        hidden_size: int,
        activation: Callable[[Array], Array],
        *,
        key: PRNGKeyArray,
    ):
        actor_key, critic_key, actor_init, critic_init = jr.split(key, 4)
        actor = eqx.nn.MLP(obs_dim, action_dim, hidden_size, 2, activation, key=actor_key)
        critic = eqx.nn.MLP(obs_dim, "scalar", hidden_size, 2, activation, key=critic_key)
        self.actor = init_mlp(actor, 0.01, key=actor_init)
        self.critic = init_mlp(critic, 1.0, key=critic_init)
        self.log_std = None if discrete else jnp.zeros((action_dim,), jnp.float32)
        self.discrete = discrete

    def policy(self, obs: Float[Array, " obs_dim"]) -> AbstractDistribution:
        return action_distribution(_mlp_forward(self.actor, obs), self.log_std)

    def value(self, obs: Float[Array, " obs_dim"]) -> Scalar:
        return _mlp_forward(self.critic, obs)

    def forward_batch(
        self, obs: Float[Array, "batch obs_dim"]
    ) -> tuple[AbstractDistribution, Float[Array, " batch"]]:
        head = _mlp_forward_batch(self.actor, obs)
        dist = jax.vmap(action_distribution, in_axes=(0, None))(head, self.log_std)
        return dist, _mlp_forward_batch(self.critic, obs)[:, 0]


def _mlp_forward(mlp: eqx.nn.MLP, x: Float[Array, " in_size"]) -> Array:
    """`mlp(x)` for the elementwise activations PPO builds; for an input of 2 or 3
    features, the input layer's product is taken as `x @ W.T` on a transposed copy.

    Under `vmap`, Equinox's `W @ x` becomes a product against the transposed `(out, in)`
    weight, which XLA:CPU runs slowly when `in` is 2 or 3 (64 x 3 x 64: 5.2 us against
    0.3 us; from 4 on both forms cost the same); the barrier keeps XLA from folding the
    transpose back into the product. Pendulum's minibatch step 106 -> 85 us. The copy
    costs time for wide inputs (flattened MinAtar, 400: update 52 -> 65 ms), hence only
    for the short ones (2 CPU cores, jax 0.9.2; benchmarks/README.md).
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


def _mlp_forward_batch(mlp: eqx.nn.MLP, x: Float[Array, "batch in_size"]) -> Array:
    """`jax.vmap(mlp)(x)` as batched products, `(batch, out)` (a `"scalar"` output as
    `(batch, 1)`), through `batched_linear` for its faster weight gradients."""
    h = x
    for i, layer in enumerate(mlp.layers):
        if i > 0:
            h = mlp.activation(h)
        bias = jnp.zeros(layer.weight.shape[0], h.dtype) if layer.bias is None else layer.bias
        h = batched_linear(h, layer.weight, bias)
    return mlp.final_activation(h)
