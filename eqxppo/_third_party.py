"""How eqxppo traces code it does not own (an environment framework, optax).

eqxppo's own code is tested with implicit rank promotion raising and strict dtype
promotion (`tests/conftest.py`), so it never leans on either. Code from other libraries
may (some gymnax environments rely on rank promotion, optax's Adam on int-float
promotion); it is traced under JAX's defaults whatever the caller set. No eqxppo
dependencies.
"""

import contextlib
from collections.abc import Iterator

import jax


@contextlib.contextmanager
def third_party_numpy() -> Iterator[None]:
    """JAX's default promotion rules inside: implicit rank promotion allowed, standard
    dtype promotion."""
    with jax.numpy_rank_promotion("allow"), jax.numpy_dtype_promotion("standard"):
        yield
