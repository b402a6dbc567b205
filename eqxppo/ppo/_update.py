"""One PPO iteration: rollout, GAE, then epochs of minibatch gradient steps."""

import functools
from collections.abc import Callable
from typing import TypeVar

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import jax.tree_util as jtu
import optax
from jax.flatten_util import ravel_pytree
from jaxtyping import Array, Bool, Float, Int, PyTree

from .._sums import fixed_var
from .._third_party import third_party_numpy
from ..configspaces import PPOConfig, PPOHyperparams
from ..envs import AbstractEnvironment, update_normalizer
from ..networks import AbstractActorCritic, kernels_of
from ._gae import compute_gae
from ._loss import Batch, LossFn, ppo_loss
from ._optimizer import Elementwise, OptimizerFactory, global_norm, make_optimizer
from ._params import EpochState, params_view
from ._rollout import Rollout, collect_rollout, episode_starts, maybe_normalize, rollout_values
from ._shuffle import epoch_permutations
from ._state import PPOMetrics, PPORunnerState, Transition


T = TypeVar("T")


class StepStats(eqx.Module):
    """What one minibatch step reports: the loss with its extras, and the gradient's
    norm and variance."""

    loss: tuple[Array, PyTree[Array]]
    grad_norm: Float[Array, "*steps"]
    grad_var: Float[Array, "*steps"]


def update_minibatch(
    state: EpochState,
    network: Callable[[PyTree[Array]], AbstractActorCritic],
    minibatch: Batch,
    hparams: PPOHyperparams,
    *,
    loss: LossFn = ppo_loss,
    optimizer: OptimizerFactory = make_optimizer,
) -> tuple[EpochState, StepStats]:
    """One gradient step of `optimizer(hparams)` on `loss` over one minibatch;
    `network(params)` is the network with `state.params` (a tree or a vector)."""

    def objective(params: PyTree[Array]) -> tuple[Array, PyTree[Array]]:
        return loss(network(params), minibatch, hparams)

    (total, extras), grads = jax.value_and_grad(objective, has_aux=True)(state.params)
    with third_party_numpy():  # optax's Adam promotes its int32 step count
        updates, opt_state = optimizer(hparams).update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    stats = StepStats((total, extras), global_norm(grads), fixed_var(ravel_pytree(grads)[0]))
    return EpochState(params, opt_state, state.step + 1), stats


def _run_epoch(
    state: EpochState,
    network: Callable[[PyTree[Array]], AbstractActorCritic],
    batch: Batch,
    permutation: Int[Array, " n_used"],
    hparams: PPOHyperparams,
    *,
    minibatch_size: int,
    step: Callable[..., tuple[EpochState, StepStats]],
) -> tuple[EpochState, StepStats]:
    """One epoch: take the batch in `permutation`'s order, step on each minibatch in turn.

    `permutation` holds `n_minibatches * minibatch_size` distinct sample indices
    (`epoch_permutations`); the batch is gathered once in that order and reshaped into
    `(n_minibatches, minibatch_size)` rather than gathered per minibatch.
    """
    n_minibatches = permutation.shape[0] // minibatch_size
    minibatches = jtu.tree_map(
        lambda x: x[permutation].reshape(n_minibatches, minibatch_size, *x.shape[1:]), batch
    )
    return jax.lax.scan(lambda st, mb: step(st, network, mb, hparams), state, minibatches)


