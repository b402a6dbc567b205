"""One PPO iteration: rollout, GAE, then epochs of minibatch gradient steps."""

import functools
from collections.abc import Callable
from typing import TypeVar, cast

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import jax.tree_util as jtu
import optax
from jaxtyping import Array, Bool, Float, Int

from .._sums import fixed_var
from .._third_party import third_party_numpy
from ..configspaces import PPOConfig, PPOHyperparams
from ..envs import AbstractEnvironment, update_normalizer
from ..networks import AbstractActorCritic, AbstractRecurrentActorCritic, kernels_of
from ._flat import flatten_network, flatten_opt_state
from ._gae import compute_gae
from ._loss import Batch, LossFn, ppo_loss
from ._optimizer import OptimizerFactory, global_norm, make_optimizer
from ._rollout import (
    Rollout,
    collect_recurrent_rollout,
    collect_rollout,
    episode_starts,
    maybe_normalize,
    rollout_values,
)
from ._shuffle import epoch_permutations
from ._state import PPOMetrics, PPORunnerState, PPOTrainState, Transition


T = TypeVar("T")


class FlatTrainState(eqx.Module):
    """The train state inside the update epochs: parameters and Adam moments as vectors.

    `update_step` flattens the network and its optimizer state once per update and
    rebuilds both afterwards (`ppo/_flat.py`).
    """

    params: Float[Array, " n_params"]
    opt_state: optax.OptState
    step: Int[Array, ""]


class StepStats(eqx.Module):
    """What one minibatch step reports: the losses and the gradient's norm and variance."""

    loss: tuple[Array, tuple[Array, Array, Array]]
    grad_norm: Float[Array, "*steps"]
    grad_var: Float[Array, "*steps"]


def update_minibatch(
    state: FlatTrainState,
    unflatten: Callable[[Array], AbstractActorCritic],
    minibatch: Batch,
    hparams: PPOHyperparams,
    *,
    loss: LossFn = ppo_loss,
    optimizer: OptimizerFactory = make_optimizer,
) -> tuple[FlatTrainState, StepStats]:
    """One gradient step of `optimizer(hparams)` on `loss` over one minibatch."""

    def objective(params: Array) -> tuple[Array, tuple[Array, Array, Array]]:
        return loss(unflatten(params), minibatch, hparams)

    (total, aux), grads = jax.value_and_grad(objective, has_aux=True)(state.params)
    with third_party_numpy():  # optax's Adam promotes its int32 step count
        updates, opt_state = optimizer(hparams).update(grads, state.opt_state, state.params)
    state = FlatTrainState(state.params + cast(Array, updates), opt_state, state.step + 1)
    return state, StepStats((total, aux), global_norm(grads), fixed_var(grads))


def _run_epoch(
    state: FlatTrainState,
    unflatten: Callable[[Array], AbstractActorCritic],
    batch: Batch,
    permutation: Int[Array, " n_used"],
    hparams: PPOHyperparams,
    *,
    minibatch_size: int,
    step: Callable[..., tuple[FlatTrainState, StepStats]],
) -> tuple[FlatTrainState, StepStats]:
    """One epoch: take the batch in `permutation`'s order, step on each minibatch in turn.

    `permutation` holds `n_minibatches * minibatch_size` distinct sample indices
    (`epoch_permutations`); the batch is gathered once in that order and reshaped into
    `(n_minibatches, minibatch_size)` rather than gathered per minibatch.
    """
    n_minibatches = permutation.shape[0] // minibatch_size
    minibatches = jtu.tree_map(
        lambda x: x[permutation].reshape(n_minibatches, minibatch_size, *x.shape[1:]), batch
    )
    return jax.lax.scan(lambda st, mb: step(st, unflatten, mb, hparams), state, minibatches)


def _run_epoch_slots(
    state: FlatTrainState,
    unflatten: Callable[[Array], AbstractActorCritic],
    batch: Batch,
    permutations: Int[Array, "epoch_slots n_used"],
    hparams: PPOHyperparams,
    *,
    minibatch_size: int,
    step: Callable[..., tuple[FlatTrainState, StepStats]],
) -> tuple[FlatTrainState, StepStats]:
    """The epochs of one update: the first `hparams.update_epochs` of the slots run.

    A slot past the run's epochs leaves the state as it is and reports NaN statistics.
    For one run the skip is a real branch; under a population's `vmap` the branch
    becomes a select, so a member with fewer epochs than its program's slots waits
    for the others (the work `plan_groups` weighs against a compilation).
    """

    def run(st: FlatTrainState, permutation: Array) -> tuple[FlatTrainState, StepStats]:
        return _run_epoch(
            st, unflatten, batch, permutation, hparams, minibatch_size=minibatch_size, step=step
        )

    def skip(st: FlatTrainState, permutation: Array) -> tuple[FlatTrainState, StepStats]:
        shapes = jax.eval_shape(run, st, permutation)[1]
        return st, jtu.tree_map(lambda s: jnp.full(s.shape, jnp.nan, s.dtype), shapes)

    def slot(st: FlatTrainState, inputs: tuple[Array, Array]) -> tuple[FlatTrainState, StepStats]:
        epoch, permutation = inputs
        return jax.lax.cond(epoch < hparams.update_epochs, run, skip, st, permutation)

    slots = jnp.arange(permutations.shape[0])
    return jax.lax.scan(slot, state, (slots, permutations))


