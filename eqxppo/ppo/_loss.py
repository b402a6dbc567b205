"""The clipped PPO objective with value clipping and an entropy bonus."""

from collections.abc import Callable
from typing import TypeAlias

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Real, Scalar

from ..configspaces import PPOHyperparams
from ..networks import AbstractActorCritic


class Batch(eqx.Module):
    """Training samples along one leading axis (`batch`): a minibatch, or a stack of them.

    `log_prob` and `value` are the rollout policy's; `targets` are the GAE returns.
    `weight` (1 or 0 per sample) leaves out transitions that must not train the agent
    (an envpool step that only reset its environment); `None` means every sample counts.
    """

    obs: Float[Array, "batch *obs_shape"]
    action: Real[Array, "batch *action_shape"]
    log_prob: Float[Array, " batch"]
    value: Float[Array, " batch"]
    advantages: Float[Array, " batch"]
    targets: Float[Array, " batch"]
    weight: Float[Array, " batch"] | None = None


def ppo_loss(
    network: AbstractActorCritic,
    batch: Batch,
    hparams: PPOHyperparams,
) -> tuple[Scalar, tuple[Scalar, Scalar, Scalar]]:
    """PPO's loss on one minibatch, to minimise (ARLBench's formula).

    `actor_loss = -mean(min(r A, clip(r, 1 - clip_eps, 1 + clip_eps) A))` with the
    ratio `r` of new to old action probabilities and `A` the advantages, normalised over
    the minibatch when `hparams.normalize_advantage`; `value_loss = 0.5 * mean(max((V - G)^2,
    (V_clip - G)^2))` with `V_clip` within `vf_clip_eps` of the old value; `total =
    actor_loss + vf_coef * value_loss - ent_coef * entropy`. Every mean is over the
    samples of weight 1 when `batch.weight` is given.

    **Returns:**

    `(total, (value_loss, actor_loss, entropy))`.
    """
    weight = batch.weight
    if weight is None:
        mean, std = jnp.mean, jnp.std
    else:
        total_weight = jnp.maximum(weight.sum(), 1.0)
        mean = lambda x: jnp.sum(weight * x) / total_weight
        std = lambda x: jnp.sqrt(mean(jnp.square(x - mean(x))))

    dist, value = network.forward_batch(batch.obs)
    log_prob = jax.vmap(lambda d, a: d.log_prob(a))(dist, batch.action)
    entropy = mean(jax.vmap(lambda d: d.entropy())(dist))

    targets, old_value = batch.targets, batch.value
    value_clipped = old_value + jnp.clip(
        value - old_value, -hparams.vf_clip_eps, hparams.vf_clip_eps
    )
    value_loss = 0.5 * mean(
        jnp.maximum(jnp.square(value - targets), jnp.square(value_clipped - targets))
    )

    advantages = batch.advantages
    normalized = (advantages - mean(advantages)) / (std(advantages) + 1e-8)
    advantages = jnp.where(hparams.normalize_advantage, normalized, advantages)
    ratio = jnp.exp(log_prob - batch.log_prob)
    clipped_ratio = jnp.clip(ratio, 1.0 - hparams.clip_eps, 1.0 + hparams.clip_eps)
    actor_loss = -mean(jnp.minimum(ratio * advantages, clipped_ratio * advantages))

    total = actor_loss + hparams.vf_coef * value_loss - hparams.ent_coef * entropy
    return total, (value_loss, actor_loss, entropy)


# What `train` can take in place of `ppo_loss`: a minibatch's loss to minimise and the
# three terms PPO's metrics report, from the network, the minibatch and the traced
# hyperparameters.
LossFn: TypeAlias = Callable[
    [AbstractActorCritic, Batch, PPOHyperparams], tuple[Scalar, tuple[Scalar, Scalar, Scalar]]
]
