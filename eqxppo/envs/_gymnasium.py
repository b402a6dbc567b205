"""The gymnasium adapter: host-side environments called from inside the compiled program.

A gymnasium vector environment (synchronous, `n_envs` copies) is stepped through an
ordered `jax.experimental.io_callback`, so a whole `train` stays one compiled call; the
price is a host round trip per step, and an ordered callback cannot be `vmap`ped
(populations refuse it). Its state lives in Python: a checkpoint cannot hold it, and
loading resets fresh environments. The vector environment resets finished episodes in
the same step (`AutoresetMode.SAME_STEP`), which is eqxppo's contract: `obs` is the new
episode's first observation and `final_obs` the one the step reached. Every reset draws
its seeds from the JAX key it is given.
"""

import dataclasses
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
from jax.experimental import io_callback
from jaxtyping import Array, Float, PRNGKeyArray, PyTree, Real

from .._extras import MissingExtraError, require
from ._environment import AbstractEnvironment, ActionSpec, EnvStep, action_spec_of, as_policy_obs


# Vector environments stay alive for the process: compiled programs call them.
_VECTORS: dict[tuple[Any, ...], Any] = {}


def _vector(name: str, n_envs: int, env_kwargs: tuple[tuple[str, Any], ...]) -> Any:
    key = (name, n_envs, env_kwargs)
    if key not in _VECTORS:
        gym = require("gymnasium", "gymnasium")
        try:
            _VECTORS[key] = gym.make_vec(
                name,
                num_envs=n_envs,
                vectorization_mode="sync",
                vector_kwargs={"autoreset_mode": gym.vector.AutoresetMode.SAME_STEP},
                **dict(env_kwargs),
            )
        except gym.error.DependencyNotInstalled as error:  # Box2D, MuJoCo, ...
            raise MissingExtraError(
                f"gymnasium {name} needs a package that is not installed "
                f"({str(error).split('.')[0]}): pip install 'eqxppo[gymnasium]'."
            ) from None
    return _VECTORS[key]


class GymnasiumEnv(AbstractEnvironment):
    """`n_envs` gymnasium environments in a synchronous vector environment on the host."""

    env_name: str = eqx.field(static=True)
    n_envs: int = eqx.field(static=True)
    image_obs: bool = eqx.field(static=True)
    env_kwargs: tuple[tuple[str, Any], ...] = eqx.field(static=True, default=())

    vmappable = False
    restorable = False

    @property
    def _vec(self) -> Any:
        return _vector(self.env_name, self.n_envs, self.env_kwargs)

    @property
    def _raw_shape(self) -> tuple[int, ...]:
        return tuple(self._vec.single_observation_space.shape)

    def _obs_struct(self) -> jax.ShapeDtypeStruct:
        return jax.ShapeDtypeStruct((self.n_envs, *self._raw_shape), jnp.float32)

    def _process_obs(self, obs: Array) -> Float[Array, "n_envs *obs_shape"]:
        return as_policy_obs(obs, self.observation_shape)

    def reset(self, key: PRNGKeyArray) -> tuple[PyTree, Float[Array, "n_envs *obs_shape"]]:
        vec = self._vec

        def host_reset(key_data: Any) -> np.ndarray:  # a NumPy or JAX array, by version
            seeds = np.random.SeedSequence(np.asarray(key_data).tolist()).generate_state(
                self.n_envs
            )
            obs, _ = vec.reset(seed=[int(s) for s in seeds])
            return np.asarray(obs, np.float32)

        obs = io_callback(host_reset, self._obs_struct(), jr.key_data(key), ordered=True)
        return jnp.zeros((), jnp.int32), self._process_obs(obs)

    def step(
        self, env_state: PyTree, action: Real[Array, " n_envs *action_shape"], key: PRNGKeyArray
    ) -> tuple[PyTree, EnvStep]:
        del key  # episodes after the first are seeded by the vector environment's RNG
        vec, discrete = self._vec, self.action_spec.discrete

        def host_step(action: Any):
            action = np.asarray(action, np.int64 if discrete else np.float32)
            obs, reward, terminated, truncated, info = vec.step(action)
            obs = np.asarray(obs, np.float32)
            final_obs = obs.copy()
            ended = np.asarray(info.get("_final_obs", np.zeros(self.n_envs, bool)))
            for i in np.flatnonzero(ended):
                final_obs[i] = info["final_obs"][i]
            return (
                obs,
                np.asarray(reward, np.float32),
                np.asarray(terminated, bool),
                np.asarray(truncated, bool),
                final_obs,
            )

        flags = jax.ShapeDtypeStruct((self.n_envs,), jnp.bool_)
        shapes = (
            self._obs_struct(),
            jax.ShapeDtypeStruct((self.n_envs,), jnp.float32),
            flags,
            flags,
            self._obs_struct(),
        )
        obs, reward, terminated, truncated, final_obs = io_callback(
            host_step, shapes, action, ordered=True
        )
        return env_state + 1, EnvStep(
            obs=self._process_obs(obs),
            reward=reward,
            terminated=terminated,
            truncated=truncated & ~terminated,
            final_obs=self._process_obs(final_obs),
            info={},
        )

    @property
    def observation_shape(self) -> tuple[int, ...]:
        shape = self._raw_shape
        if self.image_obs:
            return shape
        return (int(np.prod(shape)),)

    @property
    def action_spec(self) -> ActionSpec:
        return action_spec_of(self._vec.single_action_space, self.env_name)

    @property
    def max_episode_steps(self) -> int:
        spec = self._vec.spec
        limit = None if spec is None else spec.max_episode_steps
        if limit is None:
            raise ValueError(
                f"gymnasium {self.env_name} has no time limit; pass env_kwargs="
                "{'max_episode_steps': N} so evaluation episodes end."
            )
        return int(limit)

    def with_n_envs(self, n_envs: int) -> "GymnasiumEnv":
        return dataclasses.replace(self, n_envs=n_envs)

    def make_env_args(self) -> dict[str, Any]:
        return {
            "env_framework": "gymnasium",
            "env_name": self.env_name,
            "cnn_policy": self.image_obs,
            "n_envs": self.n_envs,
            "env_kwargs": dict(self.env_kwargs),
        }


def make_gymnasium_env(
    env_name: str, n_envs: int, image_obs: bool, env_kwargs: dict[str, Any] | None
) -> GymnasiumEnv:
    """Build a `GymnasiumEnv`; `env_kwargs` go to `gymnasium.make_vec` (and through it to
    the environment's constructor, e.g. `continuous=True`, `max_episode_steps=...`)."""
    gym = require("gymnasium", "gymnasium")
    if env_name not in gym.registry:
        raise ValueError(
            f"Unknown gymnasium environment {env_name!r}; registered: {sorted(gym.registry)}."
        )
    env_kwargs = dict(env_kwargs or {})
    try:
        env = GymnasiumEnv(
            env_name=env_name,
            n_envs=n_envs,
            image_obs=image_obs,
            env_kwargs=tuple(sorted(env_kwargs.items())),
        )
        env._vec  # build it now: a bad constructor argument raises here
    except TypeError as error:
        raise ValueError(f"Bad env_kwargs {env_kwargs} for gymnasium {env_name}: {error}") from None
    if image_obs and len(env._raw_shape) != 3:
        raise ValueError(
            f"cnn_policy needs image observations (H, W, C); gymnasium {env_name} observations "
            f"have shape {env._raw_shape}."
        )
    return env
