"""Spread a population's member axis over devices with `jax.sharding`.

The mesh may span processes (`jax.distributed.initialize`, then `jax.devices()` lists
every process's devices): every process builds the same population, each holds the
rows of its own devices, and the compiled programs run as one SPMD program across
them. `to_host` brings such a result back to every process.
"""

import math
from collections.abc import Callable, Sequence
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


def map_blocks(fn: Callable[[Any, Any], Any], mesh: Mesh) -> Callable[[Any, Any], Any]:
    """`fn(members, shared)` run on each device's block of the member axis, side by side.

    Every array leaf of `members` (and of the result) is split over `mesh` along its
    leading axis; `shared`'s arrays are given whole to every device. Each device runs
    `fn` on its block as its own program (`shard_map`), so nothing in `fn` couples the
    devices: under plain sharding, a `while` loop over vmapped members (the evaluation's)
    agreed across the devices at every iteration, and a 10-member population trained
    23% longer (`benchmarks/README.md`). `fn` must treat members independently, as a
    `vmap` does.
    """
    spec = PartitionSpec(MEMBER_AXIS)

    def run(members: Any, shared: Any) -> Any:
        member_arrays, member_static = eqx.partition(members, eqx.is_array)
        shared_arrays, shared_static = eqx.partition(shared, eqx.is_array)
        out_static: list[Any] = []

        def body(block: Any, whole: Any) -> Any:
            out = fn(eqx.combine(block, member_static), eqx.combine(whole, shared_static))
            out_arrays, static = eqx.partition(out, eqx.is_array)
            out_static.append(static)
            return out_arrays

        # No replication check: every output is split over the members.
        mapped = jax.shard_map(body, mesh=mesh, in_specs=(spec, PartitionSpec()),
                               out_specs=spec, check_vma=False)  # fmt: skip
        return eqx.combine(mapped(member_arrays, shared_arrays), out_static[0])

    return run


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
