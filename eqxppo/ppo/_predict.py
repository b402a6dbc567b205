"""Actions of a trained policy for one observation or a batch of them."""

import equinox as eqx
import jax
import jax.random as jr
from beartype import beartype
from jaxtyping import Array, PRNGKeyArray, Real, jaxtyped

from ..envs import AbstractEnvironment
from ._rollout import clip_action, maybe_normalize
from ._state import PPORunnerState


def _batch_shape(obs: Array, obs_shape: tuple[int, ...]) -> tuple[int, ...]:
    n_batch = obs.ndim - len(obs_shape)
    if n_batch < 0 or tuple(obs.shape[n_batch:]) != obs_shape:
        raise ValueError(
            f"obs has shape {tuple(obs.shape)}; expected (*batch, *obs_shape) with "
            f"obs_shape = {obs_shape}."
        )
    return tuple(obs.shape[:n_batch])


@eqx.filter_jit
@jaxtyped(typechecker=beartype)
def predict(
    runner_state: PPORunnerState,
    obs: Real[Array, "..."],
    key: PRNGKeyArray,
    env: AbstractEnvironment,
    *,
    deterministic: bool = True,
) -> Real[Array, "..."]:
    """The policy's action for each observation in `obs`.

    **Arguments:**

    - `runner_state`: the trained state (network, observation statistics, and whether
      observations are normalised: `hparams.normalize_observations`).
    - `obs`: one observation of `env.observation_shape` or a batch `(*batch, *obs_shape)`.
    - `key`: sampling key (unused when `deterministic`).
    - `env`: gives the observation shape and the action bounds.
    - `deterministic`: the mode of the policy instead of a sample.

    **Returns:**

    Actions of shape `batch` (discrete) or `(*batch, action_dim)` (continuous, clipped
    to the action box).
    """
    batch_shape = _batch_shape(obs, env.observation_shape)
    flat = obs.reshape(-1, *env.observation_shape).astype(runner_state.obs.dtype)
    normalize_obs = runner_state.hparams.normalize_observations
    flat = maybe_normalize(runner_state.normalizer_state, flat, normalize_obs)
    network = runner_state.train_state.network

    def act(o, k):
        dist = network.policy(o)
        return dist.mode() if deterministic else dist.sample(k)

    actions = jax.vmap(act)(flat, jr.split(key, flat.shape[0]))
    actions = clip_action(actions, env.action_spec)
    return actions.reshape(*batch_shape, *actions.shape[1:])
