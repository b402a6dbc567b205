"""Spread a population's member axis over devices with `jax.sharding`.

The mesh may span processes (`jax.distributed.initialize`, then `jax.devices()` lists
every process's devices): every process builds the same population, each holds the
rows of its own devices, and the compiled programs run as one SPMD program across
them. `to_host` brings such a result back to every process.
"""

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
    if sharding.is_fully_addressable:
        return eqx.combine(jax.device_put(arrays, sharding), static)
    # A mesh over several processes: each process holds the whole tree (every process
    # builds the same population) and contributes the rows of its own devices.
    return eqx.combine(jax.tree.map(lambda x: _global(x, sharding), arrays), static)


def _global(x: Any, sharding: NamedSharding) -> Any:
    is_key = jnp.issubdtype(x.dtype, jax.dtypes.prng_key)
    host = np.asarray(jax.random.key_data(x) if is_key else x)
    out = jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])
    return jax.random.wrap_key_data(out, impl=jax.random.key_impl(x)) if is_key else out


def to_host(tree: T) -> T:
    """Every array leaf as a NumPy array on this host, whole (gathered from every
    process when the member axis spans several)."""

    def gather(x: Any) -> Any:
        if jnp.issubdtype(x.dtype, jax.dtypes.prng_key):
            return jax.random.wrap_key_data(
                gather(jax.random.key_data(x)), impl=jax.random.key_impl(x)
            )
        if not isinstance(x, jax.Array) or x.is_fully_addressable:
            return np.asarray(x)
        from jax.experimental import multihost_utils

        return np.asarray(multihost_utils.process_allgather(x, tiled=True))

    arrays, static = eqx.partition(tree, eqx.is_array)
    return eqx.combine(jax.tree.map(gather, arrays), static)
