import dataclasses
import math

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest

from eqxppo.configspaces import NetworkConfig
from eqxppo.envs import ActionSpec
from eqxppo.networks import (
    Categorical,
    CNNActorCritic,
    DiagGaussian,
    MLPActorCritic,
    RecurrentActorCritic,
    make_network,
    orthogonal,
)


DISCRETE = ActionSpec(discrete=True, action_dim=3)
CONTINUOUS = ActionSpec(discrete=False, action_dim=2, low=(-1.0, -1.0), high=(1.0, 1.0))


def _is_orthogonal_with_gain(w, gain):
    w = np.asarray(w).reshape(w.shape[0], -1)
    gram = w @ w.T if w.shape[0] <= w.shape[1] else w.T @ w
    np.testing.assert_allclose(gram, gain**2 * np.eye(gram.shape[0]), atol=1e-4 * max(1, gain**2))


def test_mlp_initialisation_gains_and_zero_biases(getkey):
    net = make_network(NetworkConfig("tanh", 64), (4,), DISCRETE, key=getkey())
    assert isinstance(net, MLPActorCritic)
    gains = [math.sqrt(2), math.sqrt(2)]
    for layer, gain in zip(net.actor.layers, [*gains, 0.01]):
        _is_orthogonal_with_gain(layer.weight, gain)
        assert np.all(np.asarray(layer.bias) == 0)
    for layer, gain in zip(net.critic.layers, [*gains, 1.0]):
        _is_orthogonal_with_gain(layer.weight, gain)
    assert net.log_std is None


def test_mlp_shapes_discrete_and_continuous(getkey):
    obs = jnp.ones(5)
    disc = make_network(NetworkConfig("relu", 8), (5,), DISCRETE, key=getkey())
    dist, value = disc(obs)
    assert isinstance(dist, Categorical) and dist.logits.shape == (3,) and value.shape == ()
    cont = make_network(NetworkConfig("tanh", 8), (5,), CONTINUOUS, key=getkey())
    dist, value = cont(obs)
    assert isinstance(dist, DiagGaussian) and dist.mean.shape == (2,)
    np.testing.assert_array_equal(cont.log_std, jnp.zeros(2))


def test_hidden_size_one_works(getkey):
    net = make_network(NetworkConfig("tanh", 1), (4,), DISCRETE, key=getkey())
    dist, value = jax.vmap(net)(jnp.ones((7, 4)))
    assert dist.logits.shape == (7, 3) and value.shape == (7,)


@pytest.mark.parametrize("shape, padding", [((10, 10, 4), "SAME"), ((84, 84, 1), "VALID")])
def test_cnn_shapes_and_init(shape, padding, getkey):
    net = make_network(NetworkConfig("relu", 32, cnn_policy=True), shape, DISCRETE, key=getkey())
    assert isinstance(net, CNNActorCritic)
    assert all(conv.padding_mode == "ZEROS" for conv in net.convs)
    dist, value = jax.vmap(net)(jnp.ones((2, *shape)))
    assert dist.logits.shape == (2, 3) and value.shape == (2,)
    for conv in net.convs:
        _is_orthogonal_with_gain(conv.weight, math.sqrt(2))
    _is_orthogonal_with_gain(net.actor_head.weight, 0.01)
    _is_orthogonal_with_gain(net.critic_head.weight, 1.0)
    if padding == "VALID":  # NatureCNN on 84x84: 7x7x64 features
        assert net.dense.in_features == 7 * 7 * 64


def test_make_network_rejects_mismatched_observations(getkey):
    with pytest.raises(ValueError, match="flat observations"):
        make_network(NetworkConfig("tanh", 8), (10, 10, 4), DISCRETE, key=getkey())
    with pytest.raises(ValueError, match=r"\(H, W, C\)"):
        make_network(NetworkConfig("tanh", 8, cnn_policy=True), (4,), DISCRETE, key=getkey())


