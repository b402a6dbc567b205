"""The gymnax adapter: vectorised, auto-resetting, terminated and truncated kept apart."""

import math
from typing import Any

import equinox as eqx
import gymnax
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
from gymnax.environments import spaces
from jaxtyping import Array, Float, PRNGKeyArray, PyTree, Real

from ._environment import AbstractEnvironment, ActionSpec, EnvStep


def _gymnax_numpy():
    # Some gymnax environments (Swimmer-misc) rely on NumPy's implicit rank promotion;
    # trace them with it allowed, whatever the caller's `jax_numpy_rank_promotion`.
    return jax.numpy_rank_promotion("allow")


def _image_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    # A 2-D observation (bsuite Catch, DeepSea) is an image with one channel.
    return (*shape, 1) if len(shape) == 2 else shape


class GymnaxEnv(AbstractEnvironment):
    """`n_envs` copies of a gymnax environment stepped under `vmap`.

    Observations are cast to float32 (gymnax gives int32 or bool for some
    environments), flattened unless `image_obs`, and kept channels-last
    (`(H, W, C)`) for image policies. Where a step ends an episode, `obs` is the
    first observation of the next one and `final_obs` the observation that ended it.
    """

    env_name: str = eqx.field(static=True)
    env: Any = eqx.field(static=True)
    params: PyTree
    n_envs: int = eqx.field(static=True)
    image_obs: bool = eqx.field(static=True)

    def __check_init__(self):
        if self.n_envs < 1:
            raise ValueError(f"`n_envs` must be >= 1, got {self.n_envs!r}.")

    def _process_obs(self, obs: Array) -> Float[Array, "n_envs *obs_shape"]:
        obs = obs.astype(jnp.float32)
        return obs.reshape(obs.shape[0], *self.observation_shape)

    def reset(self, key: PRNGKeyArray) -> tuple[PyTree, Float[Array, "n_envs *obs_shape"]]:
        keys = jr.split(key, self.n_envs)
        with _gymnax_numpy():
            obs, state = jax.vmap(self.env.reset, in_axes=(0, None))(keys, self.params)
        return state, self._process_obs(obs)

    def step(
        self, env_state: PyTree, action: Real[Array, " n_envs *action_shape"], key: PRNGKeyArray
    ) -> tuple[PyTree, EnvStep]:
        keys = jr.split(key, self.n_envs)
        with _gymnax_numpy():
            obs, state, reward, terminated, truncated, info = jax.vmap(
                self.env.step, in_axes=(0, 0, 0, None)
            )(keys, env_state, action, self.params)
        info = dict(info)
        final_obs = info.pop("final_observation")
        for name in ("terminated", "truncated"):
            info.pop(name, None)
        return state, EnvStep(
            obs=self._process_obs(obs),
            reward=reward.astype(jnp.float32),
            terminated=terminated.astype(bool),
            truncated=truncated.astype(bool),
            final_obs=self._process_obs(final_obs),
            info=info,
        )

    @property
    def observation_shape(self) -> tuple[int, ...]:
        shape = tuple(self.env.observation_space(self.params).shape)
        if self.image_obs:
            return _image_shape(shape)
        return (math.prod(shape),)

    @property
    def action_spec(self) -> ActionSpec:
        space = self.env.action_space(self.params)
        if isinstance(space, spaces.Discrete):
            return ActionSpec(discrete=True, action_dim=int(space.n))
        if isinstance(space, spaces.Box):
            shape = tuple(space.shape)
            if len(shape) != 1:
                raise ValueError(
                    f"{self.env_name}: only 1-D Box action spaces are supported, got {shape}."
                )
            low = np.broadcast_to(np.asarray(space.low, dtype=np.float32), shape)
            high = np.broadcast_to(np.asarray(space.high, dtype=np.float32), shape)
            return ActionSpec(
                discrete=False,
                action_dim=shape[0],
                low=tuple(float(x) for x in low),
                high=tuple(float(x) for x in high),
            )
        raise ValueError(
            f"{self.env_name}: action space {space!r} is not supported (Discrete and 1-D Box are)."
        )

    @property
    def max_episode_steps(self) -> int:
        return int(self.params.max_steps_in_episode)

    def with_n_envs(self, n_envs: int) -> "GymnaxEnv":
        return GymnaxEnv(
            env_name=self.env_name,
            env=self.env,
            params=self.params,
            n_envs=n_envs,
            image_obs=self.image_obs,
        )

    def make_env_args(self) -> dict[str, Any]:
        _, default = gymnax.make(self.env_name)
        env_kwargs = {}
        for name in self.params.__dataclass_fields__:
            value = np.asarray(getattr(self.params, name)).tolist()
            if value != np.asarray(getattr(default, name)).tolist():
                env_kwargs[name] = value
        return {
            "env_framework": "gymnax",
            "env_name": self.env_name,
            "cnn_policy": self.image_obs,
            "n_envs": self.n_envs,
            "env_kwargs": env_kwargs,
        }


def make_gymnax_env(
    env_name: str, n_envs: int, image_obs: bool, env_kwargs: dict[str, Any] | None
) -> GymnaxEnv:
    """Build a `GymnaxEnv`; `env_kwargs` override fields of the default parameters."""
    if env_name not in gymnax.registered_envs:
        raise ValueError(
            f"Unknown gymnax environment {env_name!r}; registered: {list(gymnax.registered_envs)}."
        )
    env, params = gymnax.make(env_name)
    if env_kwargs:
        valid = sorted(f for f in params.__dataclass_fields__)
        unknown = sorted(set(env_kwargs) - set(valid))
        if unknown:
            raise ValueError(
                f"Unknown env_kwargs {unknown} for {env_name}; valid parameters: {valid}."
            )
        params = params.replace(**env_kwargs)
    out = GymnaxEnv(env_name=env_name, env=env, params=params, n_envs=n_envs, image_obs=image_obs)
    if image_obs and len(out.observation_shape) != 3:
        raise ValueError(
            f"cnn_policy needs image observations (H, W, C); {env_name} observations have "
            f"shape {tuple(env.observation_space(params).shape)}."
        )
    return out
