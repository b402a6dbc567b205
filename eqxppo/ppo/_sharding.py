"""Spread a population's member axis over devices with `jax.sharding`."""

import math
from collections.abc import Sequence
from typing import Any, TypeVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec


T = TypeVar("T")
MEMBER_AXIS = "members"


def member_mesh(devices: Sequence[Any] | None = None) -> Mesh:
    """A one-axis mesh (`"members"`) over `devices` (default: all of `jax.devices()`)."""
    return Mesh(np.asarray(jax.devices() if devices is None else list(devices)), (MEMBER_AXIS,))


def padded_size(n_members: int, n_devices: int) -> int:
    """The smallest multiple of `n_devices` that holds `n_members`."""
    return math.ceil(n_members / n_devices) * n_devices


def pad_members(tree: T, n_padded: int) -> T:
    """Repeat the last member until every array leaf has `n_padded` rows."""

    def pad(x: Any) -> Any:
        n = x.shape[0]
        if n == n_padded:
            return x
        return jnp.concatenate([x, jnp.repeat(x[-1:], n_padded - n, axis=0)])

    arrays, static = eqx.partition(tree, eqx.is_array)
    return eqx.combine(jax.tree.map(pad, arrays), static)


def shard_members(tree: T, mesh: Mesh) -> T:
    """Place every array leaf with its leading (member) axis split over `mesh`.

    A mesh of one device leaves the tree where it is. The leading axis must divide by the
    number of devices (`pad_members` first).
    """
    if mesh.size == 1:
        return tree
    sharding = NamedSharding(mesh, PartitionSpec(MEMBER_AXIS))
    arrays, static = eqx.partition(tree, eqx.is_array)
    return eqx.combine(jax.device_put(arrays, sharding), static)
