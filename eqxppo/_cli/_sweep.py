"""`eqxppo sweep`: sample configurations from the HPO space and train them as a population.

In this process by default (one population: its groups compile side by side, then
train), or with `--workers N` / `--address HOST:PORT` as one task per compiled group on
a Dask cluster (`eqxppo.sweeps`): a finished task's result is kept in `--out DIR/tasks/`,
so rerunning the same command after an interruption trains only the unfinished groups.

Writes to `--out DIR`: `sweep.json` (the settings and the sampled configurations),
`results.csv` (one row per configuration: its hyperparameters, the mean final return over
seeds, its rank), `curves.csv` (mean eval return per configuration and chunk),
`members.csv` (one row per member and chunk: its evaluation, losses, the population's
steps/s, whether it diverged) and `learning_curves.png`; with `--logger tensorboard` or
`wandb`, one run per member (`config_<i>_seed_<seed>`, its hyperparameters and seed),
grouped by the sweep's folder name; with a cluster also `tasks/` and every member's checkpoint in
`checkpoints/`. Prints the best configuration.
"""

import argparse
import json
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import jax
import numpy as np

from .._extras import MissingExtraError, require
from .._lock import folder_lock
from ..agent import PPO
from ..configspaces import HPO_KEYS
from ..envs import make_env
from ..sweeps import (
    FailedTask,
    SweepTask,
    TaskResult,
    finished_results,
    run_on_dask,
    run_task,
    sweep_tasks,
)
from ..tracking import log_run, member_name
from ._common import (
    UserError,
    check_settings,
    load_config_file,
    open_loggers,
    parse_sets,
    progress,
    pyplot,
    refuse_other_commands,
    split_hpo_nas,
    user_input,
    write_csv,
    written_folders,
)


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _plot(curves: np.ndarray, steps: list[int], ranks: np.ndarray, title: str, path: Path) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    best = int(np.argmin(ranks))
    for i, curve in enumerate(curves):
        if i != best:
            ax.plot(steps, curve, color="0.6", alpha=0.6, linewidth=1)
    ax.plot(steps, curves[best], color="C3", linewidth=2.5, label=f"best: config {best}")
    ax.set(xlabel="environment steps per member (budget)", title=title,
           ylabel="mean eval return over seeds")  # fmt: skip
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _sample(args: argparse.Namespace) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    fixed = load_config_file(args.config) if args.config else {}
    fixed.update(parse_sets(args.set or []))
    fixed_hpo, nas = split_hpo_nas(fixed, "--config/--set")
    space = PPO.get_hpo_config_space(seed=args.seed)
    samples = space.sample_configuration(max(args.n_configs, 2))[: args.n_configs]
    return [{**{k: _plain(v) for k, v in dict(c).items()}, **fixed_hpo} for c in samples], nas


def _by_config(member_rows: list, n_seeds: int) -> list[list]:
    """A task's member rows (configuration-major) as one list of seeds per configuration."""
    return [member_rows[k : k + n_seeds] for k in range(0, len(member_rows), n_seeds)]


def rank_order(configs: Sequence[int], final: np.ndarray, diverged: Mapping[int, int]) -> list[int]:
    """`configs` best first: by mean final return, except that a configuration with a
    diverged seed ranks after every one without (its return is that of a network frozen
    at its last finite update, not of a run that trained)."""
    return sorted(configs, key=lambda i: (diverged[i] > 0, -final[i]))


def _in_process(task: SweepTask) -> TaskResult:
    bar = progress(task.chunks, unit="chunk")

    def update(_, curve: np.ndarray) -> None:
        if bar is not None:
            bar.update(1)
            bar.set_postfix(best=f"{curve.max():.1f}", median=f"{np.median(curve):.1f}")

    try:
        return run_task(task, progress=update)
    finally:
        if bar is not None:
            bar.close()


def _tick(bar: Any) -> None:
    if bar is not None:
        bar.update(1)


def _on_cluster(args: argparse.Namespace, tasks: list[SweepTask], out: Path) -> tuple[
    list[TaskResult], list[FailedTask]
]:  # fmt: skip
    bar = progress(len(tasks), unit="task")
    with user_input():
        done = len(finished_results(out, tasks))
    if bar is not None:
        bar.update(done)
    cache = None if args.no_compilation_cache else jax.config.jax_compilation_cache_dir  # pyright: ignore[reportAttributeAccessIssue]
    try:
        require("dask.distributed", "dask", what="--workers/--address")
    except MissingExtraError as error:
        raise UserError(str(error)) from None
    try:
        return run_on_dask(
            tasks, out, address=args.address, workers=args.workers, retries=args.retries,
            compilation_cache=cache,
            on_result=lambda _: _tick(bar),
        )  # fmt: skip
    finally:
        if bar is not None:
            bar.close()


def sweep_command(args: argparse.Namespace) -> int:
    """Sample, train (here or on a cluster), rank, write and print."""
    with folder_lock(args.out, what="sweep"):
        return _sweep_command(args)


