"""`eqxppo tune`: an HPO loop (random search, Optuna or SMAC) over batches trained as
populations.

Writes to `--out DIR`: `tune.json` (the settings; a rerun must agree with them),
`trials.jsonl` (one line per told trial, appended as each batch finishes: it survives
an interruption, and rerunning the same command resumes from it), `trials.csv` (the
same as a table) and `objective.png` (each trial's objective and the best so far); with
`--logger tensorboard` or `wandb`, one run per trial (`trial_<number>`: its
configuration, objective and status) as each batch finishes, grouped by the study's
folder name. Prints the incumbent.
"""

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from .._extras import MissingExtraError
from .._lock import folder_lock
from ..autorl import StudyMismatch, incumbent, read_trials, tune
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
)


def _plot(trials: list, path: Path) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    values = np.array([np.nan if t.objective is None else t.objective for t in trials], float)
    ax.scatter(np.arange(len(values)), values, s=14, color="0.4", label="trial")
    best = np.fmax.accumulate(np.where(np.isnan(values), -np.inf, values))
    ax.step(np.arange(len(values)), np.where(np.isinf(best), np.nan, best), where="post",
            color="C3", linewidth=2, label="best so far")  # fmt: skip
    ax.set(xlabel="trial", ylabel="mean final return", title="eqxppo tune")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _rows(trials: list) -> list[dict[str, Any]]:
    return [
        {"trial": t.number, "status": t.status, "budget": t.budget,
         "objective": "" if t.objective is None else round(t.objective, 3),
         "seconds": t.seconds, **t.config}
        for t in trials
    ]  # fmt: skip


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
    bar = progress(args.trials, initial=min(done, args.trials))

    def on_batch(new: list) -> None:
        # The table follows the log batch by batch: a killed study's holds every trial.
        write_csv(out / "trials.csv", _rows(read_trials(out / "trials.jsonl")))
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
    failed = sum(t.status == "failed" for t in trials)
    best = incumbent(trials)
    if best is None:
        print(f"no trial completed ({failed} failed)")
        return 1
    print(f"{len(trials)} trials ({failed} failed); incumbent: trial {best.number} with mean "
          f"final return {best.objective:.1f} at {best.budget:,} steps:")  # fmt: skip
    print(json.dumps(best.config))
    print(f"wrote {out}/: tune.json, trials.jsonl, trials.csv, objective.png")
    return 0
