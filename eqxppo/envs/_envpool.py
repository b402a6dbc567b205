"""The envpool adapter: C++ environment pools stepped from inside the compiled program.

envpool's XLA interface (`pool.xla()`) steps a pool from `jit` and `lax.scan`, but its
state lives in C++: the pool cannot be `vmap`ped (populations refuse it), JAX keys do
not reach it (its randomness comes from `make_env`'s `seed`), and a checkpoint cannot
hold it (loading resets fresh pools). Resets go through an ordered host callback.

Each environment made owns its pool. envpool seeds a pool once, when it is made, and its
XLA step is bound to that pool (the pool's address is compiled into the program), so two
runs that shared a pool would see one episode stream between them. `make_envpool_env`
therefore makes a fresh pool every time: two environments made with the same seed see
the same episodes, in one process as in two. The pool is a static field, so the
programs traced with it are keyed by it and hold it: it is freed once no environment,
program or JAX trace cache refers to it (JAX keeps some cache keys, and with them the
pools, until 4,096 newer ones push them out). The cost is one compilation per
environment made.

envpool resets an environment on the step *after* its episode ended: that step ignores
the action, returns reward 0 and the new episode's first observation. The adapter
reports the ending step as it is (`obs` and `final_obs` both the observation reached;
`terminated` or `truncated` set) and marks the following reset step `valid=False`, so
PPO leaves it out of the loss (GAE does not cross it: the episode's end cuts the trace).
Atari frames come channels-first as uint8; they are given channels-last and scaled to
[0, 1], as ARLBench's CNN scales them.
"""

import dataclasses
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import io_callback
from jaxtyping import Array, Float, PRNGKeyArray, PyTree, Real

from .._extras import require
from ._environment import AbstractEnvironment, ActionSpec, EnvStep, action_spec_of, as_policy_obs


# envpool's configuration fields that `make_env` sets itself or that are internal.
_RESERVED = ("num_envs", "batch_size", "seed", "base_path", "max_num_players", "env_seed")


class _Pool:
    """One envpool pool and its XLA step, owned by the environments holding it.

    Compared and hashed by identity: a program traced with one pool is never reused
    for another (each compiles its own pool's address).
    """

    __slots__ = ("pool", "handle", "step", "__weakref__")

    def __init__(
        self, name: str, n_envs: int, seed: int, env_kwargs: tuple[tuple[str, Any], ...]
    ) -> None:
        envpool = require("envpool", "envpool")
        self.pool = envpool.make(
            name, env_type="gymnasium", num_envs=n_envs, seed=seed, **dict(env_kwargs)
        )
        handle, _, _, self.step = self.pool.xla()
        self.handle = np.asarray(handle)

    def __repr__(self) -> str:
        return f"<envpool pool {id(self):#x}>"


