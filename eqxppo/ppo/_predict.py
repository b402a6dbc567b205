"""Actions of a trained policy for one observation or a batch of them."""

import equinox as eqx
import jax
import jax.random as jr
import jax.tree_util as jtu
from beartype import beartype
from jaxtyping import Array, Float, PRNGKeyArray, PyTree, Real, jaxtyped

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

    **Raises:**

    `ValueError` for a recurrent network, whose action depends on the hidden state:
    use `predict_recurrent`.
    """
    if runner_state.train_state.network.initial_hidden() is not None:
        raise ValueError(
            "A recurrent policy's action depends on its hidden state: use "
            "`predict_recurrent` (or `PPO.predict(..., hidden=...)`)."
        )
    return _act(runner_state, obs, None, key, env, deterministic=deterministic)[0]


def _act(
    runner_state: PPORunnerState,
    obs: Array,
    hidden: PyTree[Array],
    key: PRNGKeyArray,
    env: AbstractEnvironment,
    *,
    deterministic: bool,
) -> tuple[Array, PyTree[Array]]:
    """Actions for `(*batch, *obs_shape)` observations after `(*batch, ...)` hidden
    states, and the hidden states after them."""
    network = runner_state.train_state.network
    batch_shape = _batch_shape(obs, env.observation_shape)
    flat = _normalized(runner_state, obs, env)
    flat_hidden = jtu.tree_map(
        lambda h: h.reshape(flat.shape[0], *h.shape[len(batch_shape) :]), hidden
    )

    def act(h, o, k):
        h, dist, _ = network.step(h, o)
        return (dist.mode() if deterministic else dist.sample(k)), h

    actions, new_hidden = jax.vmap(act)(flat_hidden, flat, jr.split(key, flat.shape[0]))
    actions = clip_action(actions, env.action_spec)
    new_hidden = jtu.tree_map(lambda h, n: n.reshape(h.shape), hidden, new_hidden)
    return actions.reshape(*batch_shape, *actions.shape[1:]), new_hidden


def _normalized(runner_state: PPORunnerState, obs: Array, env: AbstractEnvironment) -> Array:
    flat = obs.reshape(-1, *env.observation_shape).astype(runner_state.obs.dtype)
    normalize_obs = runner_state.hparams.normalize_observations
    return maybe_normalize(runner_state.normalizer_state, flat, normalize_obs)


@eqx.filter_jit
@jaxtyped(typechecker=beartype)
def predict_recurrent(
    runner_state: PPORunnerState,
    obs: Real[Array, "..."],
    hidden: Float[Array, "..."],
    key: PRNGKeyArray,
    env: AbstractEnvironment,
    *,
    deterministic: bool = True,
) -> tuple[Real[Array, "..."], Float[Array, "..."]]:
    """A recurrent policy's action for each observation, and the hidden state after it.

    **Arguments:**

    - `runner_state`: the trained state (its network must be recurrent).
    - `obs`: one observation or a batch `(*batch, *obs_shape)`.
    - `hidden`: the hidden state before `obs`, `(*batch, *hidden_shape)`: zeros at an
      episode's first observation (`network.initial_hidden()`), else what the previous
      call returned.
    - `key`, `env`, `deterministic`: as for `predict`.

    **Returns:**

    `(actions, hidden)`: actions as `predict` gives them, and the hidden states to pass
    with the next observations (reset them to zeros where an episode starts).
    """
    network = runner_state.train_state.network
    initial = network.initial_hidden()
    if initial is None:
        raise ValueError(
            f"predict_recurrent needs a recurrent network, got {type(network).__name__}."
        )
    batch_shape = _batch_shape(obs, env.observation_shape)
    if tuple(hidden.shape) != (*batch_shape, *initial.shape):
        raise ValueError(
            f"hidden has shape {tuple(hidden.shape)}; expected (*batch, *hidden_shape) = "
            f"{(*batch_shape, *initial.shape)}."
        )
    return _act(runner_state, obs, hidden, key, env, deterministic=deterministic)
