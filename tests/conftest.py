import contextlib
import gc
import os
import tempfile
from collections.abc import Iterator

import equinox as eqx
import jax
import jax.random as jr
import numpy as np
import pytest

from eqxppo.population._programs import PROGRAMS


# eqxppo's own code must not lean on implicit promotion of ranks or dtypes (an int32
# array meeting a float32 one, say): both raise in the tests. Python scalars stay weak.
jax.config.update("jax_numpy_rank_promotion", "raise")
jax.config.update("jax_numpy_dtype_promotion", "strict")
# The command lines the tests start use the persistent compilation cache by default:
# one private folder for the whole session, never the user's.
os.environ.setdefault("EQXPPO_COMPILATION_CACHE", tempfile.mkdtemp(prefix="eqxppo-test-cache-"))

_BACKEND_COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"
_compiles: list[str] = []


def _on_event(event: str, duration: float, **kwargs) -> None:
    del duration
    if event == _BACKEND_COMPILE_EVENT:
        _compiles.append(str(kwargs.get("fun_name", "?")))


jax.monitoring.register_event_duration_secs_listener(_on_event)


class CompileCounter:
    """Names of the XLA programs compiled inside a `count_compiles()` block."""

    def __init__(self) -> None:
        self.names: list[str] = []

    @property
    def count(self) -> int:
        return len(self.names)


@contextlib.contextmanager
def count_compiles() -> Iterator[CompileCounter]:
    counter = CompileCounter()
    start = len(_compiles)
    try:
        yield counter
    finally:
        counter.names = _compiles[start:]


@pytest.fixture(scope="module", autouse=True)
def _release_programs():
    """Drop every compiled program after each test module.

    An XLA:CPU executable holds hundreds of memory mappings; a whole suite in one
    process kept every program it compiled and crossed Linux's 65530 mappings (XLA
    then aborted or crashed in the middle of a compilation). Tests inside a module
    still share their programs.
    """
    yield
    PROGRAMS.clear()
    jax.clear_caches()
    gc.collect()


@pytest.fixture
def getkey():
    """A fresh key per call, deterministic per test."""
    keys = iter(jr.split(jr.key(1234), 1000))
    return lambda: next(keys)


def _host_leaves(tree) -> list[np.ndarray]:
    leaves = jax.tree.leaves(eqx.filter(tree, eqx.is_array))
    is_key = lambda x: jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)
    return [np.asarray(jr.key_data(x) if is_key(x) else x) for x in leaves]


def assert_bitwise_equal(a, b) -> None:
    """Every array leaf (PRNG keys as their data) equal in shape, dtype and bits."""
    la, lb = _host_leaves(a), _host_leaves(b)
    assert len(la) == len(lb)
    for x, y in zip(la, lb):
        assert x.dtype == y.dtype and x.shape == y.shape
        np.testing.assert_array_equal(x, y)
