"""Running mean/variance observation normalisation, kept in the runner state."""

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float

from .._sums import column_sum


class NormalizerState(eqx.Module):
    """Running statistics of observations (Chan et al.'s parallel update, float32).

    A fresh state (count 0, mean 0, variance 1) normalises as the identity.
    """

    mean: Float[Array, "*obs_shape"]
    var: Float[Array, "*obs_shape"]
    count: Float[Array, ""]


def init_normalizer(obs_shape: tuple[int, ...]) -> NormalizerState:
    """Statistics for observations of `obs_shape` that have seen no data."""
    return NormalizerState(
        mean=jnp.zeros(obs_shape, jnp.float32),
        var=jnp.ones(obs_shape, jnp.float32),
        count=jnp.zeros((), jnp.float32),
    )


def update_normalizer(
    state: NormalizerState, batch: Float[Array, "*batch_and_obs_shape"]
) -> NormalizerState:
    """Fold a batch of observations (any leading axes) into the statistics."""
    n_obs_axes = state.mean.ndim
    flat = batch.reshape(-1, *batch.shape[batch.ndim - n_obs_axes :])
    n = jnp.asarray(flat.shape[0], jnp.float32)
    batch_mean = column_sum(flat) / n
    batch_var = column_sum((flat - batch_mean[None]) ** 2) / n
    total = state.count + n
    delta = batch_mean - state.mean
    # The scalar factors first, each array times one of them: XLA's simplifier regroups
    # a chain of products with constants (`delta**2 * count * n / total`), and turns a
    # division by a broadcast scalar into a product with its reciprocal, in one shape of
    # the arrays (a population's) and not in another (a single run's).
    ratio, weight, inverse = n / total, state.count * n / total, 1.0 / total
    mean = state.mean + delta * ratio
    m2 = state.var * state.count + batch_var * n + delta**2 * weight
    return NormalizerState(mean=mean, var=m2 * inverse, count=total)


def normalize(
    state: NormalizerState, obs: Float[Array, "*batch_and_obs_shape"]
) -> Float[Array, "*batch_and_obs_shape"]:
    """`(obs - mean) / std`, with the standard deviation floored at 1e-6 (as ARLBench)."""
    mean = jnp.broadcast_to(state.mean, obs.shape)
    std = jnp.broadcast_to(jnp.maximum(jnp.sqrt(state.var), 1e-6), obs.shape)
    return (obs - mean) / std
