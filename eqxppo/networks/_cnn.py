"""The NatureCNN actor-critic for image observations (channels-last, as gymnax gives them)."""

import math
from collections.abc import Callable, Iterator

import equinox as eqx
import jax.numpy as jnp
import jax.random as jr
from jaxtyping import Array, Float, PRNGKeyArray, Scalar

from .. import _xla_cpu
from ._actor_critic import AbstractActorCritic
from ._distributions import AbstractDistribution, action_distribution
from ._init import init_layer


# (out_channels, kernel, stride) of the NatureCNN trunk (Mnih et al. 2015).
_NATURE_LAYERS = ((32, 8, 4), (64, 4, 2), (64, 3, 1))
# Smallest side for which the trunk fits with VALID padding.
_MIN_VALID_SIDE = 36


def _out_side(side: int, kernel: int, stride: int, padding: str) -> int:
    if padding == "SAME":
        return -(-side // stride)
    return (side - kernel) // stride + 1


def nature_trunk(
    obs_shape: tuple[int, int, int], hidden_size: int, keys: Iterator[PRNGKeyArray]
) -> tuple[tuple[eqx.nn.Conv2d, ...], eqx.nn.Linear]:
    """NatureCNN's three convolutions and dense layer of `hidden_size` (gain sqrt(2)),
    initialised with keys drawn from `keys`, two per layer."""
    height, width, channels = obs_shape
    padding = "VALID" if min(height, width) >= _MIN_VALID_SIDE else "SAME"
    convs = []
    for out_channels, kernel, stride in _NATURE_LAYERS:
        conv = eqx.nn.Conv2d(
            channels, out_channels, kernel, stride, padding=padding, key=next(keys)
        )
        convs.append(init_layer(conv, math.sqrt(2.0), key=next(keys)))
        height = _out_side(height, kernel, stride, padding)
        width = _out_side(width, kernel, stride, padding)
        channels = out_channels
    dense = eqx.nn.Linear(height * width * channels, hidden_size, key=next(keys))
    return tuple(convs), init_layer(dense, math.sqrt(2.0), key=next(keys))  # pyright: ignore[reportReturnType]


def trunk_features(
    convs: tuple[eqx.nn.Conv2d, ...],
    dense: eqx.nn.Linear,
    activation: Callable[[Array], Array],
    kernels: _xla_cpu.Kernels,
    obs: Float[Array, "height width channels"],
) -> Float[Array, " hidden"]:
    """The trunk's output for one channels-last image."""
    if kernels == "cpu":
        x = obs
        for conv in convs:
            x = activation(_xla_cpu.conv_channels_last(conv, x))
        x = jnp.transpose(x, (2, 0, 1))
    else:
        x = jnp.transpose(obs, (2, 0, 1))  # Equinox's convolutions are channels-first
        for conv in convs:
            x = activation(conv(x))
    # Flattened channels-first, the order of the dense layer's inputs.
    return activation(dense(x.reshape(-1)))


class NatureCNNEncoder(eqx.Module):
    """The NatureCNN trunk alone: what a recurrent agent puts in front of its core."""

    convs: tuple[eqx.nn.Conv2d, ...]
    dense: eqx.nn.Linear
    activation: Callable[[Array], Array] = eqx.field(static=True)
    kernels: _xla_cpu.Kernels = eqx.field(static=True)

    def __init__(
        self,
        obs_shape: tuple[int, int, int],
        hidden_size: int,
        activation: Callable[[Array], Array],
        *,
        key: PRNGKeyArray,
        kernels: _xla_cpu.Kernels = "plain",
    ):
        keys = iter(jr.split(key, 2 * len(_NATURE_LAYERS) + 2))
        self.convs, self.dense = nature_trunk(obs_shape, hidden_size, keys)
        self.activation = activation
        self.kernels = _xla_cpu.check_kernels(kernels)

    def __call__(self, obs: Float[Array, "height width channels"]) -> Float[Array, " hidden"]:
        return trunk_features(self.convs, self.dense, self.activation, self.kernels, obs)


class CNNActorCritic(AbstractActorCritic):
    """ARLBench's `CNNActorCritic` (NatureCNN trunk, linear heads) in Equinox.

    Trunk: three convolutions (32x8x8/4, 64x4x4/2, 64x3x3/1) and a dense layer of
    `hidden_size`, all with gain sqrt(2); shared by the policy head (gain 0.01) and the
    value head (gain 1.0). Images of at least 36x36 use VALID padding, as NatureCNN does;
    smaller images (MinAtar's 10x10) use SAME padding so every layer keeps a positive size.
    Observations are not rescaled (ARLBench divides by 255; gymnax images are 0/1).
    `kernels` (static): `"plain"` Equinox convolutions, or `"cpu"`, convolutions as a
    gather of patches times the kernel (`eqxppo._xla_cpu`); `"plain"` unless given.
    """

    convs: tuple[eqx.nn.Conv2d, ...]
    dense: eqx.nn.Linear
    actor_head: eqx.nn.Linear
    critic_head: eqx.nn.Linear
    log_std: Float[Array, " action_dim"] | None
    activation: Callable[[Array], Array] = eqx.field(static=True)
    kernels: _xla_cpu.Kernels = eqx.field(static=True)

    def __init__(
        self,
        obs_shape: tuple[int, int, int],
        action_dim: int,
        discrete: bool,
        hidden_size: int,
        activation: Callable[[Array], Array],
        *,
        key: PRNGKeyArray,
        kernels: _xla_cpu.Kernels = "plain",
    ):
        keys = iter(jr.split(key, 2 * len(_NATURE_LAYERS) + 6))
        self.convs, self.dense = nature_trunk(obs_shape, hidden_size, keys)  # pyright: ignore[reportAttributeAccessIssue]
        actor = eqx.nn.Linear(hidden_size, action_dim, key=next(keys))
        self.actor_head = init_layer(actor, 0.01, key=next(keys))  # pyright: ignore[reportAttributeAccessIssue]
        critic = eqx.nn.Linear(hidden_size, "scalar", key=next(keys))
        self.critic_head = init_layer(critic, 1.0, key=next(keys))  # pyright: ignore[reportAttributeAccessIssue]
        self.log_std = None if discrete else jnp.zeros((action_dim,), jnp.float32)
        self.activation = activation
        self.kernels = _xla_cpu.check_kernels(kernels)

    def features(self, obs: Float[Array, "height width channels"]) -> Float[Array, " hidden"]:
        """The trunk's output for one channels-last image."""
        return trunk_features(self.convs, self.dense, self.activation, self.kernels, obs)

    def _policy_from(self, features: Float[Array, " hidden"]) -> AbstractDistribution:
        return action_distribution(self.actor_head(features), self.log_std)

    def policy(self, obs: Float[Array, "height width channels"]) -> AbstractDistribution:
        return self._policy_from(self.features(obs))

    def value(self, obs: Float[Array, "height width channels"]) -> Scalar:
        return self.critic_head(self.features(obs))

    def __call__(
        self, obs: Float[Array, "height width channels"]
    ) -> tuple[AbstractDistribution, Scalar]:
        features = self.features(obs)
        return self._policy_from(features), self.critic_head(features)
