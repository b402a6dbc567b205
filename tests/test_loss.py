import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from eqxppo.configspaces import NetworkConfig, parse_hpo_config
from eqxppo.envs import ActionSpec
from eqxppo.networks import make_network
from eqxppo.ppo import Batch, ppo_loss


def _loss(net, obs, action, log_prob, value, adv, targets, hp, normalize_advantage):
    batch = Batch(obs, action, log_prob, value, adv, targets)
    return ppo_loss(net, batch, eqx.tree_at(lambda h: h.normalize_advantage, hp,
                                            jnp.asarray(normalize_advantage)))  # fmt: skip


def _setup(getkey, **hpo):
    net = make_network(NetworkConfig("tanh", 8), (3,), ActionSpec(True, 2), key=getkey())
    _, hparams = parse_hpo_config(hpo)
    obs = jax.random.normal(getkey(), (4, 3))
    action = jnp.array([0, 1, 1, 0], jnp.int32)
    dist, value = jax.vmap(net)(obs)
    log_prob = jax.vmap(lambda d, a: d.log_prob(a))(dist, action)
    return net, hparams, obs, action, log_prob, value


def test_loss_at_ratio_one_is_minus_mean_advantage_plus_value_and_entropy(getkey):
    net, hp, obs, action, log_prob, value = _setup(getkey, ent_coef=0.1, vf_coef=0.5)
    adv = jnp.array([1.0, -2.0, 0.5, 3.0])
    targets = value + jnp.array([1.0, 1.0, -1.0, 2.0])
    total, (v_loss, a_loss, ent) = _loss(
        net, obs, action, log_prob, value, adv, targets, hp, normalize_advantage=False
    )
    np.testing.assert_allclose(a_loss, -adv.mean(), rtol=1e-6)
    np.testing.assert_allclose(v_loss, 0.5 * np.mean([1.0, 1.0, 1.0, 4.0]), rtol=1e-5)
    dist, _ = jax.vmap(net)(obs)
    np.testing.assert_allclose(ent, jax.vmap(lambda d: d.entropy())(dist).mean(), rtol=1e-6)
    np.testing.assert_allclose(total, a_loss + 0.5 * v_loss - 0.1 * ent, rtol=1e-6)


def test_clipping_by_hand(getkey):
    net, hp, obs, action, log_prob, value = _setup(getkey, clip_eps=0.2, vf_clip_eps=0.1)
    # Pretend the old policy was less likely by factor 2 (ratio 2) on all samples.
    old_log_prob = log_prob - jnp.log(2.0)
    adv = jnp.array([1.0, -1.0, 1.0, -1.0])
    # Old values 1 below the current ones: clipped value moves only 0.1 from the old one.
    old_value = value - 1.0
    targets = value + 0.5
    _, (v_loss, a_loss, _) = _loss(
        net, obs, action, old_log_prob, old_value, adv, targets, hp, normalize_advantage=False
    )
    # ratio 2: positive advantage -> min(2, 1.2) = 1.2; negative -> min(-2, -1.2) = -2.
    np.testing.assert_allclose(a_loss, -np.mean([1.2, -2.0, 1.2, -2.0]), rtol=1e-5)
    # unclipped error 0.5; clipped prediction old+0.1 = value-0.9, error 1.4 -> max.
    np.testing.assert_allclose(v_loss, 0.5 * 1.4**2, rtol=1e-5)


def test_zero_clip_eps_is_finite(getkey):
    net, hp, obs, action, log_prob, value = _setup(getkey, clip_eps=0.0, vf_clip_eps=0.0)
    adv = jnp.array([1.0, -1.0, 2.0, 0.0])
    loss, grads = eqx.filter_value_and_grad(
        lambda n: _loss(n, obs, action, log_prob, value, adv, value + 1, hp, True)[0]
    )(net)
    assert np.isfinite(float(loss))
    assert all(np.all(np.isfinite(g)) for g in jax.tree.leaves(eqx.filter(grads, eqx.is_array)))


def test_advantage_normalisation(getkey):
    net, hp, obs, action, log_prob, value = _setup(getkey)
    adv = jnp.array([1.0, 2.0, 3.0, 4.0])
    _, (_, a_loss, _) = _loss(net, obs, action, log_prob, value, adv, value, hp, True)
    np.testing.assert_allclose(a_loss, 0.0, atol=1e-6)  # normalised advantages have mean 0


def test_weighted_batch_equals_the_batch_of_its_weight_one_samples(getkey):
    # Samples of weight 0 (envpool's reset steps) must not count anywhere in the loss.
    net, hp, obs, action, log_prob, value = _setup(getkey, ent_coef=0.1)
    adv = jnp.array([1.0, -2.0, 0.5, 3.0])
    targets = value + jnp.array([1.0, 0.5, -1.0, 2.0])
    keep = np.array([0, 2, 3])
    weight = jnp.array([1.0, 0.0, 1.0, 1.0])
    for normalize in (False, True):
        weighted = ppo_loss(
            net,
            Batch(obs, action, log_prob - 0.1, value, adv, targets, weight),
            eqx.tree_at(lambda h: h.normalize_advantage, hp, jnp.asarray(normalize)),
        )
        subset = ppo_loss(
            net,
            Batch(obs[keep], action[keep], log_prob[keep] - 0.1, value[keep], adv[keep],
                  targets[keep]),
            eqx.tree_at(lambda h: h.normalize_advantage, hp, jnp.asarray(normalize)),
        )  # fmt: skip
        for a, b in zip(jax.tree.leaves(weighted), jax.tree.leaves(subset)):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
