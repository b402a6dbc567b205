"""PPO's state and result types, with ARLBench's names and field order.

The types the reference API names stay NamedTuples (so `agent.train(*state)` unpacks);
`PPOTrainState` is an Equinox module holding the network and the optimizer state.
"""

import dataclasses
from typing import Any, NamedTuple

import equinox as eqx
import jax.numpy as jnp
import optax
from jaxtyping import Array, Bool, Float, Int, PRNGKeyArray, PyTree, Real

from ..configspaces import PPOHyperparams
from ..envs import NormalizerState
from ..networks import AbstractActorCritic
from ._flat import flatten_network


class PPOTrainState(eqx.Module):
    """The network (its array leaves are the parameters) and the optimizer state.

    `step` counts gradient updates. The optimizer is rebuilt from the traced
    hyperparameters at every update (`make_optimizer`), so it is not stored here; its
    state (Adam's moments) is over the network's trainable arrays flattened into one
    vector, in `jax.flatten_util.ravel_pytree` order (see `ppo/_flat.py`).
    """

    network: AbstractActorCritic
    opt_state: optax.OptState
    step: Int[Array, ""]

    @classmethod
    def create_with_opt_state(
        cls,
        *,
        network: AbstractActorCritic,
        tx: optax.GradientTransformation,
        opt_state: optax.OptState | None = None,
    ) -> "PPOTrainState":
        """A train state at step 0; `opt_state=None` initialises `tx` on the network.

        The optimizer state is over the flattened parameter vector (`flatten_network`).
        """
        if opt_state is None:
            opt_state = tx.init(flatten_network(network)[0])
        return cls(network=network, opt_state=opt_state, step=jnp.zeros((), jnp.int32))

    @property
    def params(self) -> PyTree[Array]:
        """The trainable arrays of the network (the network with everything else `None`)."""
        return eqx.filter(self.network, eqx.is_inexact_array)

    def replace(self, **updates: Any) -> "PPOTrainState":
        """A copy with the named fields replaced."""
        return dataclasses.replace(self, **updates)


class PPORunnerState(NamedTuple):
    """Everything a PPO run needs to continue; ARLBench's fields first, in their order.

    `global_step` counts environment transitions summed over all `n_envs` (ARLBench
    counts vectorised steps). `hparams` holds the continuous hyperparameters this state
    trains with, so a checkpoint or a population member carries its own.
    """

    rng: PRNGKeyArray
    train_state: PPOTrainState
    normalizer_state: NormalizerState
    env_state: PyTree
    obs: Float[Array, "n_envs *obs_shape"]
    global_step: Int[Array, ""]
    hparams: PPOHyperparams


class PPOState(NamedTuple):
    """PPO algorithm state: `(runner_state, buffer_state)`; PPO has no buffer (`None`)."""

    runner_state: PPORunnerState
    buffer_state: None = None


class Transition(NamedTuple):
    """One rollout step for all `n_envs`; ARLBench's fields first.

    `done = terminated | truncated`. `next_value` is `V` of the observation the step
    reached before any reset, used to bootstrap truncated steps.
    """

    done: Bool[Array, "*batch"]
    action: Real[Array, "*batch"]
    value: Float[Array, "*batch"]
    reward: Float[Array, "*batch"]
    log_prob: Float[Array, "*batch"]
    obs: Float[Array, "*batch"]
    info: dict[str, Any]
    terminated: Bool[Array, "*batch"]
    truncated: Bool[Array, "*batch"]
    next_value: Float[Array, "*batch"]


class PPOMetrics(NamedTuple):
    """Per-update training metrics (when `track_metrics`).

    `loss` is `(total, (value_loss, actor_loss, entropy))` per minibatch, as in ARLBench.
    `grads` is the global gradient norm per minibatch (ARLBench keeps every gradient,
    which is larger than the network times the number of minibatches).
    `advantages` are the GAE advantages of each rollout, `(n_steps, n_envs)`.
    """

    loss: tuple[Array, tuple[Array, Array, Array]]
    grads: Array
    advantages: Array


class PPOTrainingResult(NamedTuple):
    """What `train` returns besides the state.

    `eval_rewards`: `(n_eval_steps, n_eval_episodes)` episode returns, one evaluation after
    each chunk. `trajectories` / `metrics`: per chunk and update, when tracked, else `None`.
    """

    eval_rewards: Float[Array, "n_eval_steps n_eval_episodes"]
    trajectories: Transition | None
    metrics: PPOMetrics | None
