"""The two action distributions PPO needs, as small Equinox modules over one sample."""

import abc
import math

import equinox as eqx
import jax.numpy as jnp
import jax.random as jr
from jax import lax
from jaxtyping import Array, Float, Int, PRNGKeyArray, Scalar

from .._sums import fixed_sum


class AbstractDistribution(eqx.Module):
    """An action distribution for one observation."""

    @abc.abstractmethod
    def sample(self, key: PRNGKeyArray) -> Array:
        """Draw one action."""

    @abc.abstractmethod
    def mode(self) -> Array:
        """The most likely action (the deterministic policy)."""

    @abc.abstractmethod
    def log_prob(self, action: Array) -> Scalar:
        """Log-probability (density) of `action`."""

    @abc.abstractmethod
    def entropy(self) -> Scalar:
        """Entropy of the distribution."""


class Categorical(AbstractDistribution):
    """A categorical distribution over `n` actions, given unnormalised logits."""

    logits: Float[Array, " n"]

    def sample(self, key: PRNGKeyArray) -> Int[Array, ""]:
        return jr.categorical(key, self.logits).astype(jnp.int32)

    def mode(self) -> Int[Array, ""]:
        return jnp.argmax(self.logits).astype(jnp.int32)

    def log_prob(self, action: Int[Array, ""]) -> Scalar:
        return _log_softmax(self.logits)[action]

    def entropy(self) -> Scalar:
        log_p = _log_softmax(self.logits)
        return -fixed_sum(jnp.exp(log_p) * log_p)


def _log_softmax(logits: Float[Array, " n"]) -> Float[Array, " n"]:
    """`jax.nn.log_softmax` with its sum over the actions in a fixed order
    (`eqxppo._sums`), so a population member's log-probabilities round as its single
    run's (`jnp.sum`'s order over 5, 6 or 18 actions changed under `vmap`). Its
    gradient is the same function's (autodiff through the fixed sum)."""
    shifted = logits - lax.stop_gradient(jnp.max(logits))
    return shifted - jnp.log(fixed_sum(jnp.exp(shifted)))


_LOG_2PI = math.log(2 * math.pi)


class DiagGaussian(AbstractDistribution):
    """A Gaussian with diagonal covariance: `mean` and a log standard deviation."""

    mean: Float[Array, " action_dim"]
    log_std: Float[Array, " action_dim"]

    def sample(self, key: PRNGKeyArray) -> Float[Array, " action_dim"]:
        noise = jr.normal(key, self.mean.shape, self.mean.dtype)
        return self.mean + jnp.exp(self.log_std) * noise

    def mode(self) -> Float[Array, " action_dim"]:
        return self.mean

    def log_prob(self, action: Float[Array, " action_dim"]) -> Scalar:
        z = (action - self.mean) * jnp.exp(-self.log_std)
        return fixed_sum(-0.5 * z**2 - self.log_std - 0.5 * _LOG_2PI)

    def entropy(self) -> Scalar:
        return fixed_sum(self.log_std + 0.5 * (1.0 + _LOG_2PI))


def action_distribution(
    head: Float[Array, " action_dim"], log_std: Float[Array, " action_dim"] | None
) -> AbstractDistribution:
    """The policy head's output as a distribution: logits without `log_std`, else a mean."""
    if log_std is None:
        return Categorical(head)
    return DiagGaussian(head, log_std)
