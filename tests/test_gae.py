import jax.numpy as jnp
import numpy as np

from eqxppo.ppo import compute_gae


def reference_gae(reward, value, next_value, terminated, truncated, gamma, lam):
    """Plain-Python GAE: bootstrap unless terminated, cut the trace at every episode end."""
    n_steps, n_envs = reward.shape
    adv = np.zeros_like(reward)
    for e in range(n_envs):
        gae = 0.0
        for t in reversed(range(n_steps)):
            boot = 0.0 if terminated[t, e] else next_value[t, e]
            delta = reward[t, e] + gamma * boot - value[t, e]
            done = terminated[t, e] or truncated[t, e]
            gae = delta + (0.0 if done else gamma * lam * gae)
            adv[t, e] = gae
    return adv, adv + value


def test_hand_worked_three_steps():
    # One env; step 1 terminates. gamma = 0.5, lambda = 1.
    reward = jnp.array([[1.0], [2.0], [3.0]])
    value = jnp.array([[10.0], [20.0], [30.0]])
    next_value = jnp.array([[20.0], [99.0], [40.0]])  # 99 must be ignored (terminated)
    terminated = jnp.array([[False], [True], [False]])
    truncated = jnp.zeros((3, 1), bool)
    adv, targets = compute_gae(
        reward, value, next_value, terminated, truncated, jnp.float32(0.5), jnp.float32(1.0)
    )
    # t=2: 3 + 0.5*40 - 30 = -7; t=1: 2 + 0 - 20 = -18 (no trace past the end);
    # t=0: delta = 1 + 0.5*20 - 10 = 1, gae = 1 + 0.5*(-18) = -8.
    np.testing.assert_allclose(adv[:, 0], [-8.0, -18.0, -7.0])
    np.testing.assert_allclose(targets[:, 0], [2.0, 2.0, 23.0])


def test_truncation_bootstraps_from_final_value_but_cuts_the_trace():
    reward = jnp.array([[1.0], [1.0]])
    value = jnp.array([[0.0], [0.0]])
    next_value = jnp.array([[5.0], [7.0]])
    terminated = jnp.zeros((2, 1), bool)
    truncated = jnp.array([[True], [False]])
    adv, _ = compute_gae(
        reward, value, next_value, terminated, truncated, jnp.float32(0.9), jnp.float32(0.8)
    )
    # t=0 truncated: 1 + 0.9*5 = 5.5, and nothing from t=1 leaks back.
    np.testing.assert_allclose(adv[:, 0], [5.5, 1.0 + 0.9 * 7.0], rtol=1e-6)


def test_matches_python_loop_on_random_rollouts():
    rng = np.random.default_rng(0)
    shape = (37, 5)
    reward = rng.normal(size=shape).astype(np.float32)
    value = rng.normal(size=shape).astype(np.float32)
    next_value = rng.normal(size=shape).astype(np.float32)
    terminated = rng.random(shape) < 0.1
    truncated = (rng.random(shape) < 0.1) & ~terminated
    truncated[3, 1] = terminated[3, 1] = True  # both at once: no bootstrap
    for gamma, lam in [(0.99, 0.95), (1.0, 1.0), (0.8, 0.0)]:
        expected = reference_gae(reward, value, next_value, terminated, truncated, gamma, lam)
        got = compute_gae(
            jnp.asarray(reward), jnp.asarray(value), jnp.asarray(next_value),
            jnp.asarray(terminated), jnp.asarray(truncated), jnp.float32(gamma), jnp.float32(lam),
        )  # fmt: skip
        np.testing.assert_allclose(got[0], expected[0], rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(got[1], expected[1], rtol=1e-4, atol=1e-4)
