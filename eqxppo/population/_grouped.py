"""Members held in groups: where each member's row is, and moving values between the
member order and the groups' stacked, padded, sharded rows.

A population trains each group (members of one compiled program) as one stacked state.
Group `g`'s first `len(members[g])` rows are its members in order; the rows after them,
up to a multiple of its device count and at least two per device, pad it with copies of
its last member and are never a member's. A group with fewer than two members per
device runs on fewer devices (on one process's mesh): a three-member group on two CPU
devices runs on one, rather than beside a padding copy. This type is the one
place that knows that layout: `Population` and its features (results,
hyperparameters, divergence flags, PBT, member states) gather and scatter through it.
"""

from collections.abc import Sequence
from typing import Any, NamedTuple, TypeVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh
from jaxtyping import Array

from ..configspaces import PPOConfig
from ..ppo import PPORunnerState
from ._sharding import pad_members, padded_size, shard_members, to_host


T = TypeVar("T")


class PopulationGroup(NamedTuple):
    """Members sharing one compiled program: its config (epoch slots: the largest
    member's `update_epochs`), their member indices, and the padded member count."""

    config: PPOConfig
    members: tuple[int, ...]
    n_padded: int


class PopulationState(NamedTuple):
    """One stacked `PPORunnerState` per group, in the order of `Population.groups`."""

    groups: tuple[PPORunnerState, ...]


def _stack(trees: Sequence[Any]) -> Any:
    """Stack the array leaves of `trees` (one row each); the rest from the first."""
    arrays = [eqx.filter(t, eqx.is_array) for t in trees]
    stacked = jax.tree.map(lambda *xs: jnp.stack(xs), *arrays)
    return eqx.combine(stacked, eqx.filter(trees[0], eqx.is_array, inverse=True))


# The fewest rows a device runs of a group. XLA:CPU compiles a `vmap` whose member axis
# holds one row per device as another program (the axis of size one is simplified
# away), whose float operations round differently from the same member's single run;
# with two rows or more the feed-forward members `tests/test_reproducibility.py` checks
# train bitwise as they do alone (from JAX 0.10; the README's Reliability section names
# the cases that still differ). A one-member group pays for a padding copy.
MIN_ROWS_PER_DEVICE = 2


def bucket_size(n: int) -> int:
    """The smallest of 1, 2, 3, 4, 6, 8, 12, 16, 24, ... (`2**k` and `3 * 2**k`) that is at
    least `n`: a group padded to it runs at most half again its members' work, and the
    sizes a group passes through as it grows or shrinks are few."""
    power = 1 << max(n - 1, 0).bit_length()  # the smallest power of two >= n
    three_quarters = 3 * power // 4
    return three_quarters if power >= 4 and three_quarters >= n else power


