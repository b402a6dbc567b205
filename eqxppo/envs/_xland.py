"""The XLand-MiniGrid adapter: pure JAX, vmapped, reset by eqxppo with fresh keys.

xminigrid's own `GymAutoResetWrapper` replaces the observation an episode ended with by
the next episode's first one, so the raw environment is stepped and reset here: where a
step ends an episode, `final_obs` is what it reached and `obs` a fresh episode's first
observation. An episode ends at the goal (`discount == 0`: terminated) or at the time
limit (`discount == 1` on the last step: truncated).
"""

import dataclasses
import math
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
from jaxtyping import Array, Float, PRNGKeyArray, PyTree, Real

from .._extras import require
from .._third_party import third_party_numpy
from ._environment import AbstractEnvironment, ActionSpec, EnvStep, as_policy_obs, where_done


class XLandEnv(AbstractEnvironment):
    """`n_envs` copies of an XLand-MiniGrid environment stepped under `vmap`.

    Observations are the agent's `(view, view, 2)` grid view as float32: flattened,
    or kept as a channels-last image for `cnn_policy` (`image_obs`).
    """

    env_name: str = eqx.field(static=True)
    env: Any = eqx.field(static=True)
    params: PyTree
    n_envs: int = eqx.field(static=True)
    image_obs: bool = eqx.field(static=True)
    env_kwargs: tuple[tuple[str, Any], ...] = eqx.field(static=True, default=())

    def _process_obs(self, obs: Array) -> Float[Array, "n_envs *obs_shape"]:
        return as_policy_obs(obs, self.observation_shape)

    def _reset(self, key: PRNGKeyArray) -> PyTree:
        keys = jr.split(key, self.n_envs)
        with third_party_numpy():
            return jax.vmap(self.env.reset, in_axes=(None, 0))(self.params, keys)

    def reset(self, key: PRNGKeyArray) -> tuple[PyTree, Float[Array, "n_envs *obs_shape"]]:
        timestep = self._reset(key)
        return timestep, self._process_obs(timestep.observation)

    def step(
        self, env_state: PyTree, action: Real[Array, " n_envs *action_shape"], key: PRNGKeyArray
    ) -> tuple[PyTree, EnvStep]:
        with third_party_numpy():
            timestep = jax.vmap(self.env.step, in_axes=(None, 0, 0))(
                self.params, env_state, action.astype(jnp.int32)
            )
        done = timestep.last()
        terminated = done & (timestep.discount == 0)
        next_state = where_done(done, self._reset(key), timestep)
        return next_state, EnvStep(
            obs=self._process_obs(next_state.observation),
            reward=timestep.reward.astype(jnp.float32),
            terminated=terminated,
            truncated=done & ~terminated,
            final_obs=self._process_obs(timestep.observation),
            info={},
        )

    @property
    def observation_shape(self) -> tuple[int, ...]:
        shape = tuple(self.env.observation_shape(self.params))
        return shape if self.image_obs else (math.prod(shape),)

    @property
    def action_spec(self) -> ActionSpec:
        return ActionSpec(discrete=True, action_dim=int(self.env.num_actions(self.params)))

    @property
    def max_episode_steps(self) -> int:
        return int(self.params.max_steps)

    def with_n_envs(self, n_envs: int) -> "XLandEnv":
        return dataclasses.replace(self, n_envs=n_envs)

    def make_env_args(self) -> dict[str, Any]:
        return {
            "env_framework": "xland",
            "env_name": self.env_name,
            "cnn_policy": self.image_obs,
            "n_envs": self.n_envs,
            "env_kwargs": dict(self.env_kwargs),
        }


def make_xland_env(
    env_name: str, n_envs: int, image_obs: bool, env_kwargs: dict[str, Any] | None
) -> XLandEnv:
    """Build an `XLandEnv`; `env_kwargs` are fields of the environment's parameters
    (`max_steps`, `view_size`, ...), passed to `xminigrid.make` as ARLBench does."""
    xminigrid = require("xminigrid", "xland")
    names = list(xminigrid.registered_environments())
    if env_name not in names:
        raise ValueError(f"Unknown xland environment {env_name!r}; registered: {names}.")
    env_kwargs = dict(env_kwargs or {})
    with third_party_numpy():
        env, params = xminigrid.make(env_name)
    valid = sorted(f.name for f in dataclasses.fields(params))
    unknown = sorted(set(env_kwargs) - set(valid))
    if unknown:
        raise ValueError(f"Unknown env_kwargs {unknown} for {env_name}; parameters: {valid}.")
    if env_kwargs:
        params = params.replace(**env_kwargs)
    return XLandEnv(
        env_name=env_name,
        env=env,
        params=params,
        n_envs=n_envs,
        image_obs=image_obs,
        env_kwargs=tuple(sorted(env_kwargs.items())),
    )
