"""`eqxppo tune`: an HPO loop (random search, Optuna or SMAC) over batches trained as
populations.

Writes to `--out DIR`: `tune.json` (the settings; a rerun must agree with them),
`study.json` (the library's record of the same), `trials.jsonl` (one line per told
trial, appended as each batch finishes: it survives an interruption, and rerunning the
same command resumes from it), `trials.csv` (the same as a table: status, asked budget,
the steps its result stands at, objective, seconds, configuration), `incumbent.json`
(the best trial so far, rewritten after every batch) and `objective.png` (each trial's
objective by status, and the best complete one so far); with `--logger tensorboard` or
`wandb`, one run per trial (`trial_<number>`: its configuration and status, its
evaluation at every report, its objective) as each batch finishes, grouped by the
study's folder name. Prints the incumbent and every file and folder written.
"""

import argparse
import collections
import json
from pathlib import Path
from typing import Any

import numpy as np

from .._atomic import write_text
from .._extras import MissingExtraError
from .._lock import folder_lock
from ..autorl import StudyMismatch, Trial, incumbent, read_trials, tune
from ..configspaces import get_search_space
from ..tracking import log_trials
from ._common import (
    UserError,
    check_settings,
    open_loggers,
    progress,
    pyplot,
    refuse_other_commands,
    user_input,
    write_csv,
    written_folders,
)


# How `objective.png` draws each status (a failed or diverged trial has no value: it
# sits on the plot's floor).
_MARKS = {"complete": ("o", "0.35", "complete"), "pruned": ("v", "C1", "pruned (at its step)"),
          "failed": ("x", "C3", "failed"), "diverged": ("x", "C3", "diverged")}  # fmt: skip


def _plot(trials: list[Trial], path: Path) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    values = np.array([np.nan if t.objective is None else t.objective for t in trials], float)
    floor = np.nanmin(values) if np.isfinite(values).any() else 0.0
    for status, (marker, color, label) in _MARKS.items():
        idx = [i for i, t in enumerate(trials) if t.status == status]
        if not idx:
            continue
        y = [floor if status in ("failed", "diverged") else values[i] for i in idx]
        if status == "pruned":  # hollow: its value is an early report's
            ax.scatter(idx, y, s=24, marker=marker, facecolors="none", edgecolors=color,
                       label=label)  # fmt: skip
        else:
            ax.scatter(idx, y, s=22, marker=marker, color=color, label=label)
    complete = np.array([v if t.status == "complete" else np.nan
                         for t, v in zip(trials, values)])  # fmt: skip
    best = np.fmax.accumulate(np.where(np.isnan(complete), -np.inf, complete))
    ax.step(np.arange(len(values)), np.where(np.isinf(best), np.nan, best), where="post",
            color="C3", linewidth=2, label="best complete so far")  # fmt: skip
    ax.set(xlabel="trial", ylabel="mean final return", title="eqxppo tune")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _rows(trials: list[Trial]) -> list[dict[str, Any]]:
    return [
        {"trial": t.number, "status": t.status, "budget": t.budget,
         "steps": t.budget if t.steps is None else t.steps,
         "objective": "" if t.objective is None else round(t.objective, 3),
         "seconds": t.seconds, **t.config}
        for t in trials
    ]  # fmt: skip


def write_incumbent(trials: list[Trial], path: Path) -> Trial | None:
    """`incumbent.json`, atomically: the best trial so far (`autorl.incumbent`'s rule)
    with its configuration, objective, budget and seeds, and the count of trials it was
    chosen from; `null` before any trial completed."""
    best = incumbent(trials)
    record = None if best is None else {
        "trial": best.number, "config": best.config, "objective": best.objective,
        "budget": best.budget, "seeds": best.seeds, "of_trials": len(trials),
    }  # fmt: skip
    write_text(path, json.dumps(record, indent=2) + "\n")
    return best


def tune_command(args: argparse.Namespace) -> int:
    """Run or resume the loop, then write the table and the plot and print the best."""
    with folder_lock(args.out, what="study"):
        return _tune_command(args)


def _tune_command(args: argparse.Namespace) -> int:
    out = Path(args.out)
    loggers = open_loggers(args.logger, out)
    settings = {
        "optimizer": args.optimizer, "env": args.env, "framework": args.framework,
        "space": args.space, "trials": args.trials, "batch": args.batch,
        "timesteps": args.timesteps, "seeds": args.seeds, "n_envs": args.n_envs,
        "seed": args.seed, "reports": args.reports, "eval_episodes": args.eval_episodes,
    }  # fmt: skip
    refuse_other_commands(out, "tune")
    check_settings(out, "tune.json", settings, may_change=("trials",))
    env_config = {"env_framework": args.framework, "env_name": args.env, "n_envs": args.n_envs,
                  "n_eval_episodes": args.eval_episodes, "seed": args.seed}  # fmt: skip
    if args.space.endswith((".yaml", ".yml")) and not Path(args.space).is_file():
        raise UserError(f"--space: no such file {args.space!r}.")
    with user_input("--space: "):
        space = get_search_space(args.space, seed=args.seed)
    (out / "tune.json").write_text(json.dumps(settings, indent=2))
    with user_input():
        done = len(read_trials(out / "trials.jsonl"))
    print(f"eqxppo: tuning PPO on {args.env} with {args.optimizer}: {args.trials} trials in "
          f"batches of {args.batch}, {args.timesteps:,} steps x {args.seeds} seed(s) each"
          + (f"; resuming after {done} logged trial(s)" if done else ""), flush=True)  # fmt: skip
    bar = progress(args.trials, initial=min(done, args.trials), unit="trial")

    def on_batch(new: list) -> None:
        # The table and the incumbent follow the log batch by batch: a killed study's
        # hold every trial it finished.
        logged = read_trials(out / "trials.jsonl")
        write_csv(out / "trials.csv", _rows(logged))
        write_incumbent(logged, out / "incumbent.json")
        log_trials(loggers, new, group=out.resolve().name)
        if bar is not None:
            bar.update(len(new))
            best = incumbent(new)
            if best is not None:
                bar.set_postfix(batch_best=f"{best.objective:.1f}")

    try:
        trials = tune(
            args.optimizer, space=space, env_config=env_config, n_trials=args.trials,
            batch=args.batch, timesteps=args.timesteps,
            seeds=range(args.seed, args.seed + args.seeds),
            out=out, seed=args.seed, reports=args.reports, on_batch=on_batch,
        )  # fmt: skip
    except (MissingExtraError, StudyMismatch) as error:
        raise UserError(str(error)) from None
    finally:
        if bar is not None:
            bar.close()
    write_csv(out / "trials.csv", _rows(trials))
    _plot(trials, out / "objective.png")
    best = write_incumbent(trials, out / "incumbent.json")
    counts = collections.Counter(t.status for t in trials)
    others = ", ".join(f"{counts[s]} {s}" for s in ("pruned", "failed", "diverged") if counts[s])
    files = ["tune.json", "study.json", "trials.jsonl", "trials.csv", "incumbent.json",
             "objective.png", *written_folders(out, args.logger)]  # fmt: skip
    if best is None:
        print(f"no trial completed ({others})")
        print(f"wrote {out}/: {', '.join(files)}")
        return 1
    print(f"{len(trials)} trials{f' ({others})' if others else ''}; incumbent: trial "
          f"{best.number} with mean final return {best.objective:.1f} at {best.budget:,} "
          "steps:")  # fmt: skip
    print(json.dumps(best.config))
    print(f"wrote {out}/: {', '.join(files)}")
    return 0
