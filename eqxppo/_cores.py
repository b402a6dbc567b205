"""CPU cores as devices: a population's members side by side, one XLA:CPU device per core.

On the CPU, JAX gives a process one device whose kernels spread each operation over
every core. For a population of small networks that is the least efficient use of the
cores: a 64 x 64 product is too small to split well, and 64 CartPole members under
`vmap` on one device ran at 1.07x one member's steps/s on 2 cores. With one device per
core, a population's member axis is sharded over them (`Population` uses every device
by default) and each device trains its share of the members on its own: 1.9-2.1x the
single run on the same 2 cores (`benchmarks/README.md`, "Populations").

The device count is fixed when JAX starts its backends, so it cannot be a library
default: a library import must not change how the user's own JAX code runs. It is an
explicit call (`use_cpu_cores`, first thing in a script) or the command line's
`--cpu-devices` (on by default for `sweep` and `tune`). A single run is not affected: it
runs on the first device, whose kernels still use every core.
"""

import os
from collections.abc import Sequence
from typing import Any

import jax
from jax._src import xla_bridge

from ._counts import as_count


def cpu_cores() -> int:
    """The CPU cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def backends_started() -> bool:
    """Whether JAX has started its backends in this process (after which the CPU device
    count is fixed)."""
    return xla_bridge.backends_are_initialized()


def use_cpu_cores(n: int | None = None) -> int:
    """Give XLA:CPU `n` devices (default: one per core, `cpu_cores()`).

    Call it before the first JAX computation of the process; populations then shard
    their members over the devices. It affects only the CPU platform: on a machine with
    an accelerator, `jax.devices()` are still the accelerator's.

    **Returns:**

    The number of CPU devices.

    **Raises:**

    `RuntimeError` when JAX's backends have already started with another count (the
    count cannot change within a process); `ValueError` for a count below 1.
    """
    n = cpu_cores() if n is None else as_count("n", n, low=1)
    if backends_started():
        current = len(jax.devices("cpu"))
        if current != n:
            raise RuntimeError(
                f"use_cpu_cores({n}): JAX has already started with {current} CPU "
                "device(s); call it before the first JAX computation of the process."
            )
        return n
    jax.config.update("jax_num_cpu_devices", n)
    return n


class OneCPUDeviceWarning(UserWarning):
    """A population trains on one CPU device of a machine with more cores: its members
    would train side by side after `eqxppo.use_cpu_cores()` (silence it with
    `warnings.filterwarnings("ignore", category=eqxppo.OneCPUDeviceWarning)`)."""


_warned_one_device = False


def warn_one_cpu_device(devices: Sequence[Any], n_members: int) -> None:
    """Say once per process that `devices`, one CPU device on a machine with more
    cores, leave most of them idle for a population of `n_members`, naming the fix."""
    global _warned_one_device
    if _warned_one_device or n_members < 2 or len(devices) != 1:
        return
    if devices[0].platform != "cpu" or cpu_cores() < 2:
        return
    _warned_one_device = True
    import warnings

    warnings.warn(
        f"this population of {n_members} members trains on 1 CPU device of a machine with "
        f"{cpu_cores()} cores; call eqxppo.use_cpu_cores() before the first JAX "
        "computation to train its members side by side, one device per core (measured "
        "1.5x and more; the command line does it by default).",
        OneCPUDeviceWarning,
        stacklevel=3,
    )
