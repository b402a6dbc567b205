"""Train PPO for a budget of environment steps, evaluating after each chunk."""

import equinox as eqx
import jax.random as jr
from beartype import beartype
from jaxtyping import jaxtyped

from .._counts import Count, check_budget
from ..configspaces import PPOConfig
from ..envs import AbstractEnvironment
from ._evaluate import evaluate
from ._loss import LossFn, ppo_loss
from ._optimizer import OptimizerFactory, make_optimizer
from ._scan import filter_scan
from ._state import PPORunnerState, PPOTrainingResult
from ._update import update_step, updates_per_chunk


def check_runner_state(runner_state: PPORunnerState, env: AbstractEnvironment) -> None:
    """Raise `ValueError` if the state's observations do not fit `env`."""
    expected = (env.n_envs, *env.observation_shape)
    if tuple(runner_state.obs.shape) != expected:
        raise ValueError(
            f"runner_state.obs has shape {tuple(runner_state.obs.shape)}, but the environment "
            f"gives (n_envs, *obs_shape) = {expected}; was the state made for another "
            "environment or n_envs?"
        )


@eqx.filter_jit
@jaxtyped(typechecker=beartype)
def train(
    runner_state: PPORunnerState,
    env: AbstractEnvironment,
    config: PPOConfig,
    *,
    n_total_timesteps: Count = 1_000_000,
    n_eval_steps: Count = 10,
    n_eval_episodes: Count = 10,
    eval_env: AbstractEnvironment | None = None,
    deterministic_eval: bool = True,
    track_metrics: bool = False,
    track_trajectories: bool = False,
    loss: LossFn = ppo_loss,
    optimizer: OptimizerFactory = make_optimizer,
) -> tuple[PPORunnerState, PPOTrainingResult]:
    """Train for at least `n_total_timesteps` environment steps in `n_eval_steps` chunks.

    Each chunk runs `ceil(n_total_timesteps / (n_envs * n_steps * n_eval_steps))` PPO
    iterations (ARLBench's rounding), then evaluates `n_eval_episodes` episodes on
    `eval_env` (default: `env`) with a fresh key split from the run's key. The continuous
    hyperparameters are `runner_state.hparams` (traced: new values never recompile).
    `loss` and `optimizer` swap PPO's objective and its optimizer (`update_step`); the
    optimizer state must be the one `init(..., optimizer=optimizer)` made.

    **Returns:**

    `(runner_state, PPOTrainingResult)`; `eval_rewards` has shape
    `(n_eval_steps, n_eval_episodes)`; metrics and trajectories have leading axes
    `(n_eval_steps, updates_per_chunk)` when tracked.
    """
    n_total_timesteps, n_eval_steps, n_eval_episodes = check_budget(
        n_total_timesteps, n_eval_steps, n_eval_episodes
    )
    check_runner_state(runner_state, env)
    eval_env = env if eval_env is None else eval_env
    n_updates = updates_per_chunk(n_total_timesteps, env.n_envs, config.n_steps, n_eval_steps)

    def chunk(runner_state: PPORunnerState, _):
        runner_state, (metrics, trajectories) = filter_scan(
            lambda rs, _: update_step(
                rs,
                env,
                config,
                track_metrics=track_metrics,
                track_trajectories=track_trajectories,
                loss=loss,
                optimizer=optimizer,
            ),  # fmt: skip
            runner_state,
            None,
            n_updates,
        )
        rng, eval_key = jr.split(runner_state.rng)
        eval_rewards = evaluate(
            runner_state.train_state.network,
            runner_state.normalizer_state,
            eval_env,
            eval_key,
            n_eval_episodes,
            deterministic=deterministic_eval,
            normalize_observations=runner_state.hparams.normalize_observations,
        )
        result = PPOTrainingResult(eval_rewards, trajectories, metrics)
        return runner_state._replace(rng=rng), result

    return filter_scan(chunk, runner_state, None, n_eval_steps)
