"""Generalised advantage estimation with termination and truncation kept apart."""

import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float


def compute_gae(
    reward: Float[Array, "n_steps n_envs"],
    value: Float[Array, "n_steps n_envs"],
    next_value: Float[Array, "n_steps n_envs"],
    terminated: Bool[Array, "n_steps n_envs"],
    truncated: Bool[Array, "n_steps n_envs"],
    gamma: Float[Array, ""],
    gae_lambda: Float[Array, ""],
) -> tuple[Float[Array, "n_steps n_envs"], Float[Array, "n_steps n_envs"]]:
    """GAE(gamma, lambda) advantages and value targets of one rollout.

    `next_value[t]` is `V` of the observation step `t` reached, before any reset. A
    terminated step has no future value; a truncated one is bootstrapped from
    `next_value`. The advantage trace is cut at every episode end.

    **Returns:**

    `(advantages, targets)` with `targets = advantages + value`.
    """
    delta = reward + gamma * jnp.where(terminated, 0.0, next_value) - value
    decay = jnp.where(terminated | truncated, 0.0, gamma * gae_lambda)

    def backward(gae, inputs):
        delta_t, decay_t = inputs
        gae = delta_t + decay_t * gae
        return gae, gae

    _, advantages = jax.lax.scan(
        backward, jnp.zeros_like(delta[0]), (delta, decay), reverse=True, unroll=16
    )
    return advantages, advantages + value
