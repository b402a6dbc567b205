"""What eqxppo trains, written to loggers: a single run, a population (one run per
member), an HPO study (one run per trial)."""

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..agent import PPO
from ..autorl import Trial
from ..configspaces import hpo_config_to_dict
from ..population import Population, PopulationState
from ..ppo import PPOTrainingResult
from ._logger import AbstractLogger, AbstractRun
from ._rows import TAGS, evaluation_rows, evaluation_steps, member_result


def tagged(row: Mapping[str, int | float]) -> dict[str, float]:
    """A row's scalars under their logger tags (`TAGS`); `step` and unknown columns are
    left out."""
    return {TAGS[k]: float(v) for k, v in row.items() if k in TAGS}


def log_rows(run: AbstractRun, rows: Sequence[Mapping[str, int | float]]) -> None:
    """Each row (from `evaluation_rows`, or the command line's `metrics.csv`) at its step."""
    for row in rows:
        run.log(int(row["step"]), tagged(row))


def final_metrics(rows: Sequence[Mapping[str, int | float]]) -> dict[str, float]:
    """What a run's hyperparameters are compared on: its last evaluation."""
    return tagged(rows[-1]) if rows else {}


def log_run(
    loggers: Sequence[AbstractLogger],
    name: str,
    rows: Sequence[Mapping[str, int | float]],
    *,
    config: Mapping[str, Any],
    group: str | None = None,
) -> None:
    """`rows` as one finished run called `name` in each logger, with `config` as its
    hyperparameters and its last row as its final metrics."""
    for logger in loggers:
        run = logger.start_run(name, config=config, group=group)
        log_rows(run, rows)
        run.finish(final_metrics(rows))


def log_training(
    loggers: Sequence[AbstractLogger],
    agent: PPO,
    result: PPOTrainingResult,
    *,
    start_step: int,
    end_step: int,
    name: str = "train",
    group: str | None = None,
    extra_config: Mapping[str, Any] | None = None,
) -> None:
    """Write one `agent.train` call's evaluations (and losses, with `track_metrics`) as a
    finished run in each logger.

    `start_step`/`end_step`: the global steps before and after the call
    (`state.runner_state.global_step`), which place its evaluations. The run's config is
    the agent's hyperparameters (HPO and NAS) and `extra_config` (a seed, say).
    """
    rows = evaluation_rows(result, steps=evaluation_steps(
        start_step=start_step, end_step=end_step, n_evaluations=len(result.eval_rewards)
    ))  # fmt: skip
    config = {**hpo_config_to_dict(agent.config, agent.hparams), **agent.nas_config,
              **(extra_config or {})}  # fmt: skip
    log_run(loggers, name, rows, config=config, group=group)


def member_name(config: int, seed: int) -> str:
    """A population member's run: its configuration's index and its seed."""
    return f"config_{config}_seed_{seed}"


def log_population(
    loggers: Sequence[AbstractLogger],
    population: Population,
    state: PopulationState,
    result: PPOTrainingResult,
    *,
    start_step: int,
    end_step: int,
    group: str | None = None,
) -> None:
    """Write one `population.train` call as one finished run per member in each logger:
    `config_<i>_seed_<seed>`, configuration `i` of the population, with the member's
    hyperparameters (as `state` holds them) and seed as its config. `start_step` /
    `end_step`: the members' global step before and after the call (the same for all).
    """
    n_evaluations = np.asarray(result.eval_rewards).shape[1]
    steps = evaluation_steps(start_step=start_step, end_step=end_step,
                             n_evaluations=n_evaluations)  # fmt: skip
    diverged = population.diverged(state)
    n_seeds = len(population.seeds)
    for m in range(population.n_members):
        rows = evaluation_rows(member_result(result, m), steps=steps)
        rows[-1]["diverged"] = int(diverged[m])
        seed = population.member_seeds[m]
        config = {**population.member_hpo_config(m, state), **population.spec.nas_config,
                  "seed": seed}  # fmt: skip
        log_run(loggers, member_name(m // n_seeds, seed), rows, config=config, group=group)


def trial_curve(trial: Trial) -> list[tuple[int, float]]:
    """A trial's evaluations as `(global step, mean return over seeds)`, one per report
    (a log written before the steps were recorded spreads them evenly over the budget)."""
    steps = trial.report_steps or [
        round(trial.budget * (r + 1) / len(trial.reports)) for r in range(len(trial.reports))
    ]
    return list(zip(steps, trial.reports))


def log_trials(
    loggers: Sequence[AbstractLogger], trials: Sequence[Trial], *, group: str | None = None
) -> None:
    """Write HPO trials (`eqxppo.autorl.tune`'s) as one finished run each,
    `trial_<number>`: its configuration, seeds, status, asked budget and the steps its
    result stands at as config; its learning curve (`eval/return_mean` at each report's
    step) and its objective (`eval/objective`, the mean final return over seeds, at
    the step its result stands at). A failed or diverged trial has no objective; a
    pruned one's is the report it was pruned at."""
    for trial in trials:
        steps = trial.budget if trial.steps is None else trial.steps
        config = {**trial.config, "seeds": ",".join(map(str, trial.seeds)),
                  "status": trial.status, "budget": trial.budget, "steps": steps}  # fmt: skip
        scalars = {} if trial.objective is None else {"eval/objective": trial.objective}
        curve = trial_curve(trial)
        for logger in loggers:
            run = logger.start_run(f"trial_{trial.number:04d}", config=config, group=group)
            for step, value in curve:
                run.log(step, {TAGS["mean_return"]: value})
            if scalars:
                run.log(steps, scalars)
            run.finish({**scalars, "time/seconds": trial.seconds})