def test_vmapped_init_gives_distinct_orthogonal_members(getkey):
    # Under vmap the orthogonal init maps members one by one (no batched QR): this is
    # the population init that deadlocks on jax 0.10.x CPU with a batched QR.
    keys = jr.split(getkey(), 4)
    nets = eqx.filter_vmap(
        lambda k: make_network(NetworkConfig("tanh", 16), (4,), DISCRETE, key=k)
    )(keys)
    w = nets.actor.layers[0].weight
    assert w.shape == (4, 16, 4)
    for i in range(4):
        _is_orthogonal_with_gain(w[i], math.sqrt(2))
    assert not np.allclose(w[0], w[1])
    single = make_network(NetworkConfig("tanh", 16), (4,), DISCRETE, key=keys[2])
    np.testing.assert_allclose(single.actor.layers[0].weight, w[2], atol=1e-6)


def test_orthogonal_nested_vmap(getkey):
    keys = jr.split(getkey(), 6).reshape(2, 3)
    out = jax.vmap(jax.vmap(lambda k: orthogonal(k, (5, 3), 2.0)))(keys)
    assert out.shape == (2, 3, 5, 3)
    _is_orthogonal_with_gain(out[1, 2], 2.0)


def test_categorical_against_hand_computation(getkey):
    logits = jnp.array([1.0, 2.0, 0.5])
    p = np.exp(logits) / np.exp(logits).sum()
    d = Categorical(logits)
    np.testing.assert_allclose(d.log_prob(jnp.array(1)), np.log(p[1]), rtol=1e-6)
    np.testing.assert_allclose(d.entropy(), -(p * np.log(p)).sum(), rtol=1e-6)
    assert int(d.mode()) == 1
    samples = jax.vmap(d.sample)(jr.split(getkey(), 4000))
    np.testing.assert_allclose(np.bincount(samples, minlength=3) / 4000, p, atol=0.03)


def test_gaussian_against_hand_computation(getkey):
    mean, log_std = jnp.array([0.5, -1.0]), jnp.array([0.0, np.log(2.0)])
    d = DiagGaussian(mean, log_std)
    a = jnp.array([1.0, 1.0])
    std = np.exp(np.asarray(log_std))
    expected = np.sum(-0.5 * ((np.asarray(a) - mean) / std) ** 2 - np.log(std * np.sqrt(2 * np.pi)))
    np.testing.assert_allclose(d.log_prob(a), expected, rtol=1e-6)
    np.testing.assert_allclose(d.entropy(), np.sum(0.5 * np.log(2 * np.pi * np.e * std**2)))
    np.testing.assert_array_equal(d.mode(), mean)
    samples = jax.vmap(d.sample)(jr.split(getkey(), 4000))
    np.testing.assert_allclose(samples.std(0), std, rtol=0.05)


@pytest.mark.parametrize(
    "config, shape",
    [(NetworkConfig("tanh", 8), (4,)),
     (NetworkConfig("tanh", 8, cnn_policy=True), (10, 10, 2)),
     (NetworkConfig("tanh", 8, recurrent="gru"), (4,)),
     (NetworkConfig("tanh", 8, cnn_policy=True, recurrent="lstm"), (10, 10, 2))],
)  # fmt: skip
def test_every_network_holds_the_kernels_it_was_asked_for(config, shape, getkey):
    # A network built with other kernels than asked would compute another program than
    # the one every cache believes it holds.
    for kernels in ("cpu", "plain"):
        config = dataclasses.replace(config, kernels=kernels)
        net = make_network(config, shape, DISCRETE, key=getkey())
        assert net.kernels == kernels


def test_the_recurrent_network_initialises_its_heads_and_encoder_as_ppo_does(getkey):
    net = make_network(NetworkConfig("relu", 16, recurrent="gru"), (5,), DISCRETE, key=getkey())
    assert isinstance(net, RecurrentActorCritic) and net.hidden_shape == (16,)
    _is_orthogonal_with_gain(net.encoder.weight, math.sqrt(2))
    for mlp, output_gain in ((net.actor, 0.01), (net.critic, 1.0)):
        _is_orthogonal_with_gain(mlp.layers[0].weight, math.sqrt(2))
        _is_orthogonal_with_gain(mlp.layers[1].weight, output_gain)
    lstm = make_network(NetworkConfig("relu", 16, recurrent="lstm"), (5,), DISCRETE, key=getkey())
    assert lstm.hidden_shape == (2, 16)  # h and c
    hidden, dist, value = lstm.step(lstm.initial_hidden(), jnp.ones(5))
    assert hidden.shape == (2, 16) and value.shape == () and dist.logits.shape == (3,)
