"""Collect `n_steps` transitions from `n_envs` environments with the current policy."""

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
from jaxtyping import Array, Bool, Float, PRNGKeyArray, PyTree, Real

from ..envs import AbstractEnvironment, ActionSpec, EnvStep, NormalizerState, normalize
from ..networks import AbstractActorCritic


class Rollout(eqx.Module):
    """What the policy did and saw at one step; values come afterwards.

    Built per step with fields `(n_envs, ...)`; `collect_rollout`'s `scan` stacks the
    steps, so its result has fields `(n_steps, n_envs, ...)`.
    """

    obs: Float[Array, "n_envs *obs_shape"]
    action: Real[Array, "n_envs *action_shape"]
    log_prob: Float[Array, " n_envs"]
    step: EnvStep


def clip_action(action: Array, spec: ActionSpec) -> Array:
    """Clip continuous actions into the box; discrete actions pass through."""
    if spec.discrete:
        return action
    low = jnp.broadcast_to(jnp.asarray(spec.low, action.dtype), action.shape)
    high = jnp.broadcast_to(jnp.asarray(spec.high, action.dtype), action.shape)
    return jnp.clip(action, low, high)


def maybe_normalize(
    state: NormalizerState, obs: Float[Array, "*batch"], enabled: bool | Bool[Array, ""]
) -> Float[Array, "*batch"]:
    """`normalize(state, obs)` when observation normalisation is on, else `obs`.

    `enabled` is a Python bool (the branch is chosen while tracing) or a traced switch
    (`hparams.normalize_observations`: both are computed, one is kept).
    """
    if isinstance(enabled, bool):
        return normalize(state, obs) if enabled else obs
    return jnp.where(enabled, normalize(state, obs), obs)


def collect_rollout(
    network: AbstractActorCritic,
    normalizer_state: NormalizerState,
    env: AbstractEnvironment,
    env_state: PyTree,
    obs: Float[Array, "n_envs *obs_shape"],
    key: PRNGKeyArray,
    n_steps: int,
    *,
    normalize_observations: bool | Bool[Array, ""],
) -> tuple[tuple[PyTree, Float[Array, "n_envs *obs_shape"]], Rollout]:
    """Step the environments `n_steps` times, sampling actions from the policy.

    Only the actor runs per step: values of every observation are computed afterwards
    in one batched critic pass (`ppo.update`), which halves the per-step network work
    of the MLP's separate towers. Continuous actions are clipped to the box before the
    environment sees them; the unclipped sample is stored, as its log-probability is.

    **Returns:**

    `((env_state, obs), rollout)`: where the environments are now, and what happened.
    """
    spec = env.action_spec

    def one_step(carry, step_key):
        env_state, obs = carry
        policy_key, env_key = jr.split(step_key)
        dist = jax.vmap(network.policy)(
            maybe_normalize(normalizer_state, obs, normalize_observations)
        )
        action_keys = jr.split(policy_key, env.n_envs)
        action = jax.vmap(lambda d, k: d.sample(k))(dist, action_keys)
        log_prob = jax.vmap(lambda d, a: d.log_prob(a))(dist, action)
        env_state, step = env.step(env_state, clip_action(action, spec), env_key)
        return (env_state, step.obs), Rollout(obs, action, log_prob, step)

    return jax.lax.scan(one_step, (env_state, obs), jr.split(key, n_steps))
