"""Compile several programs at once, ahead of running them.

XLA releases the GIL while it compiles, so compilations started from a thread pool
run side by side; tracing and lowering stay serial in Python, and are the part that
does not scale. One XLA:CPU compilation itself uses about two cores, so the pool pays on
machines with more than two. A program compiled here is called directly afterwards, never again
through `jit`'s dispatch, so it cannot be compiled twice.
"""

import os
import threading
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import equinox as eqx
import jax


def default_workers() -> int:
    """Threads for parallel compilation: half the CPU cores this process may use.

    One XLA:CPU compilation already keeps about two cores busy: on a 2-core machine two
    threads took as long as one (`benchmarks/parallel_compile.py`), so each thread is
    given two cores.
    """
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, cores // 2)


def compile_all(lowerings: Sequence[Callable[[], Any]], workers: int | None = None) -> list[Any]:
    """Call `lower().compile()` for each lowering thunk, `workers` at a time.

    **Arguments:**

    - `lowerings`: thunks returning a lowered program (`eqx.filter_jit(f).lower(...)`).
    - `workers`: threads; default `default_workers()`. One compiles in this thread.

    **Returns:**

    The compiled programs, in the order of `lowerings`.
    """
    workers = default_workers() if workers is None else workers
    if workers < 1:
        raise ValueError(f"`workers` must be >= 1, got {workers}.")
    if workers == 1 or len(lowerings) <= 1:
        return [lower().compile() for lower in lowerings]
    with ThreadPoolExecutor(max_workers=min(workers, len(lowerings))) as pool:
        return list(pool.map(lambda lower: lower().compile(), lowerings))


def signature(tree: Any) -> Hashable:
    """What a compiled program fixes about its input `tree`: the structure (static
    fields included) and each array leaf's shape, dtype and placement."""
    arrays, static = eqx.partition(tree, eqx.is_array)
    leaves, treedef = jax.tree.flatten(arrays)
    avals = tuple((x.shape, x.dtype, getattr(x, "sharding", None)) for x in leaves)
    return treedef, jax.tree.structure(static), avals


class ProgramCache:
    """Compiled programs by key, shared by every population of the process (as `jit`'s
    own cache is): a structure compiled once is never compiled again here, whichever
    `Population` asks. Values keep what their key refers to by identity alive."""

    def __init__(self) -> None:
        self._programs: dict[Hashable, tuple[Any, Any]] = {}
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> Any | None:
        with self._lock:
            found = self._programs.get(key)
        return None if found is None else found[0]

    def put(self, key: Hashable, program: Any, keep_alive: Any = None) -> None:
        with self._lock:
            self._programs[key] = (program, keep_alive)

    def clear(self) -> None:
        with self._lock:
            self._programs.clear()


PROGRAMS = ProgramCache()
