"""The CPU kernels (`eqxppo._xla_cpu`) against the plain forms they replace.

Each test computes the same thing with a network's `kernels` set to `"cpu"` and to
`"plain"` (built from one key: the parameters do not depend on the kernels) and compares
values and reverse-mode gradients.
"""

import dataclasses

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest

from eqxppo import _xla_cpu
from eqxppo.configspaces import NetworkConfig
from eqxppo.envs import ActionSpec
from eqxppo.networks import Categorical, CNNActorCritic, make_network
from eqxppo.ppo._shuffle import permutation


DISCRETE = ActionSpec(discrete=True, action_dim=3)
CONTINUOUS = ActionSpec(discrete=False, action_dim=2, low=(-1.0, -1.0), high=(1.0, 1.0))


def with_kernels(config, obs_shape, action, key):
    """The network of `config` built from `key` with each kernels: one set of parameters."""
    nets = {
        choice: make_network(
            dataclasses.replace(config, kernels=choice), obs_shape, action, key=key
        )
        for choice in ("cpu", "plain")
    }
    params = [jax.tree.leaves(eqx.filter(n, eqx.is_inexact_array)) for n in nets.values()]
    for a, b in zip(*params):
        np.testing.assert_array_equal(a, b)
    return nets


def _head(dist):
    """The policy head's output behind a distribution: logits or the Gaussian's mean."""
    return dist.logits if isinstance(dist, Categorical) else dist.mean


def _assert_trees_close(a, b, **tol):
    leaves_a, leaves_b = jax.tree.leaves(a), jax.tree.leaves(b)
    assert len(leaves_a) == len(leaves_b) > 0
    for x, y in zip(leaves_a, leaves_b):
        assert np.shape(x) == np.shape(y)
        np.testing.assert_allclose(x, y, **tol)


def test_kernel_choice_follows_the_variable_and_the_backend_when_a_network_is_made(
    monkeypatch, getkey
):
    monkeypatch.delenv(_xla_cpu.KERNELS_ENV_VAR, raising=False)
    expected = "cpu" if jax.default_backend() == "cpu" else "plain"
    assert _xla_cpu.default_kernels() == expected
    net = make_network(NetworkConfig("tanh", 8), (3,), DISCRETE, key=getkey())
    assert net.kernels == expected
    for choice in ("cpu", "plain"):
        monkeypatch.setenv(_xla_cpu.KERNELS_ENV_VAR, choice)
        assert (
            make_network(NetworkConfig("tanh", 8), (3,), DISCRETE, key=getkey()).kernels == choice
        )
        assert net.kernels == expected  # held by the network, not read again
    monkeypatch.setenv(_xla_cpu.KERNELS_ENV_VAR, "fast")
    with pytest.raises(ValueError, match="EQXPPO_KERNELS='fast'"):
        _xla_cpu.default_kernels()
    with pytest.raises((ValueError, TypeError), match="fast"):  # checked, or typechecked
        NetworkConfig("tanh", 8, kernels="fast")  # pyright: ignore[reportArgumentType]


