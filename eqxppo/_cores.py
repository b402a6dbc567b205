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