class EnvpoolEnv(AbstractEnvironment):
    """A pool of `n_envs` envpool environments, stepped through envpool's XLA interface."""

    env_name: str = eqx.field(static=True)
    n_envs: int = eqx.field(static=True)
    seed: int = eqx.field(static=True)
    image_obs: bool = eqx.field(static=True)
    env_kwargs: tuple[tuple[str, Any], ...] = eqx.field(static=True, default=())
    pool: _Pool | None = eqx.field(static=True, default=None)  # made by `__post_init__`

    vmappable = False
    restorable = False
    seeded_when_made = True

    def __post_init__(self) -> None:
        if self.pool is None:  # a fresh pool for every environment made
            self.pool = _Pool(self.env_name, self.n_envs, self.seed, self.env_kwargs)

    @property
    def _parts(self) -> tuple[Any, Any, Any]:
        assert self.pool is not None
        return self.pool.pool, self.pool.handle, self.pool.step

    @property
    def _raw_shape(self) -> tuple[int, ...]:
        return tuple(self._parts[0].observation_space.shape)

    @property
    def _pixels(self) -> bool:
        return len(self._raw_shape) == 3

    def _process_obs(self, obs: Array) -> Float[Array, "n_envs *obs_shape"]:
        if self._pixels:  # (n, C, H, W) uint8 -> (n, H, W, C) in [0, 1]
            obs = jnp.transpose(obs, (0, 2, 3, 1)).astype(jnp.float32) / 255.0
        return as_policy_obs(obs, self.observation_shape)

    def reset(self, key: PRNGKeyArray) -> tuple[PyTree, Float[Array, "n_envs *obs_shape"]]:
        del key  # envpool's randomness lives in C++, seeded by `seed`
        pool, handle, _ = self._parts

        def host_reset():
            obs, _ = pool.reset()
            return np.asarray(obs), handle

        space = pool.observation_space
        shapes = (
            jax.ShapeDtypeStruct((self.n_envs, *space.shape), space.dtype),
            jax.ShapeDtypeStruct(handle.shape, handle.dtype),
        )
        # The handle comes back out of the callback, so every later step depends on it.
        obs, env_state = io_callback(host_reset, shapes, ordered=True)
        return env_state, self._process_obs(obs)

    def step(
        self, env_state: PyTree, action: Real[Array, " n_envs *action_shape"], key: PRNGKeyArray
    ) -> tuple[PyTree, EnvStep]:
        del key
        dtype = jnp.int32 if self.action_spec.discrete else jnp.float32
        handle, (obs, reward, terminated, truncated, info) = self._parts[2](
            env_state, action.astype(dtype)
        )
        obs = self._process_obs(obs)
        return handle, EnvStep(
            obs=obs,
            reward=reward.astype(jnp.float32),
            terminated=terminated.astype(bool),
            truncated=truncated.astype(bool) & ~terminated.astype(bool),
            final_obs=obs,
            info={},
            valid=info["elapsed_step"] > 0,
        )

    @property
    def observation_shape(self) -> tuple[int, ...]:
        shape = self._raw_shape
        if self._pixels and self.image_obs:
            channels, height, width = shape
            return (height, width, channels)
        return (int(np.prod(shape)),)

    @property
    def action_spec(self) -> ActionSpec:
        return action_spec_of(self._parts[0].action_space, self.env_name)

    @property
    def max_episode_steps(self) -> int:
        # One more than envpool's limit: the step that resets is a step of the pool too.
        return int(self._parts[0].spec.config.max_episode_steps) + 1

    def with_n_envs(self, n_envs: int) -> "EnvpoolEnv":
        return dataclasses.replace(self, n_envs=n_envs, pool=None)

    def make_env_args(self) -> dict[str, Any]:
        return {
            "env_framework": "envpool",
            "env_name": self.env_name,
            "cnn_policy": self.image_obs,
            "n_envs": self.n_envs,
            "seed": self.seed,
            "env_kwargs": dict(self.env_kwargs),
        }


def make_envpool_env(
    env_name: str, n_envs: int, image_obs: bool, seed: int, env_kwargs: dict[str, Any] | None
) -> EnvpoolEnv:
    """Build an `EnvpoolEnv`; `env_kwargs` go to `envpool.make` as ARLBench passes them
    (`episodic_life`, `reward_clip`, `frame_skip`, ...)."""
    envpool = require("envpool", "envpool")
    names = list(envpool.list_all_envs())
    if env_name not in names:
        close = [n for n in names if n.split("-")[0].lower() == env_name.split("-")[0].lower()]
        raise ValueError(
            f"Unknown envpool environment {env_name!r}"
            + (f"; did you mean one of {close}?" if close else f"; registered: {names}.")
        )
    env_kwargs = dict(env_kwargs or {})
    config = envpool.make_spec(env_name).config
    valid = sorted(set(config._fields) - set(_RESERVED))
    unknown = sorted(set(env_kwargs) - set(valid))
    if unknown:
        raise ValueError(f"Unknown env_kwargs {unknown} for envpool {env_name}; valid: {valid}.")
    env = EnvpoolEnv(
        env_name=env_name,
        n_envs=n_envs,
        seed=int(seed),
        image_obs=image_obs,
        env_kwargs=tuple(sorted(env_kwargs.items())),
    )
    if image_obs and not env._pixels:
        raise ValueError(
            f"cnn_policy needs image observations; envpool {env_name} observations have shape "
            f"{env._raw_shape}."
        )
    return env
