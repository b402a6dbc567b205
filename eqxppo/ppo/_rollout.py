"""Collect `n_steps` transitions from `n_envs` environments with the current policy.

One rollout for every network: each environment's hidden state is carried from step to
step (`None`, a pytree without leaves, for a network without memory). `rollout_values`
gives the values GAE needs.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import jax.tree_util as jtu
from jaxtyping import Array, Bool, Float, PRNGKeyArray, PyTree, Real

from ..envs import AbstractEnvironment, ActionSpec, EnvStep, NormalizerState, normalize
from ..networks import AbstractActorCritic, AbstractDistribution


class Rollout(eqx.Module):
    """What the policy did and saw at one step.

    Built per step with fields `(n_envs, ...)`; the rollout's `scan` stacks the steps, so
    its result has fields `(n_steps, n_envs, ...)`. `hidden` is the hidden state each
    environment's step began from, `next_hidden` the one after the step (before any
    restart): the values of `obs` and of `step.final_obs` are read from them, afterwards,
    in one batched pass (`rollout_values`). Both are `None` for a network without
    memory.
    """

    obs: Float[Array, "n_envs *obs_shape"]
    action: Real[Array, "n_envs *action_shape"]
    log_prob: Float[Array, " n_envs"]
    step: EnvStep
    hidden: PyTree[Array] = None
    next_hidden: PyTree[Array] = None


def per_env(hidden: PyTree[Array], n: int) -> PyTree[Array]:
    """One environment's hidden state (`network.initial_hidden()`) for `n` environments."""
    return jtu.tree_map(lambda x: jnp.broadcast_to(x, (n, *x.shape)), hidden)


def restart(
    starts: Bool[Array, " n_envs"], initial: PyTree[Array], hidden: PyTree[Array]
) -> PyTree[Array]:
    """`hidden` with the environments where `starts` back at `initial` (one
    environment's hidden state)."""

    def one(zero: Array, h: Array) -> Array:
        return jnp.where(starts.reshape(-1, *(1,) * zero.ndim), zero, h)

    return jtu.tree_map(one, initial, hidden)


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


def _sample(dist: AbstractDistribution, key: PRNGKeyArray, n_envs: int) -> tuple[Array, Array]:
    """One action per environment from a batch of distributions, and its log-probability."""
    action = jax.vmap(lambda d, k: d.sample(k))(dist, jr.split(key, n_envs))
    return action, jax.vmap(lambda d, a: d.log_prob(a))(dist, action)


def episode_starts(step: EnvStep) -> Bool[Array, "*batch"]:
    """Where the next observation begins an episode, so the hidden state restarts.

    After an episode's last step; and for envpool also after the reset-only step that
    follows it (`valid=False`): the observation that step was given was the old
    episode's last one, so the hidden state it left behind must not reach the new
    episode.
    """
    starts = step.terminated | step.truncated
    return starts if step.valid is None else starts | ~step.valid


def collect_rollout(
    network: AbstractActorCritic,
    normalizer_state: NormalizerState,
    env: AbstractEnvironment,
    env_state: PyTree,
    obs: Float[Array, "n_envs *obs_shape"],
    hidden: PyTree[Array],
    key: PRNGKeyArray,
    n_steps: int,
    *,
    normalize_observations: bool | Bool[Array, ""],
) -> tuple[tuple[PyTree, Float[Array, "n_envs *obs_shape"], PyTree[Array]], Rollout]:
    """Step the environments `n_steps` times, sampling actions from the policy.

    `hidden` is each environment's hidden state before `obs` (`(n_envs, ...)` leaves;
    `None` for a network without memory). Each step advances it on the observation
    (`network.step`) and samples from the policy; after the environments step, it
    restarts from `network.initial_hidden()` where an episode begins
    (`episode_starts`). Only the actor's output is used per step (the values come
    afterwards, in one batched pass: `rollout_values`), so for the MLP's separate
    towers the critic is not run here at all. Continuous actions are clipped to the box
    before the environment sees them; the unclipped sample is stored, as its
    log-probability is.

    **Returns:**

    `((env_state, obs, hidden), rollout)`: where the environments are now (the hidden
    state the next rollout starts from), and what happened.
    """
    spec = env.action_spec
    initial = network.initial_hidden()

    def one_step(carry, step_key):
        env_state, obs, hidden = carry
        policy_key, env_key = jr.split(step_key)
        norm_obs = maybe_normalize(normalizer_state, obs, normalize_observations)
        next_hidden, dist, _ = jax.vmap(network.step)(hidden, norm_obs)
        action, log_prob = _sample(dist, policy_key, env.n_envs)
        env_state, step = env.step(env_state, clip_action(action, spec), env_key)
        rollout = Rollout(obs, action, log_prob, step, hidden, next_hidden)
        return (env_state, step.obs, restart(episode_starts(step), initial, next_hidden)), rollout

    return jax.lax.scan(one_step, (env_state, obs, hidden), jr.split(key, n_steps))


def rollout_values(
    network: AbstractActorCritic,
    normalizer_state: NormalizerState,
    rollout: Rollout,
    *,
    normalize_observations: bool | Bool[Array, ""],
) -> tuple[Float[Array, "n_steps n_envs"], Float[Array, "n_steps n_envs"]]:
    """`V(obs)` and `V(final_obs)` of every step of a rollout, for GAE, in one batched
    pass (`network.forward_batch`).

    `V(obs)` after the hidden state the step began from (the value the step's policy
    went with); `V(final_obs)` after the hidden state the step left behind, the one the
    reached observation would have met had the episode gone on (a truncated step is
    bootstrapped from it). Both use the statistics the rollout acted with.
    """
    both = jnp.concatenate([rollout.obs, rollout.step.final_obs])
    both = maybe_normalize(normalizer_state, both, normalize_observations)
    hidden = jtu.tree_map(lambda a, b: jnp.concatenate([a, b]), rollout.hidden, rollout.next_hidden)
    # One batch through `forward_batch`, the form the loss uses: its products round the
    # same alone and under a population's `vmap`.
    merge = lambda x: x.reshape(-1, *x.shape[2:])
    values = network.forward_batch(merge(both), jtu.tree_map(merge, hidden))[1]
    value, next_value = jnp.split(values.reshape(both.shape[:2]), 2)
    return value, next_value
