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
    batched_linear,
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


def _head(dist):
    """The policy head's output behind a distribution: logits or the Gaussian's mean."""
    return dist.logits if isinstance(dist, Categorical) else dist.mean


@pytest.mark.parametrize("obs_dim", [1, 3, 4, 6])
@pytest.mark.parametrize("action", [DISCRETE, CONTINUOUS], ids=["discrete", "continuous"])
def test_mlp_towers_equal_equinox_mlp_and_their_gradients(getkey, obs_dim, action):
    # The towers take the input layer's product on a transposed copy (a speed trick);
    # outputs and weight gradients must stay those of `eqx.nn.MLP.__call__`.
    net = make_network(NetworkConfig("tanh", 16), (obs_dim,), action, key=getkey())
    obs = jr.normal(getkey(), (9, obs_dim))
    dist, value = jax.vmap(net)(obs)
    np.testing.assert_allclose(_head(dist), jax.vmap(net.actor)(obs), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(value, jax.vmap(net.critic)(obs), rtol=1e-6, atol=1e-6)

    def ours(n):
        return jnp.sum(jax.vmap(n.value)(obs) ** 2)

    def equinox(n):
        return jnp.sum(jax.vmap(n.critic)(obs) ** 2)

    for a, b in zip(
        jax.tree.leaves(eqx.filter_grad(ours)(net)), jax.tree.leaves(eqx.filter_grad(equinox)(net))
    ):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("obs_dim", [1, 3, 4, 6])
@pytest.mark.parametrize("action", [DISCRETE, CONTINUOUS], ids=["discrete", "continuous"])
def test_mlp_forward_batch_equals_vmap_and_its_gradients(getkey, obs_dim, action):
    # `forward_batch` has a hand-written backward (`batched_linear`); values and every
    # parameter's gradient must be those of the per-observation network under `vmap`.
    net = make_network(NetworkConfig("tanh", 16), (obs_dim,), action, key=getkey())
    obs = jr.normal(getkey(), (11, obs_dim))
    weights = jr.normal(getkey(), (11,))
    (dist, value), (dist_ref, value_ref) = net.forward_batch(obs), jax.vmap(net)(obs)
    for a, b in [(_head(dist), _head(dist_ref)), (value, value_ref)]:
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)

    def loss(forward, n):
        dist, value = forward(n)
        log_std = 0.0 if n.log_std is None else jnp.sum(weights[:, None] * jnp.exp(dist.log_std))
        return jnp.sum(weights * value**2) + jnp.sum(jnp.sin(_head(dist))) + log_std

    grads = eqx.filter_grad(lambda n: loss(lambda m: m.forward_batch(obs), n))(net)
    expected = eqx.filter_grad(lambda n: loss(lambda m: jax.vmap(m)(obs), n))(net)
    leaves, expected_leaves = jax.tree.leaves(grads), jax.tree.leaves(expected)
    assert len(leaves) == len(expected_leaves) == 12 + (action is CONTINUOUS)
    for a, b in zip(leaves, expected_leaves):
        assert np.any(np.asarray(b) != 0)
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_batched_linear_gradients_under_vmap(getkey):
    # Populations `vmap` the whole update, so the hand-written backward runs batched.
    x = jr.normal(getkey(), (5, 7, 6))
    w = jr.normal(getkey(), (5, 4, 6))
    b = jr.normal(getkey(), (5, 4))

    def loss(f, x, w, b):
        return jnp.sum(jnp.tanh(f(x, w, b)) ** 2)

    def reference(x, w, b):
        return jax.vmap(lambda xi: w @ xi + b)(x)

    ours = jax.vmap(jax.grad(lambda *a: loss(batched_linear, *a), argnums=(0, 1, 2)))(x, w, b)
    theirs = jax.vmap(jax.grad(lambda *a: loss(reference, *a), argnums=(0, 1, 2)))(x, w, b)
    for a, e in zip(ours, theirs):
        np.testing.assert_allclose(a, e, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("obs_shape", [(10, 10, 4), (37, 41, 3)])
def test_cnn_trunk_equals_equinox_convolutions_and_their_gradients(getkey, obs_shape):
    # The trunk runs each convolution as image patches times the kernel (a speed trick);
    # features and kernel gradients must stay those of `eqx.nn.Conv2d` on channels-first.
    net = make_network(
        NetworkConfig("relu", 32, cnn_policy=True), obs_shape, DISCRETE, key=getkey()
    )
    assert isinstance(net, CNNActorCritic)
    obs = jr.uniform(getkey(), (3, *obs_shape))

    def reference(n, image):
        x = jnp.transpose(image, (2, 0, 1))
        for conv in n.convs:
            x = n.activation(conv(x))
        return n.activation(n.dense(x.reshape(-1)))

    ours = jax.vmap(net.features)(obs)
    np.testing.assert_allclose(ours, jax.vmap(lambda o: reference(net, o))(obs), atol=2e-6)
    grad_ours = eqx.filter_grad(lambda n: jnp.sum(jax.vmap(n.features)(obs) ** 2))(net)
    grad_ref = eqx.filter_grad(lambda n: jnp.sum(jax.vmap(lambda o: reference(n, o))(obs) ** 2))(
        net
    )
    for conv_ours, conv_ref in zip(grad_ours.convs, grad_ref.convs):
        np.testing.assert_allclose(conv_ours.weight, conv_ref.weight, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(conv_ours.bias, conv_ref.bias, rtol=1e-4, atol=1e-5)
