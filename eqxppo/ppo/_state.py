"""PPO's state and result types, with ARLBench's names and field order.

The types the reference API names stay NamedTuples (so `agent.train(*state)` unpacks);
`PPOTrainState` is an Equinox module holding the network and the optimizer state.
"""

import dataclasses
from typing import Any, NamedTuple

import equinox as eqx
import jax.numpy as jnp
import jax.tree_util as jtu
import optax
from jaxtyping import Array, Bool, Float, Int, PRNGKeyArray, PyTree, Real

from ..configspaces import PPOHyperparams
from ..envs import NormalizerState
from ..networks import AbstractActorCritic


def tree_layout(tree: Any) -> tuple[Any, list[tuple[tuple[int, ...], Any]]]:
    """The tree structure and each leaf's shape and dtype (leaves may be arrays or
    `jax.ShapeDtypeStruct`s): what must match for one state to stand in for another."""
    leaves, treedef = jtu.tree_flatten(tree)
    return treedef, [(tuple(x.shape), x.dtype) for x in leaves]


class PPOTrainState(eqx.Module):
    """The network (its array leaves are the parameters) and the optimizer state.

    `step` counts gradient updates. The optimizer is rebuilt from the traced
    hyperparameters at every update (`make_optimizer`), so it is not stored here; its
    state (Adam's moments) is an optax state over `params`, the network's trainable
    arrays, as `optax.adam(...).init(params)` would make it.
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
        """A train state at step 0; `opt_state=None` initialises `tx` on the parameters.

        A given `opt_state` must have the structure and shapes `tx.init(params)` has.
        """
        fresh = eqx.filter_eval_shape(tx.init, eqx.filter(network, eqx.is_inexact_array))
        if opt_state is None:
            opt_state = tx.init(eqx.filter(network, eqx.is_inexact_array))
        elif tree_layout(opt_state) != tree_layout(fresh):
            raise ValueError(
                "opt_state does not fit this network and optimizer: expected the structure "
                f"of `tx.init(train_state.params)` ({jtu.tree_structure(fresh)}), got "
                f"{jtu.tree_structure(opt_state)}; pass an optimizer state of "
                "`PPOTrainState.params` (e.g. from `get_checkpoint_factory`)."
            )
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
    trains with, so a checkpoint or a population member carries its own. `diverged` is
    set once an update produced a non-finite loss or parameter; the network then stays
    at its last finite value (see `update_step`). `hidden` is the network's hidden state
    per environment before `obs` (`(n_envs, *network.hidden_shape)` for a recurrent
    network, its initial state where an episode begins); `None` for a network without
    memory.
    """

    rng: PRNGKeyArray
    train_state: PPOTrainState
    normalizer_state: NormalizerState
    env_state: PyTree
    obs: Float[Array, "n_envs *obs_shape"]
    global_step: Int[Array, ""]
    hparams: PPOHyperparams
    diverged: Bool[Array, ""]
    hidden: PyTree[Array] = None

    # How the fields divide between what a run has learned (the policy, everything it
    # depends on, and the flag that says whether it still learns) and what is the run's
    # own (its randomness, its environments with the hidden states of their episodes so
    # far, and its step count). PBT copies the learned fields from one member to another
    # and nothing else; a new field must be put on one side (`tests/test_population.py`
    # checks that both cover every field). Class attributes, not fields.
    LEARNED_FIELDS = ("train_state", "normalizer_state", "hparams", "diverged")
    OWN_FIELDS = ("rng", "env_state", "obs", "global_step", "hidden")


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

    Per minibatch, with axes `(..., update_epochs, n_minibatches)` after the leading
    `(n_eval_steps, updates_per_chunk)` of `train` (`update_epochs` the program's epoch
    slots; a slot the run did not take, in a population member with fewer epochs than
    its group, holds NaN; so do the slots a population's member lacks beside the
    members of larger groups: more updates per chunk, epochs, minibatches or steps):

    - `loss`: `(total, (value_loss, actor_loss, entropy))`, as in ARLBench.
    - `grad_norm`: the global norm of the gradient, in ARLBench's second field (which
      there keeps every gradient: the network's size times the number of minibatches);
      `grads` is the same array under ARLBench's name.
    - `grad_var`: the variance of the gradient's entries.

    `advantages` are the GAE advantages of each rollout, `(n_steps, n_envs)` per update.
    `grad_info()` gives what ARLBench's `grad_info` state feature reports.
    """

    loss: tuple[Array, tuple[Array, Array, Array]]
    grad_norm: Array
    advantages: Array
    grad_var: Array

    @property
    def grads(self) -> Array:
        """ARLBench's name for the second field: here the gradient's global norm."""
        return self.grad_norm

    def grad_info(self) -> tuple[Array, Array]:
        """`(grad_norm, grad_var)` per update: the means over the epochs it took and
        their minibatches."""
        mean = lambda x: jnp.nanmean(x, axis=(-2, -1))
        return mean(self.grad_norm), mean(self.grad_var)


class PPOTrainingResult(NamedTuple):
    """What `train` returns besides the state.

    `eval_rewards`: `(n_eval_steps, n_eval_episodes)` episode returns, one evaluation after
    each chunk. `trajectories` / `metrics`: per chunk and update, when tracked, else `None`.
    """

    eval_rewards: Float[Array, "n_eval_steps n_eval_episodes"]
    trajectories: Transition | None
    metrics: PPOMetrics | None
