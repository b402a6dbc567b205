"""Collect `n_steps` transitions from `n_envs` environments with the current policy.

`collect_rollout` runs a feed-forward policy; `collect_recurrent_rollout` a recurrent one,
carrying each environment's hidden state. `rollout_values` gives both the values GAE
needs.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
from jaxtyping import Array, Bool, Float, PRNGKeyArray, PyTree, Real

from ..envs import AbstractEnvironment, ActionSpec, EnvStep, NormalizerState, normalize
from ..networks import AbstractActorCritic, AbstractDistribution, AbstractRecurrentActorCritic


class Rollout(eqx.Module):
    """What the policy did and saw at one step.

    Built per step with fields `(n_envs, ...)`; the rollout's `scan` stacks the steps, so
    its result has fields `(n_steps, n_envs, ...)`. A feed-forward rollout leaves
    `value` and `hidden` `None` (its values come afterwards, in one batched pass); a
    recurrent one stores `V(obs)` as the step computed it and the hidden state after
    the step (before any reset), from which `V(final_obs)` is computed afterwards.
    """

    obs: Float[Array, "n_envs *obs_shape"]
    action: Real[Array, "n_envs *action_shape"]
    log_prob: Float[Array, " n_envs"]
    step: EnvStep
    value: Float[Array, " n_envs"] | None = None
    hidden: Float[Array, "n_envs *hidden_shape"] | None = None


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
        action, log_prob = _sample(dist, policy_key, env.n_envs)
        env_state, step = env.step(env_state, clip_action(action, spec), env_key)
        return (env_state, step.obs), Rollout(obs, action, log_prob, step)

    return jax.lax.scan(one_step, (env_state, obs), jr.split(key, n_steps))


def collect_recurrent_rollout(
    network: AbstractRecurrentActorCritic,
    normalizer_state: NormalizerState,
    env: AbstractEnvironment,
    env_state: PyTree,
    obs: Float[Array, "n_envs *obs_shape"],
    hidden: Float[Array, "n_envs *hidden_shape"],
    key: PRNGKeyArray,
    n_steps: int,
    *,
    normalize_observations: bool | Bool[Array, ""],
) -> tuple[
    tuple[PyTree, Float[Array, "n_envs *obs_shape"], Float[Array, "n_envs *hidden_shape"]],
    Rollout,
]:
    """`collect_rollout` for a recurrent policy: `hidden` is each environment's hidden
    state before `obs`.

    Each step advances the hidden state on the observation, samples from the policy
    and stores the value read from the same hidden state; after the environments step,
    the hidden state restarts from zeros where an episode begins (`episode_starts`).
    The hidden state returned is the one the next rollout starts from; the one the
    update re-runs its sequences from is the `hidden` given here.

    **Returns:**

    `((env_state, obs, hidden), rollout)`.
    """
    spec = env.action_spec
    zeros = network.initial_hidden()

    def one_step(carry, step_key):
        env_state, obs, hidden = carry
        policy_key, env_key = jr.split(step_key)
        norm_obs = maybe_normalize(normalizer_state, obs, normalize_observations)
        hidden, dist, value = jax.vmap(network.step)(hidden, norm_obs)
        action, log_prob = _sample(dist, policy_key, env.n_envs)
        env_state, step = env.step(env_state, clip_action(action, spec), env_key)
        starts = episode_starts(step).reshape(-1, *(1,) * len(zeros.shape))
        next_hidden = jnp.where(starts, zeros, hidden)
        rollout = Rollout(obs, action, log_prob, step, value=value, hidden=hidden)
        return (env_state, step.obs, next_hidden), rollout

    return jax.lax.scan(one_step, (env_state, obs, hidden), jr.split(key, n_steps))


def rollout_values(
    network: AbstractActorCritic,
    normalizer_state: NormalizerState,
    rollout: Rollout,
    *,
    normalize_observations: bool | Bool[Array, ""],
) -> tuple[Float[Array, "n_steps n_envs"], Float[Array, "n_steps n_envs"]]:
    """`V(obs)` and `V(final_obs)` of every step of a rollout, for GAE.

    Feed-forward: both in one batched critic pass. Recurrent: `V(obs)` as the rollout
    stored it; `V(final_obs)` from the hidden state after the step, the one the reached
    observation would have met had the episode gone on (a truncated step is bootstrapped
    from it), all steps in one batched pass. Both use the statistics the rollout acted
    with.
    """
    if isinstance(network, AbstractRecurrentActorCritic):
        assert rollout.value is not None and rollout.hidden is not None
        final_obs = maybe_normalize(
            normalizer_state, rollout.step.final_obs, normalize_observations
        )
        step_value = lambda h, o: network.step(h, o)[2]
        return rollout.value, jax.vmap(jax.vmap(step_value))(rollout.hidden, final_obs)
    both = jnp.concatenate([rollout.obs, rollout.step.final_obs])
    both = maybe_normalize(normalizer_state, both, normalize_observations)
    # One batch through `forward_batch`, the form the loss uses: its products round the
    # same alone and under a population's `vmap`.
    flat = both.reshape(-1, *both.shape[2:])
    values = network.forward_batch(flat)[1].reshape(both.shape[:2])
    value, next_value = jnp.split(values, 2)
    return value, next_value
