"""JAX's persistent compilation cache, switched on for eqxppo's programs.

With a cache folder set, every program XLA compiles is written there, and a later
process that builds the same program (another trial of a sweep with the same static
structure, a resumed run) loads it instead of compiling it. JAX keys an entry by a hash
of the program's HLO, the compile options, the devices and the jax and jaxlib versions,
so a changed configuration, shape, backend or release misses the cache and compiles
afresh: a stale or foreign entry cannot be run in place of the right program. Values
that are traced (the continuous hyperparameters, `update_epochs` below a group's slots,
the normalisation switches) are inputs of the program, not part of it, so they share
entries.

The cache is trusted: anyone who can write to the folder can make this process run
their code, so keep it private to the user.
"""

import contextlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import jax


# The command line's default folder; `EQXPPO_COMPILATION_CACHE` overrides it.
DEFAULT_DIR = Path.home() / ".cache" / "eqxppo" / "jax-compilation-cache"

_HITS = "/jax/compilation_cache/cache_hits"
_REQUESTS = "/jax/compilation_cache/compile_requests_use_cache"
_lock = threading.Lock()
_counts = {_HITS: 0, _REQUESTS: 0}


def _count(event: str, **kwargs) -> None:
    del kwargs
    if event in _counts:
        with _lock:
            _counts[event] += 1


jax.monitoring.register_event_listener(_count)


def default_dir() -> Path:
    """`$EQXPPO_COMPILATION_CACHE` if set, else `~/.cache/eqxppo/jax-compilation-cache`."""
    env = os.environ.get("EQXPPO_COMPILATION_CACHE")
    return Path(env).expanduser() if env else DEFAULT_DIR


def enable_compilation_cache(
    path: str | os.PathLike | None = None, *, min_compile_seconds: float = 1.0
) -> Path:
    """Write compiled programs to `path` and load them from it from now on.

    **Arguments:**

    - `path`: the cache folder (created if missing); default `default_dir()`.
    - `min_compile_seconds`: only programs that took at least this long to compile are
      written (eqxppo's train programs take seconds; its small helpers are not worth
      a file).

    Takes effect for the compilations that follow, even if this process compiled
    before. Returns the folder.
    """
    from jax.experimental.compilation_cache import compilation_cache

    folder = (Path(path) if path is not None else default_dir()).expanduser().resolve()
    folder.mkdir(parents=True, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", str(folder))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", float(min_compile_seconds))
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    compilation_cache.reset_cache()  # JAX decides once per process whether to use it
    return folder


def disable_compilation_cache() -> None:
    """Stop reading and writing the persistent cache (the folder is left as it is)."""
    from jax.experimental.compilation_cache import compilation_cache

    jax.config.update("jax_compilation_cache_dir", None)
    compilation_cache.reset_cache()


@contextlib.contextmanager
def compilation_cache(
    path: str | os.PathLike | None, *, min_compile_seconds: float = 1.0
) -> Iterator[Path | None]:
    """The persistent cache at `path` inside the block (`None`: off), then as before."""
    previous = jax.config.jax_compilation_cache_dir  # pyright: ignore[reportAttributeAccessIssue]
    previous_min = jax.config.jax_persistent_cache_min_compile_time_secs  # pyright: ignore[reportAttributeAccessIssue]
    if path is None:
        disable_compilation_cache()
        folder = None
    else:
        folder = enable_compilation_cache(path, min_compile_seconds=min_compile_seconds)
    try:
        yield folder
    finally:
        if previous is None:
            disable_compilation_cache()
        else:
            enable_compilation_cache(previous, min_compile_seconds=previous_min)


class CacheStats:
    """Cache lookups and hits counted inside a `cache_stats()` block."""

    def __init__(self) -> None:
        self.requests = 0
        self.hits = 0

    @property
    def misses(self) -> int:
        return self.requests - self.hits


@contextlib.contextmanager
def cache_stats() -> Iterator[CacheStats]:
    """Count the persistent-cache lookups (`requests`) and `hits` of the block's
    compilations (all threads), e.g. to report how many programs were loaded."""
    stats = CacheStats()
    with _lock:
        start = dict(_counts)
    try:
        yield stats
    finally:
        with _lock:
            stats.requests = _counts[_REQUESTS] - start[_REQUESTS]
            stats.hits = _counts[_HITS] - start[_HITS]
