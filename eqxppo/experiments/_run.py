"""Running what an ARLBench tree asks for, writing what ARLBench's users read beside
eqxppo's own files.

A job's folder gets ARLBench's `performance.csv` (the objective), `job.log` (what it
trained and the objectives it returned) and `done.txt` (a finished job, written last),
and eqxppo's `config.yaml` (the composed tree, resolved),
`metrics.csv` (one row per evaluation: returns and losses) and `checkpoint.eqx`.
Running the tree again reads a finished job's objective back, as `run_arlbench.py`
does, but only when its `config.yaml` records the same resolved tree: ARLBench's
folders do not depend on the hyperparameters, so a rerun with other settings would
otherwise report the old result. It raises `JobMismatch` instead, naming the keys that
differ (choose another `hydra.run.dir`, or delete the folder to retrain). A job's folder
is locked (`eqxppo._lock`) while it trains.
A multirun's jobs that differ only in `autorl.seed`, on a JAX-native framework, train as
one population (one compiled program, the seeds side by side); member `seed` starts from
`fold_in(key(0), seed)` exactly as the job alone would. A study's folder gets
`eqxppo tune`'s files and Hypersweeper's `runhistory.csv` and `incumbent.json`.
"""

import ast
import contextlib
import datetime
import functools
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax
import jax.random as jr
import numpy as np

from .._counts import budget_or_defaults
from .._csv import write_csv
from .._lock import folder_lock
from .._settings import as_recorded, differences
from ..agent import PPO, save
from ..autorl import Trial, agent_options, incumbent, make_envs, pbt, read_trials, tune
from ..configspaces import HPO_KEYS, parse_search_space
from ..population import Population
from ..ppo import PPOTrainingResult
from ..tracking import (
    AbstractLogger,
    evaluation_rows,
    evaluation_steps,
    log_run,
    log_trials,
    member_result,
)
from ._launch import TreeLauncher
from ._plan import Job, Study


class JobMismatch(ValueError):
    """A job's folder holds a finished job of another configuration."""


def _finished(job: Job) -> bool:
    """Whether `job.out` holds this very job, finished; `JobMismatch` if it holds a
    finished job of another configuration (or one whose configuration is unknown)."""
    import yaml

    if not (job.out / "done.txt").exists() or not (job.out / "performance.csv").exists():
        return False
    recorded_file = job.out / "config.yaml"
    if not recorded_file.exists():
        raise JobMismatch(
            f"{str(job.out)!r} holds a finished job without the config.yaml that says how it "
            "was configured: its result cannot be trusted for this job. Choose another "
            "hydra.run.dir, or delete the folder to retrain."
        )
    try:
        recorded = yaml.safe_load(recorded_file.read_text()) or {}
    except yaml.YAMLError as error:
        raise JobMismatch(f"{str(recorded_file)!r} is unreadable ({error}).") from None
    recorded.pop("overrides", None)
    differ = differences(job.config, as_recorded(recorded), held_by="the finished job")
    if differ:
        raise JobMismatch(
            f"{str(job.out)!r} holds a finished job of another configuration: "
            f"{'; '.join(differ)}. Choose another hydra.run.dir (or --out), or delete the "
            "folder to retrain."
        )
    return True


def _objectives(returns: np.ndarray, job: Job) -> dict[str, float]:
    """ARLBench's objectives of the last evaluation (`optimize_objectives="lower"`
    negates `reward_mean`; `"upper"` negates `reward_std`)."""
    upper = job.autorl["optimize_objectives"] == "upper"
    values = {"reward_mean": float(returns.mean()) * (1 if upper else -1),
              "reward_std": float(returns.std()) * (-1 if upper else 1)}  # fmt: skip
    return {name: values[name] for name in job.autorl["objectives"]}


def _job_log(job: Job, message: str, *, start: bool = False) -> None:
    """A line of the job's `job.log` as `run_arlbench.py` writes it (`%(asctime)s
    %(message)s`, the file started afresh with the job)."""
    job.out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y-%m-%d %H:%M:%S,%f")[:-3]
    with open(job.out / "job.log", "w" if start else "a") as f:
        f.write(f"{stamp} {message}\n")


def _start_job(job: Job, how: str) -> None:
    autorl = job.autorl
    _job_log(job, f"Training PPO on {autorl['env_framework']} {autorl['env_name']} for "
                  f"{autorl['n_total_timesteps']} steps, seed {autorl['seed']} ({how}); "
                  f"overrides: {' '.join(job.overrides) or 'none'}", start=True)  # fmt: skip


