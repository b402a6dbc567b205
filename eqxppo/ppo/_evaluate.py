"""Evaluate a policy for whole episodes, in parallel, in a loop bounded by the time limit."""

import jax
import jax.numpy as jnp
import jax.random as jr
from jaxtyping import Array, Bool, Float, PRNGKeyArray

from ..envs import AbstractEnvironment, NormalizerState
from ..networks import AbstractActorCritic
from ._rollout import clip_action, maybe_normalize, per_env


def evaluate(
    network: AbstractActorCritic,
    normalizer_state: NormalizerState,
    env: AbstractEnvironment,
    key: PRNGKeyArray,
    n_episodes: int,
    *,
    deterministic: bool = True,
    normalize_observations: bool | Bool[Array, ""] = False,
) -> Float[Array, " n_episodes"]:
    """Undiscounted returns of `n_episodes` episodes run side by side.

    Each episode runs in its own copy of `env` until it terminates or is truncated; the
    loop stops when all have ended, and never runs past `env.max_episode_steps` steps.
    `key` must not be a training key (`train` splits a fresh one for each evaluation).
    Each episode starts from the network's initial hidden state and carries its hidden
    state through the episode.
    """
    env = env.with_n_envs(n_episodes)
    reset_key, loop_key = jr.split(key)
    env_state, obs = env.reset(reset_key)
    spec = env.action_spec

    def act(obs, hidden, key):
        obs = maybe_normalize(normalizer_state, obs, normalize_observations)
        hidden, dist, _ = network.step(hidden, obs)
        return (dist.mode() if deterministic else dist.sample(key)), hidden

    def cond(carry):
        t, *_, done, _ = carry
        return (t < env.max_episode_steps) & ~jnp.all(done)

    def body(carry):
        t, env_state, obs, hidden, returns, done, key = carry
        key, act_key, step_key = jr.split(key, 3)
        action, hidden = jax.vmap(act)(obs, hidden, jr.split(act_key, n_episodes))
        env_state, step = env.step(env_state, clip_action(action, spec), step_key)
        returns = returns + jnp.where(done, 0.0, step.reward)
        done = done | step.terminated | step.truncated
        return t + 1, env_state, step.obs, hidden, returns, done, key

    hidden = per_env(network.initial_hidden(), n_episodes)
    init = (
        jnp.zeros((), jnp.int32),
        env_state,
        obs,
        hidden,
        jnp.zeros(n_episodes, jnp.float32),
        jnp.zeros(n_episodes, bool),
        loop_key,
    )
    returns = jax.lax.while_loop(cond, body, init)[4]
    return returns
