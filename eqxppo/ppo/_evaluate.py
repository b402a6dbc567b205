"""Evaluate a policy for whole episodes, in parallel, in a loop bounded by the time limit."""

import jax
import jax.numpy as jnp
import jax.random as jr
from jaxtyping import Array, Bool, Float, PRNGKeyArray

from ..envs import AbstractEnvironment, NormalizerState
from ..networks import AbstractActorCritic, AbstractRecurrentActorCritic
from ._rollout import clip_action, maybe_normalize


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
    A recurrent network starts each episode from zero hidden states and carries them
    through it.
    """
    env = env.with_n_envs(n_episodes)
    reset_key, loop_key = jr.split(key)
    env_state, obs = env.reset(reset_key)
    spec = env.action_spec

    def act(obs, hidden, key):
        obs = maybe_normalize(normalizer_state, obs, normalize_observations)
        if isinstance(network, AbstractRecurrentActorCritic):
            hidden, dist, _ = network.step(hidden, obs)
        else:
            dist = network.policy(obs)
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

    hidden = None
    if isinstance(network, AbstractRecurrentActorCritic):
        hidden = jnp.zeros((n_episodes, *network.hidden_shape), jnp.float32)
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
