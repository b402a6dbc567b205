import gymnax
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest

from eqxppo.envs import init_normalizer, make_env, normalize, update_normalizer


# MNISTBandit downloads MNIST when it is constructed; the machines that run the tests
# have no network.
ALL_GYMNAX = [name for name in gymnax.registered_envs if name != "MNISTBandit-bsuite"]


@pytest.mark.parametrize("name", ALL_GYMNAX)
def test_every_gymnax_env_resets_and_steps(name, getkey):
    env = make_env("gymnax", name, n_envs=3)
    state, obs = env.reset(getkey())
    assert obs.shape == (3, *env.observation_shape) and obs.dtype == jnp.float32
    assert len(env.observation_shape) == 1  # flattened for the MLP
    spec = env.action_spec
    if spec.discrete:
        action = jnp.zeros(3, jnp.int32)
    else:
        action = jnp.zeros((3, spec.action_dim), jnp.float32)
    state, step = env.step(state, action, getkey())
    assert step.obs.shape == obs.shape and step.final_obs.shape == obs.shape
    assert step.reward.shape == (3,) and step.reward.dtype == jnp.float32
    assert step.terminated.dtype == jnp.bool_ and step.truncated.dtype == jnp.bool_


def test_minatar_keeps_images_for_the_cnn(getkey):
    env = make_env("gymnax", "Breakout-MinAtar", cnn_policy=True, n_envs=2)
    assert env.observation_shape == (10, 10, 4)
    _, obs = env.reset(getkey())
    assert obs.shape == (2, 10, 10, 4)
    with pytest.raises(ValueError, match="cnn_policy needs image observations"):
        make_env("gymnax", "CartPole-v1", cnn_policy=True)


def test_integer_observations_become_float(getkey):
    env = make_env("gymnax", "FourRooms-misc", n_envs=2)  # gymnax gives int32
    _, obs = env.reset(getkey())
    assert obs.dtype == jnp.float32


def test_truncated_step_reports_the_true_final_observation(getkey):
    # CartPole with a 3-step limit: step 3 is truncated; obs is already the next
    # episode's first observation, final_obs is where the episode stopped.
    env = make_env("gymnax", "CartPole-v1", n_envs=1, env_kwargs={"max_steps_in_episode": 3})
    state, obs = env.reset(getkey())
    reached = []
    for _ in range(3):
        state, step = env.step(state, jnp.zeros(1, jnp.int32), getkey())
        reached.append(step)
    last = reached[-1]
    assert not reached[0].truncated[0] and not reached[1].truncated[0]
    assert bool(last.truncated[0]) and not bool(last.terminated[0])
    assert not np.allclose(last.obs, last.final_obs)
    # The final observation continues the trajectory: CartPole's x moves by ~tau * x_dot.
    prev = np.asarray(reached[1].obs[0])
    np.testing.assert_allclose(last.final_obs[0, 0], prev[0] + 0.02 * prev[1], atol=1e-5)
    # The reset observation is a fresh start near zero.
    assert np.all(np.abs(np.asarray(last.obs)) <= 0.05)


def test_terminated_step_is_not_truncated(getkey):
    # Pushing left forever makes the pole fall well before 500 steps.
    env = make_env("gymnax", "CartPole-v1", n_envs=1)
    state, _ = env.reset(getkey())
    for t in range(200):
        state, step = env.step(state, jnp.zeros(1, jnp.int32), getkey())
        if bool(step.terminated[0] | step.truncated[0]):
            break
    assert bool(step.terminated[0]) and not bool(step.truncated[0]) and t < 100


