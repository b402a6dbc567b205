"""The clipped PPO objective with value clipping and an entropy bonus."""

from collections.abc import Callable
from typing import TypeAlias

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.tree_util as jtu
from jax import lax
from jaxtyping import Array, Bool, Float, PyTree, Real, Scalar

from .._sums import fixed_mean, fixed_sum, fixed_var
from ..configspaces import PPOHyperparams
from ..networks import AbstractActorCritic, AbstractDistribution


class Batch(eqx.Module):
    """Training samples along one leading axis (`batch`): a minibatch, or a stack of them.

    `log_prob` and `value` are the rollout policy's; `targets` are the GAE returns.
    `weight` (1 or 0 per sample) leaves out transitions that must not train the agent
    (an envpool step that only reset its environment); `None` means every sample counts.

    An agent with memory trains on whole sequences: the leading axis counts
    environments and every sample field has a `time` axis after it (`obs` is
    `(batch, time, *obs_shape)`); `hidden` is each sequence's hidden state before its
    first step and `starts` marks the steps where an episode began (the hidden state
    restarts there). A batch of single transitions (an agent without memory) has no
    `time` axis, and both are `None`.
    """

    obs: Float[Array, "batch *obs_shape"]
    action: Real[Array, "batch *action_shape"]
    log_prob: Float[Array, "batch *time"]
    value: Float[Array, "batch *time"]
    advantages: Float[Array, "batch *time"]
    targets: Float[Array, "batch *time"]
    weight: Float[Array, "batch *time"] | None = None
    hidden: PyTree[Array] = None
    starts: Bool[Array, "batch time"] | None = None

    def samples(self) -> "Batch":
        """The batch's transitions along one axis: a sequence batch's `(batch, time)`
        merged, its `hidden` and `starts` dropped; a feed-forward batch as it is."""
        if self.starts is None:
            return self
        merge = lambda x: x.reshape(-1, *x.shape[2:])
        flat = Batch(self.obs, self.action, self.log_prob, self.value, self.advantages,
                     self.targets, self.weight)  # fmt: skip
        return jtu.tree_map(merge, flat)


def policy_and_value(
    network: AbstractActorCritic, batch: Batch
) -> tuple[AbstractDistribution, Float[Array, " samples"]]:
    """The network's policy and value at every transition of `batch`, in the order of
    `batch.samples()`: `network.forward_batch` of the observations, or for a sequence
    batch each sequence re-run from its hidden state (`network.sequence`)."""
    if batch.starts is None:
        return network.forward_batch(batch.obs)
    dist, value = jax.vmap(network.sequence)(batch.hidden, batch.obs, batch.starts)
    merge = lambda x: x.reshape(-1, *x.shape[2:])
    return jtu.tree_map(merge, dist), merge(value)


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
    samples of weight 1 when `batch.weight` is given. A sequence batch (a recurrent
    agent's) is re-run sequence by sequence (`policy_and_value`) and its transitions
    weighed as one flat batch.

    **Returns:**

    `(total, (value_loss, actor_loss, entropy))`.
    """
    dist, value = policy_and_value(network, batch)
    batch = batch.samples()
    weight = batch.weight
    # Every mean in a fixed order of additions (`eqxppo._sums`): a population member's
    # loss then rounds as its single run's.
    if weight is None:
        mean = fixed_mean
        std = lambda x: jnp.sqrt(fixed_var(x))
    else:
        total_weight = jnp.maximum(fixed_sum(weight), 1.0)
        mean = lambda x: fixed_sum(weight * x) / total_weight
        std = lambda x: jnp.sqrt(mean(jnp.square(x - mean(x))))

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
    # Times the reciprocal, not divided by a broadcast scalar: XLA rewrites the division
    # into that product in some shapes and not in others (alone vs a population).
    normalized = (advantages - mean(advantages)) * (1.0 / (std(advantages) + 1e-8))
    advantages = jnp.where(hparams.normalize_advantage, normalized, advantages)
    ratio = jnp.exp(log_prob - batch.log_prob)
    clipped_ratio = jnp.clip(ratio, 1.0 - hparams.clip_eps, 1.0 + hparams.clip_eps)
    actor_loss = -mean(jnp.minimum(ratio * advantages, clipped_ratio * advantages))

    # The total from the terms as they are reported: without the barrier XLA may regroup
    # a term's constant factors (`0.5 * sum / n * vf_coef`) one way alone and another way
    # in a population.
    value_loss, actor_loss, entropy = lax.optimization_barrier((value_loss, actor_loss, entropy))
    total = actor_loss + hparams.vf_coef * value_loss - hparams.ent_coef * entropy
    return total, (value_loss, actor_loss, entropy)


# What `train`, `PPO` and `Population` can take in place of `ppo_loss`: a minibatch's
# loss to minimise and any pytree of extra outputs (PPO's: its three terms), from the
# network, the minibatch and the traced hyperparameters. The extras are reported per
# minibatch (`PPOMetrics.loss[1]`), and every leaf of them is checked by the
# divergence guard.
LossFn: TypeAlias = Callable[[AbstractActorCritic, Batch, PPOHyperparams], tuple[Scalar, PyTree]]