def _flatten(x: Array) -> Array:
    return x.reshape(-1, *x.shape[2:])


def _env_major(x: Array) -> Array:
    return jnp.swapaxes(x, 0, 1)


def _training_batch(
    rollout: Rollout,
    obs: Float[Array, "n_steps n_envs *obs_shape"],
    value: Float[Array, "n_steps n_envs"],
    advantages: Float[Array, "n_steps n_envs"],
    targets: Float[Array, "n_steps n_envs"],
    hidden: Float[Array, "n_envs *hidden_shape"] | None,
) -> Batch:
    """The rollout as the update's `Batch`, with the observations the update trains on.

    Feed-forward: every transition along one axis. Recurrent (`hidden` given: the hidden
    states the rollout started from): one sequence per environment, with the steps where
    the hidden state restarted (after `episode_starts`; never at the first step, whose
    restart is already in `hidden`).
    """
    layout = _flatten if hidden is None else _env_major
    valid = rollout.step.valid
    starts = None
    if hidden is not None:
        ends = episode_starts(rollout.step)
        starts = _env_major(jnp.concatenate([jnp.zeros_like(ends[:1]), ends[:-1]]))
    return Batch(
        obs=layout(obs),
        action=layout(rollout.action),
        log_prob=layout(rollout.log_prob),
        value=layout(value),
        advantages=layout(advantages),
        targets=layout(targets),
        weight=None if valid is None else layout(valid.astype(jnp.float32)),
        hidden=hidden,
        starts=starts,
    )


def _select(pred: Bool[Array, ""], new: T, old: T) -> T:
    """`new` where `pred`, else `old`, leaf by leaf (non-array leaves from `new`)."""
    return jtu.tree_map(lambda a, b: jnp.where(pred, a, b) if eqx.is_array(a) else a, new, old)


def _all_finite(tree) -> Bool[Array, ""]:
    leaves = jtu.tree_leaves(eqx.filter(tree, eqx.is_inexact_array))
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in leaves]))


