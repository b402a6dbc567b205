"""Compile several programs at once, ahead of running them.

XLA releases the GIL while it compiles, so compilations started from a thread pool
run side by side; tracing and lowering stay serial in Python, and are the part that
does not scale. One XLA:CPU compilation itself uses about two cores, so the pool pays on
machines with more than two. A program compiled here is called directly afterwards, never again
through `jit`'s dispatch, so it cannot be compiled twice.
"""

import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import equinox as eqx
import jax

from .._cores import cpu_cores
from ..envs import AbstractEnvironment


def default_workers() -> int:
    """Threads for parallel compilation: half the CPU cores this process may use.

    One XLA:CPU compilation already keeps about two cores busy: on a 2-core machine two
    threads took as long as one (`benchmarks/parallel_compile.py`), so each thread is
    given two cores.
    """
    return max(1, cpu_cores() // 2)


def compile_all(
    lowerings: Sequence[Callable[[], Any]],
    workers: int | None = None,
    *,
    compiler_options: Mapping[str, Any],
) -> list[Any]:
    """Call `lower().compile(compiler_options)` for each lowering thunk, `workers` at a time.

    **Arguments:**

    - `lowerings`: thunks returning a lowered program (`eqx.filter_jit(f).lower(...)`).
    - `workers`: threads; default `default_workers()`. One compiles in this thread.
    - `compiler_options`: XLA options for every compilation, e.g.
      `_xla_cpu.compiler_options(kernels)` (a cheaper LLVM level with the CPU kernels);
      `{}` for XLA's defaults. Part of a program's key (`program_key`).

    **Returns:**

    The compiled programs, in the order of `lowerings`.
    """
    workers = default_workers() if workers is None else workers
    if workers < 1:
        raise ValueError(f"`workers` must be >= 1, got {workers}.")
    options = dict(compiler_options)
    compile_one = lambda lower: lower().compile(options or None)
    if workers == 1 or len(lowerings) <= 1:
        return [compile_one(lower) for lower in lowerings]
    with ThreadPoolExecutor(max_workers=min(workers, len(lowerings))) as pool:
        return list(pool.map(compile_one, lowerings))


def signature(tree: Any) -> Hashable:
    """What a compiled program fixes about its input `tree`: the structure (static
    fields included), every non-array leaf by value (a network's activation function,
    say: `jax.tree.structure` alone keeps only that there is a leaf), and each array
    leaf's shape, dtype and placement.

    **Raises:**

    `TypeError` for a non-array leaf that cannot be hashed: a key that cannot hold a
    value must not stand for it.
    """
    arrays, static = eqx.partition(tree, eqx.is_array)
    leaves, treedef = jax.tree.flatten(arrays)
    avals = tuple((x.shape, x.dtype, getattr(x, "sharding", None)) for x in leaves)
    static_leaves, static_treedef = jax.tree.flatten(static)
    values = tuple(_by_value(x) for x in static_leaves)
    return treedef, static_treedef, values, avals


def _by_value(leaf: Any) -> Hashable:
    try:
        hash(leaf)
    except TypeError:
        raise TypeError(
            f"A program's input holds a non-array leaf of type {type(leaf).__name__} that "
            "cannot be hashed, so no program key can tell its values apart; make it a "
            "static field of a hashable type."
        ) from None
    # The type too: 1 == 1.0 == True hash alike, but trace differently.
    return type(leaf), leaf


def program_key(
    name: str,
    state: Any,
    *,
    static: Hashable,
    options: Mapping[str, Any],
    compiler_options: Mapping[str, Any],
) -> Hashable:
    """The key of a compiled program in `PROGRAMS`: everything it was lowered for.

    **Arguments:**

    - `name`: the function compiled (`"train_population"`).
    - `state`: its array input; by `signature` (structure, non-array leaves by value:
      the network's activation and kernels; shapes, dtypes, placement).
    - `static`: its other static inputs by value (the group's `PPOConfig`, the
      environments as `make_env` would rebuild them).
    - `options`: its keyword options (budget, evaluation), by value.
    - `compiler_options`: the XLA options it is compiled with.
    """
    return (
        name,
        signature(state),
        static,
        tuple(sorted((option, _by_value(value)) for option, value in options.items())),
        tuple(sorted(compiler_options.items())),
    )


class ProgramCache:
    """Compiled programs by key, shared by every population of the process (as `jit`'s
    own cache is): a structure compiled recently is not compiled again here, whichever
    `Population` asks. Values keep what their key refers to by identity alive.

    The cache holds at most `max_programs`, dropping the least recently used: an
    XLA:CPU executable holds hundreds of memory mappings, and a process has a limit
    on them (65530 by default on Linux), so an AutoRL loop that meets a new static
    structure at every step must not keep them all. A dropped program is compiled
    again (or loaded from the persistent cache) when it is next needed.
    """

    def __init__(self, max_programs: int = 32) -> None:
        if max_programs < 1:
            raise ValueError(f"`max_programs` must be >= 1, got {max_programs}.")
        self.max_programs = max_programs
        self._programs: OrderedDict[Hashable, tuple[Any, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            return len(self._programs)

    def keys(self) -> list[Hashable]:
        """The keys held, least recently used first."""
        with self._lock:
            return list(self._programs)

    def get(self, key: Hashable) -> Any | None:
        with self._lock:
            found = self._programs.get(key)
            if found is not None:
                self._programs.move_to_end(key)
        return None if found is None else found[0]

    def put(self, key: Hashable, program: Any, keep_alive: Any = None) -> None:
        with self._lock:
            self._programs[key] = (program, keep_alive)
            self._programs.move_to_end(key)
            while len(self._programs) > self.max_programs:
                self._programs.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._programs.clear()


PROGRAMS = ProgramCache()


def env_key(env: AbstractEnvironment) -> Any:
    """How compiled programs tell environments apart.

    A pure-JAX environment (the only kind a population runs) is what `make_env` builds
    from its arguments, and its arrays are the program's inputs, so two environments
    built alike share programs (every step of an AutoRL loop, every task of a sweep
    builds its own). Any other is its own object.
    """
    if env.vmappable:
        try:
            args = json.dumps(env.make_env_args(), sort_keys=True)
        except (NotImplementedError, TypeError, ValueError):
            return ("object", id(env))
        return ("built", type(env).__module__, type(env).__qualname__, args)
    return ("object", id(env))