def _sweep_command(args: argparse.Namespace) -> int:
    configs, nas = _sample(args)
    out = Path(args.out)
    refuse_other_commands(out, "sweep")
    loggers = open_loggers(args.logger, out)
    seeds = list(range(args.seed, args.seed + args.seeds))
    env_args = {"env_framework": args.framework, "env_name": args.env, "n_envs": args.n_envs}
    distributed = args.workers is not None or args.address is not None
    with user_input():
        env = make_env(**env_args)
        pop = PPO.population(configs, env, seeds=seeds, nas_config=nas,
                             planned_timesteps=args.timesteps)  # fmt: skip
        tasks = sweep_tasks(
            configs, seeds=seeds, env_args=env_args, nas_config=nas, timesteps=args.timesteps,
            chunks=args.chunks, eval_episodes=args.eval_episodes, key_seed=args.seed,
            split=distributed,
        )  # fmt: skip
    record = {"env": args.env, "framework": args.framework, "n_envs": args.n_envs,
              "seeds": seeds, "timesteps": args.timesteps, "chunks": args.chunks,
              "eval_episodes": args.eval_episodes, "nas": nas, "configs": configs}  # fmt: skip
    # A rerun into the folder of another sweep would mix its tables with this one's.
    check_settings(out, "sweep.json", record)
    (out / "sweep.json").write_text(json.dumps(record, indent=2))
    where = f"as {len(tasks)} task(s) on a Dask cluster" if distributed else "in this process"
    print(f"eqxppo: sweeping {args.n_configs} configurations x {args.seeds} seeds on "
          f"{args.env}: {pop.n_members} members in {len(pop.groups)} compiled group(s), "
          f"{where}", flush=True)  # fmt: skip

    start = time.perf_counter()
    if distributed:
        results, failed = _on_cluster(args, tasks, out)
    else:
        results, failed = [_in_process(tasks[0])], []
    for failure in failed:
        print(f"eqxppo: task {failure.task.number} (configurations {list(failure.task.configs)}) "
              f"failed: {failure.error}", file=sys.stderr)  # fmt: skip
    if not results:
        return 1
    steps = results[0].steps
    curves_arr = np.full((args.n_configs, len(steps)), np.nan)
    for result in results:
        curves_arr[list(result.configs)] = result.curves
    finished = [i for result in results for i in result.configs]
    diverged = {i: sum(flags) for r in results for i, flags in zip(r.configs, r.diverged)}
    final = curves_arr[:, -1]
    order = rank_order(finished, final, diverged)
    ranks = {i: r + 1 for r, i in enumerate(order)}
    rows: list[dict[str, Any]] = [
        {"config": i, **{k: configs[i][k] for k in HPO_KEYS}, "mean_final_return":
         round(float(final[i]), 3), "diverged_seeds": diverged[i], "rank": ranks[i]}
        for i in sorted(finished)
    ]  # fmt: skip
    write_csv(out / "results.csv", rows)
    write_csv(out / "curves.csv", [
        {"config": i, **{f"step_{s}": round(float(v), 3) for s, v in zip(steps, curves_arr[i])}}
        for i in sorted(finished)
    ])  # fmt: skip
    members = [
        (i, seed, rows)
        for result in results
        for i, per_seed in zip(result.configs, _by_config(result.member_rows, len(seeds)))
        for seed, rows in zip(seeds, per_seed)
    ]  # fmt: skip
    members.sort(key=lambda member: (member[0], member[1]))
    write_csv(out / "members.csv", [{"config": i, "seed": seed, **row}
                                    for i, seed, rows in members for row in rows])  # fmt: skip
    group = out.resolve().name
    for i, seed, rows in members:
        log_run(loggers, member_name(i, seed), rows, group=group,
                config={**configs[i], **(nas or {}), "seed": seed})  # fmt: skip
    plot_ranks = np.array([ranks.get(i, args.n_configs + 1) for i in range(args.n_configs)])
    _plot(curves_arr, steps, plot_ranks, f"eqxppo sweep on {args.env}", out / "learning_curves.png")
    best = order[0]
    programs = sum(r.n_programs for r in results)
    loaded = sum(r.programs_loaded for r in results)
    print(f"{args.env}: {len(finished) * args.seeds} runs of {steps[-1]:,} steps in "
          f"{time.perf_counter() - start:.1f} s ({programs} program(s), {loaded} loaded from "
          f"the compilation cache); best configuration {best} with mean final "
          f"return {final[best]:.1f} over {args.seeds} seed(s):")  # fmt: skip
    print(json.dumps({k: configs[best][k] for k in HPO_KEYS}))
    bad = sorted(i for i in finished if diverged[i])
    if bad:
        print(f"eqxppo: warning: {len(bad)} configuration(s) diverged in at least one "
              f"seed (ranked last; diverged_seeds in results.csv): {bad}",
              file=sys.stderr)  # fmt: skip
    files = ["sweep.json", "results.csv", "curves.csv", "members.csv", "learning_curves.png",
             *written_folders(out, args.logger)]  # fmt: skip
    print(f"wrote {out}/: {', '.join(files)}")
    return 1 if failed else 0
