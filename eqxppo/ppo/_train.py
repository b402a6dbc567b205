"""Train PPO for a budget of environment steps, evaluating after each chunk."""

import math
from typing import Any, TypeAlias

import equinox as eqx
import jax.random as jr
import numpy as np
from beartype import beartype
from jaxtyping import jaxtyped

from ..configspaces import PPOConfig
from ..envs import AbstractEnvironment
from ._evaluate import evaluate
from ._scan import filter_scan
from ._state import PPORunnerState, PPOTrainingResult
from ._update import update_step, updates_per_chunk


# A count as ARLBench's configs write it: an int, a NumPy integer, or an integral float (1e5).
Count: TypeAlias = int | float | np.integer | np.floating


def as_count(name: str, value: Any, low: int = 0) -> int:
    """`value` as an int >= `low`: ints, NumPy integers and integral floats (`1e5`) pass.

    **Raises:**

    `TypeError` for a bool or a non-number; `ValueError` for a fractional or non-finite
    float (`1.5`), or a count below `low`. The message names `name`.
    """
    if isinstance(value, bool | np.bool_) or not isinstance(
        value, int | float | np.integer | np.floating
    ):
        raise TypeError(f"`{name}` must be an integer, got {value!r} ({type(value).__name__}).")
    if isinstance(value, float | np.floating):
        if not math.isfinite(value) or not float(value).is_integer():
            raise ValueError(f"`{name}` must be a whole number, got {value!r}.")
    count = int(value)
    if count < low:
        raise ValueError(f"`{name}` must be >= {low}, got {value!r}.")
    return count


def check_budget(
    n_total_timesteps: Any, n_eval_steps: Any, n_eval_episodes: Any
) -> tuple[int, int, int]:
    """The budget as ints (`as_count`); raises for a budget that makes no sense."""
    return (
        as_count("n_total_timesteps", n_total_timesteps, 0),
        as_count("n_eval_steps", n_eval_steps, 1),
        as_count("n_eval_episodes", n_eval_episodes, 1),
    )


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
) -> tuple[PPORunnerState, PPOTrainingResult]:
    """Train for at least `n_total_timesteps` environment steps in `n_eval_steps` chunks.

    Each chunk runs `ceil(n_total_timesteps / (n_envs * n_steps * n_eval_steps))` PPO
    iterations (ARLBench's rounding), then evaluates `n_eval_episodes` episodes on
    `eval_env` (default: `env`) with a fresh key split from the run's key. The continuous
    hyperparameters are `runner_state.hparams` (traced: new values never recompile).

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
                rs, env, config, track_metrics=track_metrics, track_trajectories=track_trajectories
            ),
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
