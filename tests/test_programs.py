"""The process-wide program cache and the parallel compiler (`ppo/_programs.py`)."""

import jax
import jax.numpy as jnp
import pytest

from eqxppo.ppo._programs import ProgramCache, compile_all, signature


def test_the_cache_keeps_the_most_recently_used_programs():
    cache = ProgramCache(max_programs=2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # "a" is now the most recent, "b" the oldest
    cache.put("c", 3)
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (1, None, 3)
    assert len(cache) == 2
    cache.put("a", 4)  # replacing keeps the size
    assert len(cache) == 2 and cache.get("a") == 4
    cache.clear()
    assert len(cache) == 0
    with pytest.raises(ValueError, match="max_programs"):
        ProgramCache(max_programs=0)


def test_compile_all_returns_the_programs_in_order_on_threads():
    fns = [jax.jit(lambda x, k=k: x * k) for k in range(3)]
    x = jnp.ones(4)
    programs = compile_all([lambda f=f: f.lower(x) for f in fns], workers=2)
    assert [float(p(x)[0]) for p in programs] == [0.0, 1.0, 2.0]
    with pytest.raises(ValueError, match="workers"):
        compile_all([], workers=0)


def test_signature_tells_shapes_and_dtypes_apart():
    a, b = {"x": jnp.ones(3)}, {"x": jnp.ones(3)}
    assert signature(a) == signature(b)
    assert signature(a) != signature({"x": jnp.ones(4)})
    assert signature(a) != signature({"x": jnp.ones(3, jnp.int32)})
