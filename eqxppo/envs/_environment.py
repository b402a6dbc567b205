"""The environment contract every PPO environment fulfils (gymnax >= 1.0 semantics)."""

import abc
from typing import Any, ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, PRNGKeyArray, PyTree, Real


class ActionSpec(eqx.Module):
    """What the policy must output: `n` categories, or a box of `shape` with `low`/`high`."""

    discrete: bool = eqx.field(static=True)
    # Discrete: number of actions. Continuous: length of the action vector.
    action_dim: int = eqx.field(static=True)
    # Continuous bounds per action dimension (empty for discrete spaces).
    low: tuple[float, ...] = eqx.field(static=True, default=())
    high: tuple[float, ...] = eqx.field(static=True, default=())


class EnvStep(eqx.Module):
    """One vectorised step: what a gymnax >= 1.0 step reports, per environment.

    `obs` is the observation to act on next (already reset where the episode ended);
    `final_obs` is the observation the step really reached, before any reset, so a
    truncated step can be bootstrapped from `V(final_obs)`.
    """

    obs: Float[Array, "n_envs *obs_shape"]
    reward: Float[Array, " n_envs"]
    terminated: Bool[Array, " n_envs"]
    truncated: Bool[Array, " n_envs"]
    final_obs: Float[Array, "n_envs *obs_shape"]
    info: dict[str, Any]
    # False where the step only reset its environment (envpool resets on the step after
    # an episode ends, ignoring the action): such transitions do not train the agent.
    # `None`: every step is a real one.
    valid: Bool[Array, " n_envs"] | None = None


class AbstractEnvironment(eqx.Module):
    """A batch of `n_envs` auto-resetting environments with float32 observations.

    `vmappable`: whether the environment may run under `vmap` (a population); false for
    environments whose state lives outside JAX. `restorable`: whether `env_state` holds
    the whole environment, so a checkpoint resumes it exactly; where false, loading a
    checkpoint resets fresh environments.
    """

    n_envs: eqx.AbstractVar[int]
    vmappable: ClassVar[bool] = True
    restorable: ClassVar[bool] = True

    @abc.abstractmethod
    def reset(self, key: PRNGKeyArray) -> tuple[PyTree, Float[Array, "n_envs *obs_shape"]]:
        """Reset all environments; returns `(env_state, obs)`."""

    @abc.abstractmethod
    def step(
        self, env_state: PyTree, action: Real[Array, " n_envs *action_shape"], key: PRNGKeyArray
    ) -> tuple[PyTree, EnvStep]:
        """Step all environments with one action each; returns `(env_state, EnvStep)`."""

    @property
    @abc.abstractmethod
    def observation_shape(self) -> tuple[int, ...]:
        """Shape of one observation as the policy sees it."""

    @property
    @abc.abstractmethod
    def action_spec(self) -> ActionSpec:
        """The action space in the policy's terms."""

    @property
    @abc.abstractmethod
    def max_episode_steps(self) -> int:
        """Time limit of one episode; bounds evaluation loops."""

    @abc.abstractmethod
    def with_n_envs(self, n_envs: int) -> "AbstractEnvironment":
        """The same environment with another number of parallel copies."""

    @abc.abstractmethod
    def make_env_args(self) -> dict[str, Any]:
        """The `make_env` arguments that rebuild this environment (JSON-able, for checkpoints)."""


def where_done(done: Bool[Array, " n_envs"], reset: PyTree, stepped: PyTree) -> PyTree:
    """Per environment, the `reset` state where `done` else the `stepped` one.

    Both trees have a leading `n_envs` axis on every leaf: what an adapter that resets
    finished episodes itself (with fresh keys) keeps as the next state.
    """

    def pick(a: Array, b: Array) -> Array:
        return jnp.where(done.reshape(-1, *([1] * (a.ndim - 1))), a, b)

    return jax.tree.map(pick, reset, stepped)