def _finish_job(
    job: Job, agent: PPO, state: Any, result: PPOTrainingResult, loggers: Sequence[AbstractLogger]
) -> float:
    import yaml

    end = int(state.runner_state.global_step)
    n_evals = job.autorl["n_eval_steps"]
    rows = evaluation_rows(result, steps=evaluation_steps(start_step=0, end_step=end,
                                                          n_evaluations=n_evals))  # fmt: skip
    objectives = _objectives(np.asarray(result.eval_rewards)[-1], job)
    job.out.mkdir(parents=True, exist_ok=True)
    # `done.txt` last: a crash before it leaves a job that trains again, never a done
    # job with some other job's files.
    (job.out / "done.txt").unlink(missing_ok=True)
    (job.out / "config.yaml").write_text(yaml.safe_dump(
        {**job.config, "overrides": list(job.overrides)}, sort_keys=False))  # fmt: skip
    write_csv(job.out / "metrics.csv", rows)
    save(job.out / "checkpoint.eqx", agent, state)
    # ARLBench's: one objective as a number, several as their mapping.
    performance = next(iter(objectives.values())) if len(objectives) == 1 else objectives
    (job.out / "performance.csv").write_text(str(performance))
    _job_log(job, f"Returned objectives: {objectives}")
    (job.out / "done.txt").write_text("yes")
    name = job.out.name if job.number == 0 and not job.overrides else f"job_{job.number}"
    config = {**(job.config.get("hp_config") or {}), **job.autorl["nas_config"],
              "seed": job.autorl["seed"]}  # fmt: skip
    log_run(loggers, name, rows, config=config)
    return float(next(iter(objectives.values())))


def _read_performance(job: Job) -> float:
    """A finished job's first objective, from `performance.csv` as `_finish_job` wrote it
    (a number, or a mapping of several)."""
    text = (job.out / "performance.csv").read_text().strip()
    if text.startswith("{"):
        return float(ast.literal_eval(text)[job.autorl["objectives"][0]])
    return float(text)


def _agent(job: Job, env: Any, eval_env: Any) -> PPO:
    return PPO(job.config.get("hp_config") or {}, env, eval_env=eval_env, track_metrics=True,
               **agent_options(job.autorl))  # fmt: skip


def _budget(job: Job) -> dict[str, int]:
    return budget_or_defaults(job.autorl)._asdict()


def _same_but_seed(a: Job, b: Job) -> bool:
    strip = lambda job: {**job.config, "autorl": {**job.autorl, "seed": None}, "seed": None}
    return strip(a) == strip(b)


def run_jobs(
    jobs: Sequence[Job],
    *,
    loggers: Sequence[AbstractLogger] = (),
    launcher: TreeLauncher | None = None,
) -> list[float]:
    """Run each job (or read back a finished one's objective); returns the objectives.

    Holds every job's folder for the whole call. Raises `JobMismatch` (before training
    anything) when a folder holds a finished job of another configuration, and
    `eqxppo._lock.FolderInUse` when another process holds one. With a `launcher` (the
    tree's, from `tree_launcher`), each population of jobs (those differing only in
    their seed) is one job of that launcher; `loggers` then stay unused (they do not
    travel), every job still writing its own files.
    """
    with contextlib.ExitStack() as stack:
        for job in jobs:
            stack.enter_context(folder_lock(job.out, what="job"))
        values: dict[int, float] = {}
        todo = []
        finished = [job for job in jobs if _finished(job)]  # every check before training
        for job in jobs:
            if job in finished:
                values[job.number] = _read_performance(job)
            else:
                todo.append(job)
        groups = []
        while todo:
            group = [job for job in todo if _same_but_seed(job, todo[0])]
            todo = [job for job in todo if job not in group]
            groups.append(group)
        if launcher is None:
            results = [_run_group(group, loggers) for group in groups]
        else:
            results = launcher.map([functools.partial(_run_group, g, ()) for g in groups])
        for group, result in zip(groups, results):
            values.update(zip((job.number for job in group), result))
        return [values[job.number] for job in jobs]


def _run_group(group: Sequence[Job], loggers: Sequence[AbstractLogger]) -> list[float]:
    """Train jobs that differ only in their seed: one population where the framework
    runs under `vmap` and the seeds differ, else one run after another."""
    values: dict[int, float] = {}
    first = group[0]
    env, eval_env = make_envs(first.autorl)
    seeds = [job.autorl["seed"] for job in group]
    if len(group) > 1 and env.vmappable and len(set(seeds)) == len(seeds):
        for m, job in enumerate(group):
            _start_job(job, f"member {m} of a population of the {len(group)} seeds")
        pop = Population([first.config.get("hp_config") or {}], env, seeds, eval_env=eval_env,
                         track_metrics=True, **agent_options(first.autorl))  # fmt: skip
        state, result = pop.train(pop.init(jr.key(0)), **_budget(first))
        result = jax.block_until_ready(result)
        for m, job in enumerate(group):
            values[job.number] = _finish_job(
                job, PPO.from_population(pop, m, state), pop.member(state, m),
                member_result(result, m), loggers,
            )  # fmt: skip
        return [values[job.number] for job in group]
    for job in group:
        if job is not first:
            env, eval_env = make_envs(job.autorl)
        _start_job(job, "a single run")
        agent = _agent(job, env, eval_env)
        state = agent.init(jr.fold_in(jr.key(0), job.autorl["seed"]))
        state, result = agent.train(*state, **_budget(job))
        values[job.number] = _finish_job(job, agent, state, result, loggers)
    return [values[job.number] for job in group]