def _run_epoch_slots(
    state: EpochState,
    network: Callable[[PyTree[Array]], AbstractActorCritic],
    batch: Batch,
    permutations: Int[Array, "epoch_slots n_used"],
    hparams: PPOHyperparams,
    *,
    minibatch_size: int,
    step: Callable[..., tuple[EpochState, StepStats]],
) -> tuple[EpochState, StepStats]:
    """The epochs of one update: the first `hparams.update_epochs` of the slots run.

    A slot past the run's epochs leaves the state as it is and reports NaN statistics.
    For one run the skip is a real branch; under a population's `vmap` the branch
    becomes a select, so a member with fewer epochs than its program's slots waits
    for the others (the work `plan_groups` weighs against a compilation).
    """

    def run(st: EpochState, permutation: Array) -> tuple[EpochState, StepStats]:
        return _run_epoch(
            st, network, batch, permutation, hparams, minibatch_size=minibatch_size, step=step
        )

    def skip(st: EpochState, permutation: Array) -> tuple[EpochState, StepStats]:
        shapes = jax.eval_shape(run, st, permutation)[1]
        return st, jtu.tree_map(lambda s: jnp.full(s.shape, jnp.nan, s.dtype), shapes)

    def slot(st: EpochState, inputs: tuple[Array, Array]) -> tuple[EpochState, StepStats]:
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
    *,
    sequences: bool,
) -> Batch:
    """The rollout as the update's `Batch`, with the observations the update trains on.

    Without memory: every transition along one axis. With memory (`sequences`): one
    sequence per environment, from the hidden state the rollout started it from, with
    the steps where the hidden state restarted (after `episode_starts`; never at the
    first step, whose restart is already in that hidden state).
    """
    layout = _env_major if sequences else _flatten
    valid = rollout.step.valid
    hidden = starts = None
    if sequences:
        ends = episode_starts(rollout.step)
        starts = _env_major(jnp.concatenate([jnp.zeros_like(ends[:1]), ends[:-1]]))
        hidden = jtu.tree_map(lambda h: h[0], rollout.hidden)
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


def check_hidden(network: AbstractActorCritic, hidden: PyTree[Array]) -> None:
    """Raise `ValueError` unless `hidden` has the structure of the network's hidden
    state (`None` for a network without memory; `init` makes it)."""
    expected = jtu.tree_structure(network.initial_hidden())
    if jtu.tree_structure(hidden) != expected:
        raise ValueError(
            f"runner_state.hidden has the structure {jtu.tree_structure(hidden)}, but "
            f"{type(network).__name__} carries {expected} per environment; make the state "
            "with `init` for this network."
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
    function of `(network, batch, hparams)` returning `(total, extras)` with any
    pytree of extras, and any factory whose state `init` made with it).

    An agent with memory (a network whose `initial_hidden()` has leaves: a recurrent
    one) carries each environment's hidden state through the rollout
    (`runner_state.hidden`, restarted where an episode begins) and trains on whole
    sequences: each minibatch holds the `n_steps` steps of
    `config.minibatches(n_envs, sequences=True)`'s environments, re-run from the hidden
    states the rollout started from. Without memory, minibatches hold transitions.

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

    check_hidden(network, runner_state.hidden)
    (env_state, obs, hidden), rollout = collect_rollout(
        network, normalizer, env, runner_state.env_state, runner_state.obs,
        runner_state.hidden, rollout_key, config.n_steps, normalize_observations=norm_obs,
    )  # fmt: skip
    value, next_value = rollout_values(
        network, normalizer, rollout, normalize_observations=norm_obs
    )
    advantages, targets = compute_gae(
        rollout.step.reward, value, next_value, rollout.step.terminated,
        rollout.step.truncated, hparams.gamma, hparams.gae_lambda,
    )  # fmt: skip

    # The statistics the update trains on; kept only with the update (below).
    new_normalizer = _select(norm_obs, update_normalizer(normalizer, rollout.obs), normalizer)
    sequences = bool(jtu.tree_leaves(network.initial_hidden()))  # a network with memory
    batch = _training_batch(
        rollout, maybe_normalize(new_normalizer, rollout.obs, norm_obs), value, advantages,
        targets, sequences=sequences,
    )  # fmt: skip
    n_units, per_minibatch, n_minibatches = config.minibatches(env.n_envs, sequences=sequences)
    permutations = epoch_permutations(
        epochs_key, config.update_epochs, n_units, n_minibatches * per_minibatch,
        kernels=kernels_of(network),
    )  # fmt: skip
    state, view = params_view(train_state, vector=isinstance(optimizer, Elementwise))
    step = functools.partial(update_minibatch, loss=loss, optimizer=optimizer)
    state, stats = _run_epoch_slots(
        state, view.network, batch, permutations, hparams, minibatch_size=per_minibatch,
        step=step,
    )  # fmt: skip

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
    new_train_state = view.train_state(state)
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