@pytest.mark.parametrize("obs_dim", [1, 3, 4, 6])
@pytest.mark.parametrize("action", [DISCRETE, CONTINUOUS], ids=["discrete", "continuous"])
def test_mlp_per_observation_forms_agree_with_their_gradients(getkey, obs_dim, action):
    nets = with_kernels(NetworkConfig("tanh", 16), (obs_dim,), action, getkey())
    obs = jr.normal(getkey(), (9, obs_dim))

    def loss(n):
        dist, value = jax.vmap(n)(obs)
        return jnp.sum(value**2) + jnp.sum(jnp.sin(_head(dist)))

    results = {}
    for choice, n in nets.items():
        dist, value = jax.vmap(n)(obs)
        results[choice] = (_head(dist), value, eqx.filter_grad(loss)(n))
    plain = nets["plain"]
    np.testing.assert_allclose(_head(jax.vmap(plain.policy)(obs)), results["plain"][0])
    _assert_trees_close(results["cpu"], results["plain"], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("obs_dim", [1, 3, 4, 6])
@pytest.mark.parametrize("action", [DISCRETE, CONTINUOUS], ids=["discrete", "continuous"])
def test_mlp_forward_batch_forms_agree_with_their_gradients(getkey, obs_dim, action):
    # The CPU `forward_batch` has a hand-written backward (`batched_linear`); values and
    # every parameter's gradient must be those of the network under `vmap`.
    nets = with_kernels(NetworkConfig("tanh", 16), (obs_dim,), action, getkey())
    obs = jr.normal(getkey(), (11, obs_dim))
    weights = jr.normal(getkey(), (11,))

    def loss(n):
        dist, value = n.forward_batch(obs)
        log_std = 0.0 if n.log_std is None else jnp.sum(weights[:, None] * jnp.exp(dist.log_std))
        return jnp.sum(weights * value**2) + jnp.sum(jnp.sin(_head(dist))) + log_std

    results = {}
    for choice, n in nets.items():
        dist, value = n.forward_batch(obs)
        results[choice] = (_head(dist), value, eqx.filter_grad(loss)(n))
    grads = jax.tree.leaves(results["plain"][2])
    assert len(grads) == 12 + (action is CONTINUOUS)
    assert all(np.any(np.asarray(g) != 0) for g in grads)
    _assert_trees_close(results["cpu"], results["plain"], rtol=1e-5, atol=1e-6)


def test_batched_linear_gradients_under_vmap(getkey):
    # Populations `vmap` the whole update, so the hand-written backward runs batched.
    x = jr.normal(getkey(), (5, 7, 6))
    w = jr.normal(getkey(), (5, 4, 6))
    b = jr.normal(getkey(), (5, 4))

    def loss(f, x, w, b):
        return jnp.sum(jnp.tanh(f(x, w, b)) ** 2)

    def reference(x, w, b):
        return jax.vmap(lambda xi: w @ xi + b)(x)

    grad = lambda f: jax.vmap(jax.grad(lambda *a: loss(f, *a), argnums=(0, 1, 2)))(x, w, b)
    _assert_trees_close(grad(_xla_cpu.batched_linear), grad(reference), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("obs_shape", [(10, 10, 4), (37, 41, 3), (84, 84, 4)])
def test_cnn_trunk_forms_agree_with_their_gradients(getkey, obs_shape):
    # The CPU trunk runs each convolution as image patches times the kernel.
    nets = with_kernels(NetworkConfig("relu", 32, cnn_policy=True), obs_shape, DISCRETE, getkey())
    assert isinstance(nets["cpu"], CNNActorCritic)
    obs = jr.uniform(getkey(), (2, *obs_shape))
    loss = lambda n: jnp.sum(jax.vmap(n.features)(obs) ** 2)
    results = {}
    for choice, n in nets.items():
        grads = eqx.filter_grad(loss)(n)
        results[choice] = (jax.vmap(n.features)(obs), grads.convs)
    _assert_trees_close(results["cpu"], results["plain"], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("choice", ["cpu", "plain"])
def test_both_permutations_hold_every_index_once(choice):
    for n in (1, 2, 7, 1024, 5000):
        order = np.asarray(permutation(jr.key(n), n, kernels=choice))
        assert order.dtype == np.int32
        np.testing.assert_array_equal(np.sort(order), np.arange(n))


def test_populations_compile_with_the_options_single_runs_use():
    # A cheaper LLVM level rounds a few operations differently: a member would no longer
    # train bitwise as its single run (tests/test_reproducibility.py).
    assert _xla_cpu.compiler_options("cpu") == _xla_cpu.compiler_options("plain") == {}


def test_init_chooses_the_kernels_outside_the_trace_and_keeps_a_given_networks(monkeypatch, getkey):
    """`init` is compiled once per static input: the kernels must be one of them, or a
    second `init` after `EQXPPO_KERNELS` changes would replay the first one's choice.
    A network (or its parameters) built with either kernels starts a run on any
    backend, and keeps its kernels."""
    from eqxppo import make_env
    from eqxppo.configspaces import parse_hpo_config
    from eqxppo.ppo import init, train

    env = make_env("gymnax", "CartPole-v1", n_envs=2)
    config, hparams = parse_hpo_config({"n_steps": 8, "minibatch_size": 16, "update_epochs": 1})
    network_config = NetworkConfig("tanh", 8)
    for choice in ("cpu", "plain", "cpu"):
        monkeypatch.setenv(_xla_cpu.KERNELS_ENV_VAR, choice)
        state = init(jr.key(0), env, network_config, hparams).runner_state
        assert state.train_state.network.kernels == choice
    monkeypatch.delenv(_xla_cpu.KERNELS_ENV_VAR)
    nets = with_kernels(network_config, env.observation_shape, env.action_spec, getkey())
    for choice, net in nets.items():
        for given in (net, eqx.filter(net, eqx.is_inexact_array)):
            state = init(jr.key(0), env, network_config, hparams, network=given).runner_state
            assert state.train_state.network.kernels == choice
            out, _ = train(state, env, config, n_total_timesteps=32, n_eval_steps=1,
                           n_eval_episodes=1)  # fmt: skip
            assert out.train_state.network.kernels == choice and not bool(out.diverged)
