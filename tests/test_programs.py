"""The process-wide program cache and the parallel compiler (`ppo/_programs.py`)."""

import jax
import jax.numpy as jnp
import jax.random as jr
import pytest

from eqxppo.configspaces import NetworkConfig
from eqxppo.envs import ActionSpec
from eqxppo.networks import make_network
from eqxppo.population._programs import ProgramCache, compile_all, program_key, signature


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
    programs = compile_all([lambda f=f: f.lower(x) for f in fns], 2, compiler_options={})
    assert [float(p(x)[0]) for p in programs] == [0.0, 1.0, 2.0]
    with pytest.raises(ValueError, match="workers"):
        compile_all([], workers=0, compiler_options={})


def test_signature_tells_shapes_and_dtypes_apart():
    a, b = {"x": jnp.ones(3)}, {"x": jnp.ones(3)}
    assert signature(a) == signature(b)
    assert signature(a) != signature({"x": jnp.ones(4)})
    assert signature(a) != signature({"x": jnp.ones(3, jnp.int32)})


def _network(activation="tanh", hidden_size=8, recurrent="none", kernels="cpu"):
    config = NetworkConfig(activation, hidden_size, recurrent=recurrent, kernels=kernels)
    return make_network(config, (4,), ActionSpec(discrete=True, action_dim=2), key=jr.key(0))


def _key(state, *, static=("env", "config"), options=None, compiler_options=None):
    return program_key(
        "train_population",
        state,
        static=static,
        options={"n_total_timesteps": 256} if options is None else options,
        compiler_options={} if compiler_options is None else compiler_options,
    )


def test_program_keys_hold_every_static_value_by_value():
    """Two inputs that differ only in one static value never share a key, and so never a
    program: a cache that handed out one lowered for another value would train the
    wrong network without a word."""
    base = _network()
    assert _key(base) == _key(_network())  # equal values, rebuilt: one program
    apart = {
        "activation": _key(_network(activation="relu")),
        "hidden size": _key(_network(hidden_size=16)),
        "recurrent core": _key(_network(recurrent="gru")),
        "kernels": _key(_network(kernels="plain")),
        "static input": _key(base, static=("env", "another config")),
        "option": _key(base, options={"n_total_timesteps": 512}),
        "option type": _key(base, options={"n_total_timesteps": 256.0}),
        "compiler options": _key(base, compiler_options={"xla_backend_optimization_level": 1}),
    }
    for what, key in apart.items():
        assert key != _key(base), what
    assert _key(_network(recurrent="gru")) != _key(_network(recurrent="lstm"))
    cache = ProgramCache()
    cache.put(_key(base), "program for tanh, 8 units, these kernels")
    for what, key in apart.items():
        assert cache.get(key) is None, what


def test_a_key_refuses_a_static_value_it_cannot_hold():
    with pytest.raises(TypeError, match="cannot be hashed"):
        signature({"x": jnp.ones(3), "static": {1, 2}})
    with pytest.raises(TypeError, match="cannot be hashed"):
        _key({"x": jnp.ones(3)}, options={"eval": [1, 2]})