def group_mesh(mesh: Mesh, n_members: int) -> Mesh:
    """The devices a group of `n_members` runs on: `mesh`, or its first
    `n_members // MIN_ROWS_PER_DEVICE` devices (at least one) when that is fewer and all
    of them are this process's (a mesh across processes keeps every process's devices
    in every program)."""
    here = jax.process_index()
    n_devices = max(1, n_members // MIN_ROWS_PER_DEVICE)
    if n_devices >= mesh.size or any(d.process_index != here for d in mesh.devices.flat):
        return mesh
    return Mesh(mesh.devices.flat[:n_devices], mesh.axis_names)


def group_rows(n_members: int, n_devices: int) -> int:
    """The rows of a group of `n_members` on `n_devices`: a multiple of the device count,
    at least `MIN_ROWS_PER_DEVICE` per device, padded with copies of the last member."""
    return max(padded_size(n_members, n_devices), MIN_ROWS_PER_DEVICE * n_devices)


class GroupedMembers:
    """The rows of `n_members` members in groups, over the devices of `mesh`.

    **Arguments:**

    - `members`: per group, the member indices its rows hold, in row order; together
      a partition of `range(n_members)`.
    - `mesh`: the one-axis device mesh the groups' rows are sharded over (a group with
      fewer members than devices over its first `len(group)` devices, `meshes[g]`);
      each group is padded to a multiple of its mesh's size.
    - `bucketed`: pad each group to `bucket_size(len(group))` rows first (its mesh chosen
      for that many).
    """

    def __init__(
        self, members: Sequence[Sequence[int]], mesh: Mesh, *, bucketed: bool = False
    ) -> None:
        self.members = tuple(tuple(int(m) for m in group) for group in members)
        self.mesh = mesh
        order = np.concatenate([np.asarray(g, dtype=np.int64) for g in self.members])
        if sorted(order.tolist()) != list(range(len(order))):
            raise ValueError(f"The groups must partition the members, got {self.members}.")
        self.n_members = len(order)
        sizes = [bucket_size(len(g)) if bucketed else len(g) for g in self.members]
        self.meshes = tuple(group_mesh(mesh, n) for n in sizes)
        self.n_padded = tuple(group_rows(n, m.size) for n, m in zip(sizes, self.meshes))
        self._rows = {m: (g, row) for g, group in enumerate(self.members) for row, m in
                      enumerate(group)}  # fmt: skip
        self._inverse = None if np.all(order == np.arange(len(order))) else np.argsort(order)

    def locate(self, member: int) -> tuple[int, int]:
        """`(group, row)` of `member`."""
        if member not in self._rows:
            raise IndexError(f"member {member} out of range for {self.n_members} members.")
        return self._rows[member]

    # -- member order -> groups ----------------------------------------------------------

    def stack(self, g: int, rows: Sequence[T]) -> T:
        """Group `g`'s stacked state from one tree per member (in the group's order):
        padded, then placed on the mesh."""
        if len(rows) != len(self.members[g]):
            raise ValueError(f"Group {g} has {len(self.members[g])} members, got {len(rows)}.")
        return shard_members(pad_members(_stack(rows), self.n_padded[g]), self.meshes[g])

    def scatter(self, values: Any, *, fill: float | None = None) -> list[Any]:
        """Per-member values (`(n_members, ...)`, any array-like) as each group's rows,
        padded with copies of its last member or, with `fill`, with `fill`, and placed
        on the mesh."""
        values = np.asarray(values)
        if values.shape[:1] != (self.n_members,):
            raise ValueError(f"Expected {self.n_members} member values, got {values.shape[:1]}.")
        out = []
        for group, n_padded, mesh in zip(self.members, self.n_padded, self.meshes):
            rows = jnp.asarray(values[list(group)])
            if fill is None:
                rows = pad_members(rows, n_padded)
            else:
                pad = jnp.full((n_padded - len(group), *rows.shape[1:]), fill, rows.dtype)
                rows = jnp.concatenate([rows, pad])
            out.append(shard_members(rows, mesh))
        return out

    # -- groups -> member order ----------------------------------------------------------

    def real_rows(self, g: int, tree: T) -> T:
        """Group `g`'s stacked `tree` without its padding rows."""
        n = len(self.members[g])
        arrays, static = eqx.partition(tree, eqx.is_array)
        return eqx.combine(jax.tree.map(lambda x: x[:n], arrays), static)

    def gather(self, per_group: Sequence[T]) -> T:
        """One tree per group, each its group's real rows (`real_rows`, as the programs
        of `Population.compile` return results), as one tree with a leading member axis
        in member order, on the devices. Float arrays whose trailing shapes differ
        between groups (the per-update metrics of groups with other rollout sizes,
        epochs or minibatches) are padded with NaN to the largest: the slots a member
        did not have hold NaN, as the epoch slots it did not take already do."""
        if len(per_group) == 1 and self._inverse is None:
            return per_group[0]
        if len(set(self.meshes)) > 1:  # groups on different devices: join on the first
            device = self.mesh.devices.flat[0]
            per_group = [jax.device_put(tree, device) for tree in per_group]
        joined = jax.tree.map(_join_members, *per_group)
        if self._inverse is None:
            return joined
        return jax.tree.map(lambda x: x[self._inverse], joined)

    def gather_to_host(self, per_group: Sequence[Any]) -> np.ndarray:
        """One array per group as a NumPy array `(n_members, ...)` in member order
        (gathered from every process when the mesh spans several)."""
        host = [to_host(rows) for rows in per_group]
        out = np.empty((self.n_members, *host[0].shape[1:]), host[0].dtype)
        for group, rows in zip(self.members, host):
            out[list(group)] = rows[: len(group)]
        return out

    def row(self, per_group: Sequence[T], member: int) -> T:
        """`member`'s row of the groups' stacked trees, on this process's first device."""
        g, row = self.locate(member)
        arrays, static = eqx.partition(per_group[g], eqx.is_array)
        if not all(x.is_fully_addressable for x in jax.tree.leaves(arrays)):
            arrays = to_host(arrays)  # a mesh across processes: gather first
        device = jax.local_devices()[0]
        return eqx.combine(jax.tree.map(lambda x: jax.device_put(x[row], device), arrays), static)


def _join_members(*per_group: Array) -> Array:
    """Groups' arrays joined along the member axis; ragged float arrays NaN-padded."""
    shape = tuple(max(sizes) for sizes in zip(*(x.shape[1:] for x in per_group)))
    if all(x.shape[1:] == shape for x in per_group):
        return jnp.concatenate(per_group)
    if not all(jnp.issubdtype(x.dtype, jnp.floating) for x in per_group):
        raise ValueError(
            "The population's groups returned arrays of shapes "
            f"{[x.shape[1:] for x in per_group]} per member, which do not stack: the "
            "trajectories of groups with other rollout sizes (n_steps, n_envs) cannot be "
            "returned together; track them per configuration with `PPO` instead."
        )
    pad = [
        jnp.pad(x, [(0, 0)] + [(0, n - m) for n, m in zip(shape, x.shape[1:])],
                constant_values=jnp.nan)
        for x in per_group
    ]  # fmt: skip
    return jnp.concatenate(pad)