def _hypersweeper_files(study: Study, trials: Sequence[Trial], out: Path) -> None:
    """`runhistory.csv` (one row per trial: its id, budget, performance, hyperparameters
    by their `hp_config.` names) and `incumbent.json` (a JSON line each time the
    incumbent changes, the last the final one), as Hypersweeper writes them."""
    names = sorted({k for t in trials for k in t.config})
    sign = 1 if study.maximize else -1  # the performance a job of the tree reports
    rows = [{"config_id": t.number, "budget": t.budget, "seeds": " ".join(map(str, t.seeds)),
             "status": t.status,
             "performance": "" if t.objective is None else sign * t.objective,
             **{f"hp_config.{k}": t.config.get(k, "") for k in names}} for t in trials]  # fmt: skip
    if rows:
        write_csv(out / "runhistory.csv", rows)
    lines, current, used, clock = [], None, 0, 0.0
    for i, t in enumerate(trials):
        used += t.budget * len(t.seeds)
        clock += t.seconds
        best = incumbent(trials[: i + 1])  # eqxppo's rule: the best at the largest budget
        if best is not None and best is not current:
            current = best
            assert best.objective is not None
            lines.append(json.dumps({
                "config_id": best.number,
                "config": {f"hp_config.{k}": v for k, v in best.config.items()},
                "score": sign * best.objective,
                "budget": best.budget, "budget_used": used,
                "total_wallclock_time": round(clock, 3),
            }))  # fmt: skip
    (out / "incumbent.json").write_text("".join(line + "\n" for line in lines))


def run_study(
    study: Study,
    *,
    batch: int = 8,
    loggers: Sequence[AbstractLogger] = (),
    on_batch: Any = None,
    launcher: TreeLauncher | None = None,
) -> list[Trial]:
    """The study as `eqxppo.autorl.tune` runs it: trials of `study.job`'s hyperparameters
    with the search space's values, at most `max_budget` steps each over `study.seeds`;
    resumable from its folder. Each round asks `max(batch, study.parallel)` trials (the
    tree's own rhythm where it asks for larger rounds) and trains them as populations
    of at most `batch`; with a `launcher`, each population is one of its jobs. A PBT
    study is one population and runs here whatever the launcher."""

    out = study.job.out
    with folder_lock(out, what="study"):
        return _run_study(study, batch, loggers, on_batch, launcher)


def _run_study(
    study: Study,
    batch: int,
    loggers: Sequence[AbstractLogger],
    on_batch: Any,
    launcher: TreeLauncher | None = None,
) -> list[Trial]:
    import yaml

    out = study.job.out
    space = parse_search_space(study.search_space, name="search_space",
                               where="the tree's search_space")  # fmt: skip
    base = {k: v for k, v in (study.job.config.get("hp_config") or {}).items() if k in HPO_KEYS}
    autorl = study.job.autorl
    env_config = {k: autorl[k] for k in ("env_framework", "env_name", "env_kwargs",
                                         "eval_env_kwargs", "n_envs", "cnn_policy",
                                         "deterministic_eval", "nas_config",
                                         "n_eval_episodes", "seed")}  # fmt: skip
    group = out.resolve().name

    def logged(new: list[Trial]) -> None:
        # Hypersweeper's tables follow the log batch by batch, so a killed study's
        # files hold every trial it finished.
        _hypersweeper_files(study, read_trials(out / "trials.jsonl"), out)
        log_trials(loggers, new, group=group)
        if on_batch is not None:
            on_batch(new)

    if study.pbt is not None:
        trials = pbt(space=space, env_config=env_config, seeds=study.seeds, out=out,
                     base_config=base, on_batch=logged, **study.pbt)  # fmt: skip
    else:
        trials = tune(
            study.optimizer, space=space, env_config=env_config, n_trials=study.n_trials,
            batch=batch, timesteps=study.max_budget, seeds=study.seeds, out=out,
            seed=study.seed, on_batch=logged, base_config=base,
            min_budget=study.min_budget if study.optimizer == "smac" else None,
            eta=study.eta if study.optimizer == "smac" else 3,
            parallel=max(batch, study.parallel),
            map_units=None if launcher is None else launcher.map,
        )  # fmt: skip
    # The study's record of its space, in the tree's own form (once `tune` has checked
    # that the folder's study is this one).
    (out / "search_space.yaml").write_text(yaml.safe_dump(study.search_space, sort_keys=False))
    _hypersweeper_files(study, trials, out)
    return trials
