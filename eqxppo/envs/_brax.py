"""The brax adapter: pure JAX, vmapped, reset by eqxppo with fresh keys.

brax's `AutoResetWrapper` resets every episode to one stored first state and overwrites
the observation an episode ended with, so environments are created without it (its
`EpisodeWrapper` still counts the time limit and sets `info["truncation"]`) and reset
here with a new key each time: where a step ends an episode, `final_obs` is what it
reached and `obs` a fresh episode's first observation. The price is one (vmapped) reset
per step, which costs most on the mjx backend.
"""

import dataclasses
import inspect
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
from jaxtyping import Array, Float, PRNGKeyArray, PyTree, Real

from .._extras import require
from .._third_party import third_party_numpy
from ._environment import AbstractEnvironment, ActionSpec, EnvStep, where_done


# `brax.envs.create`'s own arguments, besides those of the environment's constructor.
_WRAPPER_KWARGS = ("episode_length", "action_repeat")
# `brax.envs.create`'s default time limit.
_EPISODE_LENGTH = 1000


class BraxEnv(AbstractEnvironment):
    """`n_envs` copies of a brax environment stepped under `vmap`.

    Actions are continuous in `[-1, 1]`; observations are float32 vectors.
    """

    env_name: str = eqx.field(static=True)
    env: Any = eqx.field(static=True)
    n_envs: int = eqx.field(static=True)
    episode_length: int = eqx.field(static=True)
    env_kwargs: tuple[tuple[str, Any], ...] = eqx.field(static=True, default=())

    def _reset(self, key: PRNGKeyArray) -> PyTree:
        with third_party_numpy():
            return jax.vmap(self.env.reset)(jr.split(key, self.n_envs))

    def reset(self, key: PRNGKeyArray) -> tuple[PyTree, Float[Array, "n_envs *obs_shape"]]:
        state = self._reset(key)
        return state, state.obs.astype(jnp.float32)

    def step(
        self, env_state: PyTree, action: Real[Array, " n_envs *action_shape"], key: PRNGKeyArray
    ) -> tuple[PyTree, EnvStep]:
        with third_party_numpy():
            state = jax.vmap(self.env.step)(env_state, action)
        done = state.done.astype(bool)
        truncated = done & state.info["truncation"].astype(bool)
        next_state = where_done(done, self._reset(key), state)
        return next_state, EnvStep(
            obs=next_state.obs.astype(jnp.float32),
            reward=state.reward.astype(jnp.float32),
            terminated=done & ~truncated,
            truncated=truncated,
            final_obs=state.obs.astype(jnp.float32),
            info={},
        )

    @property
    def observation_shape(self) -> tuple[int, ...]:
        with third_party_numpy():  # brax resets an environment to find the size
            return (int(self.env.observation_size),)

    @property
    def action_spec(self) -> ActionSpec:
        with third_party_numpy():
            n = int(self.env.action_size)
        return ActionSpec(discrete=False, action_dim=n, low=(-1.0,) * n, high=(1.0,) * n)

    @property
    def max_episode_steps(self) -> int:
        return self.episode_length

    def with_n_envs(self, n_envs: int) -> "BraxEnv":
        return dataclasses.replace(self, n_envs=n_envs)

    def make_env_args(self) -> dict[str, Any]:
        return {
            "env_framework": "brax",
            "env_name": self.env_name,
            "cnn_policy": False,
            "n_envs": self.n_envs,
            "env_kwargs": dict(self.env_kwargs),
        }


def _constructor_names(env_class: type, pipeline_env: type) -> list[str]:
    names: set[str] = set(_WRAPPER_KWARGS)
    for cls in (env_class, pipeline_env):
        for p in inspect.signature(cls.__init__).parameters.values():
            if p.name != "self" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
                names.add(p.name)
    return sorted(names - {"sys"})


def make_brax_env(
    env_name: str, n_envs: int, image_obs: bool, env_kwargs: dict[str, Any] | None
) -> BraxEnv:
    """Build a `BraxEnv`; `env_kwargs` go to `brax.envs.create` as ARLBench passes them:
    `episode_length` (default 1000), `action_repeat`, and the environment's constructor
    arguments (`backend="mjx"`, ...)."""
    brax_envs = require("brax.envs", "brax")
    base = require("brax.envs.base", "brax")
    registry = brax_envs._envs  # brax's registry; `get_environment` raises a bare KeyError
    if env_name not in registry:
        raise ValueError(f"Unknown brax environment {env_name!r}; registered: {list(registry)}.")
    if image_obs:
        raise ValueError("cnn_policy needs image observations; brax observations are vectors.")
    env_kwargs = dict(env_kwargs or {})
    valid = _constructor_names(registry[env_name], base.PipelineEnv)
    unknown = sorted(set(env_kwargs) - set(valid))
    if unknown:
        raise ValueError(f"Unknown env_kwargs {unknown} for brax {env_name}; valid: {valid}.")
    episode_length = int(env_kwargs.get("episode_length", _EPISODE_LENGTH))
    with third_party_numpy():
        env = brax_envs.create(
            env_name, auto_reset=False, **{**env_kwargs, "episode_length": episode_length}
        )
    return BraxEnv(
        env_name=env_name,
        env=env,
        n_envs=n_envs,
        episode_length=episode_length,
        env_kwargs=tuple(sorted(env_kwargs.items())),
    )
