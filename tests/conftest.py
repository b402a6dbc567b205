import contextlib
from collections.abc import Iterator

import jax
import jax.random as jr
import pytest


jax.config.update("jax_numpy_rank_promotion", "raise")

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


@pytest.fixture
def getkey():
    """A fresh key per call, deterministic per test."""
    keys = iter(jr.split(jr.key(1234), 1000))
    return lambda: next(keys)
