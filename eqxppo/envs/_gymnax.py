"""The gymnax adapter: vectorised, auto-resetting, terminated and truncated kept apart."""

import dataclasses
import inspect
import math
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray, PyTree, Real

from .._third_party import third_party_numpy
from ._environment import (
    AbstractEnvironment,
    ActionSpec,
    EnvStep,
    action_spec_of,
    as_policy_obs,
)


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
    # The arguments `gymnax.make` passed to the environment's constructor, as sorted pairs.
    constructor_kwargs: tuple[tuple[str, Any], ...] = eqx.field(static=True, default=())

    def _process_obs(self, obs: Array) -> Float[Array, "n_envs *obs_shape"]:
        return as_policy_obs(obs, self.observation_shape)

    def reset(self, key: PRNGKeyArray) -> tuple[PyTree, Float[Array, "n_envs *obs_shape"]]:
        keys = jr.split(key, self.n_envs)
        # Some gymnax environments (Swimmer-misc) rely on implicit rank promotion, others
        # on standard dtype promotion: traced under JAX's defaults, whatever the caller set.
        with third_party_numpy():
            obs, state = jax.vmap(self.env.reset, in_axes=(0, None))(keys, self.params)
        return state, self._process_obs(obs)

    def step(
        self, env_state: PyTree, action: Real[Array, " n_envs *action_shape"], key: PRNGKeyArray
    ) -> tuple[PyTree, EnvStep]:
        keys = jr.split(key, self.n_envs)
        with third_party_numpy():
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
        return action_spec_of(self.env.action_space(self.params), self.env_name)

    @property
    def max_episode_steps(self) -> int:
        return int(self.params.max_steps_in_episode)

    def with_n_envs(self, n_envs: int) -> "GymnaxEnv":
        return dataclasses.replace(self, n_envs=n_envs)

    def make_env_args(self) -> dict[str, Any]:
        import gymnax

        _, default = gymnax.make(self.env_name, **dict(self.constructor_kwargs))
        env_kwargs = dict(self.constructor_kwargs)
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


def _constructor_names(env: Any) -> list[str]:
    parameters = inspect.signature(type(env)).parameters.values()
    return [p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


def make_gymnax_env(
    env_name: str, n_envs: int, image_obs: bool, env_kwargs: dict[str, Any] | None
) -> GymnaxEnv:
    """Build a `GymnaxEnv`.

    `env_kwargs` may hold both kinds of argument gymnax environments take: constructor
    arguments, passed to `gymnax.make(env_name, **kwargs)` as ARLBench does (MinAtar's
    `use_minimal_action_set`, bsuite Catch's `rows`), and fields of the environment's
    parameters to override (`max_steps_in_episode`). A name of neither kind raises and
    lists both.
    """
    with third_party_numpy():  # some environments compute arrays in their constructors
        return _make_gymnax_env(env_name, n_envs, image_obs, env_kwargs)


def _make_gymnax_env(
    env_name: str, n_envs: int, image_obs: bool, env_kwargs: dict[str, Any] | None
) -> GymnaxEnv:
    # Imported here, not with eqxppo: gymnax builds arrays when imported, which starts
    # JAX's backends, and `eqxppo.use_cpu_cores` must run before that.
    import gymnax

    if env_name not in gymnax.registered_envs:
        raise ValueError(
            f"Unknown gymnax environment {env_name!r}; registered: {list(gymnax.registered_envs)}."
        )
    env_kwargs = dict(env_kwargs or {})
    env, params = gymnax.make(env_name)
    constructor = sorted(set(env_kwargs) & set(_constructor_names(env)))
    overrides = {k: v for k, v in env_kwargs.items() if k not in constructor}
    unknown = sorted(set(overrides) - set(params.__dataclass_fields__))
    if unknown:
        raise ValueError(
            f"Unknown env_kwargs {unknown} for {env_name}; constructor arguments: "
            f"{_constructor_names(env)}; parameters: {sorted(params.__dataclass_fields__)}."
        )
    constructor_kwargs = tuple((k, env_kwargs[k]) for k in constructor)
    if constructor_kwargs:
        env, params = gymnax.make(env_name, **dict(constructor_kwargs))
    if overrides:
        params = params.replace(**overrides)
    out = GymnaxEnv(
        env_name=env_name,
        env=env,
        params=params,
        n_envs=n_envs,
        image_obs=image_obs,
        constructor_kwargs=constructor_kwargs,
    )
    if image_obs and len(out.observation_shape) != 3:
        raise ValueError(
            f"cnn_policy needs image observations (H, W, C); {env_name} observations have "
            f"shape {tuple(env.observation_space(params).shape)}."
        )
    return out
