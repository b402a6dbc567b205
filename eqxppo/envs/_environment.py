"""The environment contract every PPO environment fulfils (gymnax >= 1.0 semantics)."""

import abc
from typing import Any, ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
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
    checkpoint resets fresh environments. `seeded_when_made`: whether the randomness is
    fixed when the environment is made rather than drawn from `reset`'s key (envpool): a
    run that starts on such an environment again continues its episode stream, so a
    reproducible fresh run needs an environment made anew.
    """

    n_envs: eqx.AbstractVar[int]
    vmappable: ClassVar[bool] = True
    restorable: ClassVar[bool] = True
    seeded_when_made: ClassVar[bool] = False

    def __check_init__(self):
        if self.n_envs < 1:
            raise ValueError(f"`n_envs` must be >= 1, got {self.n_envs!r}.")

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

    # ARLBench's environment object also describes itself with gymnax spaces and samples
    # random actions; scripts written for it read these. They describe what the policy
    # sees and outputs, so every framework gives the same kind of space.

    @property
    def action_space(self) -> Any:
        """The action space as a gymnax space, as ARLBench's environments give it:
        `Discrete(action_dim)`, or a float32 `Box` of the action bounds."""
        from gymnax.environments import spaces

        spec = self.action_spec
        if spec.discrete:
            return spaces.Discrete(spec.action_dim)
        low, high = jnp.asarray(spec.low, jnp.float32), jnp.asarray(spec.high, jnp.float32)
        return spaces.Box(low, high, (spec.action_dim,), jnp.float32)

    @property
    def observation_space(self) -> Any:
        """One observation as the policy sees it, as a gymnax `Box`: float32 of
        `observation_shape` (flattened, or a channels-last image with `cnn_policy`). The
        bounds are unbounded: eqxppo's observations are the framework's, converted and
        reshaped, and not every framework states bounds."""
        from gymnax.environments import spaces

        return spaces.Box(-jnp.inf, jnp.inf, self.observation_shape, jnp.float32)

    def sample_actions(self, key: PRNGKeyArray) -> Real[Array, "n_envs *action_shape"]:
        """One uniformly random action per environment (ARLBench's `sample_actions`),
        ready for `step`."""
        space = self.action_space
        return jax.vmap(space.sample)(jax.random.split(key, self.n_envs))


def where_done(done: Bool[Array, " n_envs"], reset: PyTree, stepped: PyTree) -> PyTree:
    """Per environment, the `reset` state where `done` else the `stepped` one.

    Both trees have a leading `n_envs` axis on every leaf: what an adapter that resets
    finished episodes itself (with fresh keys) keeps as the next state.
    """

    def pick(a: Array, b: Array) -> Array:
        return jnp.where(done.reshape(-1, *([1] * (a.ndim - 1))), a, b)

    return jax.tree.map(pick, reset, stepped)


def as_policy_obs(obs: Array, obs_shape: tuple[int, ...]) -> Float[Array, "n_envs *obs_shape"]:
    """A framework's batch of observations as the policy sees them: float32, reshaped to
    `(n_envs, *obs_shape)` (flattened, or the image as it is)."""
    return obs.astype(jnp.float32).reshape(obs.shape[0], *obs_shape)


def action_spec_of(space: Any, env_name: str) -> ActionSpec:
    """The `ActionSpec` of a gymnax or gymnasium action space: discrete (`space.n`) or a
    1-D box (`shape`, `low`, `high`); anything else raises `ValueError`."""
    if hasattr(space, "n"):
        return ActionSpec(discrete=True, action_dim=int(space.n))
    shape = tuple(getattr(space, "shape", ()) or ())
    if not hasattr(space, "low") or len(shape) != 1:
        raise ValueError(
            f"{env_name}: action space {space!r} is not supported (discrete and 1-D boxes are)."
        )
    low = np.broadcast_to(np.asarray(space.low, np.float32), shape)
    high = np.broadcast_to(np.asarray(space.high, np.float32), shape)
    return ActionSpec(
        discrete=False,
        action_dim=shape[0],
        low=tuple(float(x) for x in low),
        high=tuple(float(x) for x in high),
    )