def update_step(
    runner_state: PPORunnerState,
    env: AbstractEnvironment,
    config: PPOConfig,
    *,
    track_metrics: bool,
    track_trajectories: bool,
    loss: LossFn = ppo_loss,
    optimizer: OptimizerFactory = make_optimizer,
) -> tuple[PPORunnerState, tuple[PPOMetrics | None, Transition | None]]:
    """One PPO iteration on `n_envs * n_steps` fresh transitions.

    Rollout with the current policy; values of the visited and of the reached
    observations in one critic pass; GAE; observation statistics updated (when
    `hparams.normalize_observations`); `hparams.update_epochs` epochs of minibatch steps
    (at most the program's `config.update_epochs` slots), each minibatch one step of
    `optimizer(hparams)` on `loss` (PPO's clipped objective and Adam by default; any
    function of `(network, batch, hparams)` returning `(total, (value_loss,
    actor_loss, entropy))`, and any factory whose state `init` made with it).

    A recurrent network (`AbstractRecurrentActorCritic`) carries each environment's
    hidden state through the rollout (`runner_state.hidden`, restarted from zeros where
    an episode begins) and trains on whole sequences: each minibatch holds
    `config.sequences_per_minibatch(n_envs)` environments' `n_steps` steps, re-run from
    the hidden states the rollout started from.

    Divergence guard: if any loss, new parameter, optimizer moment or observation
    statistic is not finite, or a loss or gradient norm passes `hparams.divergence_limit`
    (a finite blow-up), the update is thrown away (network, optimizer state and
    observation statistics stay as they were) and `runner_state.diverged` is set. A
    diverged state keeps its last finite policy, statistics included, and never trains
    again (the environments still step); the flag is per run, so each member of a
    population has its own.
    """
    rng, rollout_key, epochs_key = jr.split(runner_state.rng, 3)
    train_state, hparams = runner_state.train_state, runner_state.hparams
    network, normalizer = train_state.network, runner_state.normalizer_state
    norm_obs = hparams.normalize_observations

    recurrent = isinstance(network, AbstractRecurrentActorCritic)
    if recurrent:
        if runner_state.hidden is None:
            raise ValueError(
                "A recurrent network needs the runner state's hidden states "
                "(`runner_state.hidden`, made by `init`)."
            )
        (env_state, obs, hidden), rollout = collect_recurrent_rollout(
            network, normalizer, env, runner_state.env_state, runner_state.obs,
            runner_state.hidden, rollout_key, config.n_steps, normalize_observations=norm_obs,
        )  # fmt: skip
        n_units = env.n_envs  # minibatches of whole sequences
        minibatch_size = config.sequences_per_minibatch(env.n_envs)
        n_minibatches = config.n_sequence_minibatches(env.n_envs)
    else:
        (env_state, obs), rollout = collect_rollout(
            network, normalizer, env, runner_state.env_state, runner_state.obs,
            rollout_key, config.n_steps, normalize_observations=norm_obs,
        )  # fmt: skip
        hidden = None
        n_units = config.batch_size(env.n_envs)  # minibatches of transitions
        minibatch_size = config.effective_minibatch_size(env.n_envs)
        n_minibatches = config.n_minibatches(env.n_envs)

    value, next_value = rollout_values(
        network, normalizer, rollout, normalize_observations=norm_obs
    )
    advantages, targets = compute_gae(
        rollout.step.reward, value, next_value, rollout.step.terminated,
        rollout.step.truncated, hparams.gamma, hparams.gae_lambda,
    )  # fmt: skip

    # The statistics the update trains on; kept only with the update (below).
    new_normalizer = _select(norm_obs, update_normalizer(normalizer, rollout.obs), normalizer)
    batch = _training_batch(
        rollout, maybe_normalize(new_normalizer, rollout.obs, norm_obs), value, advantages,
        targets, runner_state.hidden if recurrent else None,
    )  # fmt: skip
    permutations = epoch_permutations(
        epochs_key, config.update_epochs, n_units, n_minibatches * minibatch_size,
        kernels=kernels_of(network),
    )  # fmt: skip
    flat_params, unflatten = flatten_network(train_state.network)
    flat_opt_state, unflatten_opt_state = flatten_opt_state(train_state.opt_state, network)
    state = FlatTrainState(flat_params, flat_opt_state, train_state.step)
    step = functools.partial(update_minibatch, loss=loss, optimizer=optimizer)
    state, stats = _run_epoch_slots(
        state, unflatten, batch, permutations, hparams, minibatch_size=minibatch_size, step=step
    )

    # Skipped epoch slots report NaN on purpose; only the epochs that ran are checked.
    # Everything the update produced is checked: the losses, the parameters and the
    # optimizer state (with `max_grad_norm = 0` a huge finite gradient can make Adam's
    # second moment `inf`, which turns that parameter's updates into exact zeros).
    ran = jnp.arange(config.update_epochs) < hparams.update_epochs
    losses = jtu.tree_map(lambda x: jnp.where(ran[:, None], x, 0.0), stats.loss)
    finite = _all_finite(losses) & _all_finite(state) & _all_finite(new_normalizer)
    # A finite blow-up (a loss or gradient norm past `divergence_limit`) is divergence too.
    grad_norm = jnp.where(ran[:, None], stats.grad_norm, 0.0)
    sizes = [jnp.abs(x).max() for x in jtu.tree_leaves(losses)] + [grad_norm.max()]
    healthy = finite & (jnp.stack(sizes).max() <= hparams.divergence_limit)
    keep = healthy & ~runner_state.diverged
    new_train_state = PPOTrainState(
        unflatten(state.params), unflatten_opt_state(state.opt_state), state.step
    )
    # A dropped update leaves everything the policy depends on as it was: the network,
    # the optimizer state and the observation statistics.
    train_state = _select(keep, new_train_state, train_state)

    runner_state = PPORunnerState(
        rng=rng,
        train_state=train_state,
        normalizer_state=_select(keep, new_normalizer, normalizer),
        env_state=env_state,
        obs=obs,
        global_step=runner_state.global_step + config.batch_size(env.n_envs),
        hparams=hparams,
        diverged=runner_state.diverged | ~healthy,
        hidden=hidden,
    )
    metrics = None
    if track_metrics:
        metrics = PPOMetrics(stats.loss, stats.grad_norm, advantages, stats.grad_var)
    trajectories = None
    if track_trajectories:
        trajectories = Transition(
            done=rollout.step.terminated | rollout.step.truncated,
            action=rollout.action,
            value=value,
            reward=rollout.step.reward,
            log_prob=rollout.log_prob,
            obs=rollout.obs,
            info=rollout.step.info,
            terminated=rollout.step.terminated,
            truncated=rollout.step.truncated,
            next_value=next_value,
        )
    return runner_state, (metrics, trajectories)


def updates_per_chunk(n_total_timesteps: int, n_envs: int, n_steps: int, n_eval_steps: int) -> int:
    """ARLBench's budget: `ceil(T / (n_envs * n_steps * n_eval_steps))` updates per chunk."""
    per_chunk = n_envs * n_steps * n_eval_steps
    return -(-n_total_timesteps // per_chunk)