def test_env_kwargs_and_unknown_names():
    env = make_env("gymnax", "Pendulum-v1", env_kwargs={"max_steps_in_episode": 50})
    assert env.max_episode_steps == 50
    with pytest.raises(ValueError, match="max_steps_in_episod.*constructor arguments.*parameters"):
        make_env("gymnax", "Pendulum-v1", env_kwargs={"max_steps_in_episod": 50})
    # Constructor arguments go to gymnax.make, as ARLBench passes them; both kinds mix.
    full = make_env(
        "gymnax",
        "Breakout-MinAtar",
        env_kwargs={"use_minimal_action_set": False, "max_steps_in_episode": 50},
    )
    assert full.action_spec.action_dim == 6 and full.max_episode_steps == 50
    assert make_env("gymnax", "Breakout-MinAtar").action_spec.action_dim == 3
    rebuilt = make_env(**full.make_env_args())  # what a checkpoint records rebuilds it
    assert rebuilt.action_spec == full.action_spec and rebuilt.max_episode_steps == 50
    with pytest.raises(ValueError, match="CartPole-v0.*registered"):
        make_env("gymnax", "CartPole-v0")
    with pytest.raises(ValueError, match="Unknown env_framework 'gym'"):
        make_env("gym", "CartPole-v1")
    with pytest.raises(ValueError, match="n_envs"):
        make_env("gymnax", "CartPole-v1", n_envs=0)


def test_continuous_action_spec():
    spec = make_env("gymnax", "Pendulum-v1").action_spec
    assert not spec.discrete and spec.action_dim == 1
    assert spec.low == (-2.0,) and spec.high == (2.0,)


def test_normalizer_matches_numpy_over_several_batches():
    rng = np.random.default_rng(0)
    batches = [rng.normal(3.0, 2.0, size=(n, 5, 2)).astype(np.float32) for n in (4, 7, 1)]
    state = init_normalizer((2,))
    np.testing.assert_allclose(normalize(state, jnp.ones(2)), jnp.ones(2))  # identity at start
    for b in batches:
        state = update_normalizer(state, jnp.asarray(b))
    data = np.concatenate([b.reshape(-1, 2) for b in batches])
    np.testing.assert_allclose(state.mean, data.mean(0), rtol=1e-5)
    np.testing.assert_allclose(state.var, data.var(0), rtol=1e-4)
    assert float(state.count) == data.shape[0]
    z = normalize(state, jnp.asarray(data))
    np.testing.assert_allclose(np.asarray(z).mean(0), 0.0, atol=1e-4)


def test_step_is_jittable_and_vmappable(getkey):
    env = make_env("gymnax", "Acrobot-v1", n_envs=2)
    keys = jr.split(getkey(), 4)
    states, obs = jax.jit(jax.vmap(env.reset))(keys)
    assert obs.shape == (4, 2, 6)
    actions = jnp.zeros((4, 2), jnp.int32)
    step_keys = jr.split(getkey(), 4)
    _, batched = jax.jit(jax.vmap(env.step))(states, actions, step_keys)
    assert batched.obs.shape == (4, 2, 6) and batched.reward.shape == (4, 2)
    # Each row of the jitted, vmapped step is the eager step of that row.
    for i in (0, 3):
        state_i = jax.tree.map(lambda x: x[i], states)
        _, one = env.step(state_i, actions[i], step_keys[i])
        np.testing.assert_allclose(batched.obs[i], one.obs, rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(batched.reward[i], one.reward)


@pytest.mark.parametrize(
    "name, cnn",
    [("CartPole-v1", False), ("Pendulum-v1", False), ("Breakout-MinAtar", True)],
)
def test_arlbench_s_spaces_and_random_actions(name, cnn):
    # ARLBench's scripts read gymnax spaces and call `sample_actions`; the actions must be
    # ones `step` takes, inside the bounds, and differ between environments and keys.
    env = make_env("gymnax", name, n_envs=64, cnn_policy=cnn)
    space, spec = env.action_space, env.action_spec
    assert env.observation_space.shape == env.observation_shape
    actions = env.sample_actions(jr.key(0))
    values = np.asarray(actions)
    if spec.discrete:
        assert space.n == spec.action_dim and actions.shape == (64,)
        assert set(np.unique(values)) == set(range(spec.action_dim))
    else:
        assert actions.shape == (64, spec.action_dim)
        assert np.all(values >= np.asarray(spec.low)) and np.all(values <= np.asarray(spec.high))
        assert values.std() > 0.1 * (spec.high[0] - spec.low[0])
    assert not np.array_equal(values, np.asarray(env.sample_actions(jr.key(1))))
    env_state, _ = env.reset(jr.key(2))
    _, step = env.step(env_state, actions, jr.key(3))
    assert step.reward.shape == (64,)
