"""`eqxppo arlbench`: run an ARLBench experiment tree (a Hydra config folder in
ARLBench's layout) the way ARLBench's `run_arlbench.py` runs it, with the same override
syntax: a single job, a multirun (`-m seed=0,1,2`), or an HPO study (a tree whose
`hydra/sweeper` is Hypersweeper's `HyperRS`, `HyperSMAC` or `HyperPBT`, with `-m`),
through the tree's Hydra launcher where it names one. See `eqxppo.experiments` for what
each writes.
"""

import argparse
import functools
import json
from pathlib import Path

from .._extras import MissingExtraError
from ..autorl import StudyMismatch, Trial
from ..experiments import (
    Job,
    JobMismatch,
    Study,
    TreeLauncher,
    plan,
    run_jobs,
    run_study,
    tree_launcher,
)
from ._common import UserError, open_loggers, progress, user_input, write_csv, written_folders


def arlbench_command(args: argparse.Namespace) -> int:
    """Compose, then run the jobs or the study and print the objective(s)."""
    try:
        with user_input(f"{args.config_dir}: "):
            planned = plan(
                args.config_dir, config_name=args.config_name, overrides=args.overrides,
                multirun=args.multirun, out=args.out,
            )  # fmt: skip
        launcher = (
            tree_launcher(args.config_dir, config_name=args.config_name,
                          overrides=args.overrides, out=args.out)
            if args.multirun else None
        )  # fmt: skip
    except MissingExtraError as error:
        raise UserError(str(error)) from None
    if launcher is not None:
        print(f"eqxppo: through the tree's hydra/launcher {launcher.name!r}", flush=True)
    if isinstance(planned, Study):
        planned = [planned]
    if planned and isinstance(planned[0], Study):
        studies = [s for s in planned if isinstance(s, Study)]
        if len(studies) > 1:
            print(f"eqxppo: {len(studies)} studies, one per value of the swept overrides",
                  flush=True)  # fmt: skip
        for study in studies:
            _announce(args, study)
        if launcher is None or len(studies) == 1:
            # One study: its rounds' populations are the launcher's jobs.
            runs = [_run_study(args, study, launcher) for study in studies]
        else:  # each study one job of the launcher
            try:
                runs = launcher.map(
                    [functools.partial(run_study, study, batch=args.batch) for study in studies]
                )
            except (MissingExtraError, StudyMismatch) as error:
                raise UserError(str(error)) from None
        return max(_report(args, study, trials) for study, trials in zip(studies, runs))
    jobs = [j for j in planned if isinstance(j, Job)]
    folder = jobs[0].out if len(jobs) == 1 else jobs[0].out.parent
    loggers = open_loggers(args.logger, folder)
    what = f"{len(jobs)} jobs" if len(jobs) > 1 else "one job"
    print(f"eqxppo: running {what} of {args.config_name!r} from {args.config_dir} on "
          f"{jobs[0].autorl['env_name']} in {folder}", flush=True)  # fmt: skip
    try:
        values = run_jobs(jobs, loggers=loggers, launcher=launcher)
    except JobMismatch as error:
        raise UserError(str(error)) from None
    for job, value in zip(jobs, values):
        print(f"job {job.number} ({' '.join(job.overrides) or 'no overrides'}): "
              f"{', '.join(job.autorl['objectives'])} {value:.2f} -> {job.out}")  # fmt: skip
    if len(jobs) > 1:
        write_csv(folder / "results.csv", [
            {"job": j.number, "overrides": " ".join(j.overrides), "seed": j.autorl["seed"],
             "performance": v, "dir": str(j.out)} for j, v in zip(jobs, values)
        ])  # fmt: skip
        print(f"wrote {folder}/results.csv")
    return 0


def _announce(args: argparse.Namespace, study: Study) -> None:
    out = study.job.out
    overrides = f" [{' '.join(study.job.overrides)}]" if study.job.overrides else ""
    what = (
        f"{study.n_trials} trials of up to {study.max_budget:,} steps"
        if study.pbt is None
        else f"{study.pbt['population_size']} members x {study.pbt['iterations']} iterations "
        f"of {study.max_budget:,} steps"
    )
    print(f"eqxppo: study {args.config_name!r}{overrides} ({study.optimizer}) on "
          f"{study.job.autorl['env_name']}: {what} x {len(study.seeds)} seed(s) in {out}",
          flush=True)  # fmt: skip


def _run_study(
    args: argparse.Namespace, study: Study, launcher: TreeLauncher | None = None
) -> list[Trial]:
    loggers = open_loggers(args.logger, study.job.out)
    bar = progress(study.n_trials, unit="trial")
    try:
        tick = (lambda new: bar.update(len(new))) if bar is not None else None
        return run_study(study, batch=args.batch, loggers=loggers, on_batch=tick,
                         launcher=launcher)  # fmt: skip
    except (MissingExtraError, StudyMismatch) as error:
        raise UserError(str(error)) from None
    finally:
        if bar is not None:
            bar.close()


def _report(args: argparse.Namespace, study: Study, trials: list[Trial]) -> int:
    out = study.job.out
    lines = (out / "incumbent.json").read_text().splitlines()
    if not lines:
        print(f"no trial completed ({len(trials)} trials)")
        return 1
    best = json.loads(lines[-1])
    print(f"{len(trials)} trials; incumbent: trial {best['config_id']} with score "
          f"{best['score']:.2f} at {best['budget']:,} steps:")  # fmt: skip
    print(json.dumps(best["config"]))
    out = Path(out)
    files = ["runhistory.csv", "incumbent.json", "trials.jsonl", "trials.csv",
             "search_space.yaml", "study.json", *written_folders(out, args.logger)]  # fmt: skip
    print(f"wrote {out}/: {', '.join(f for f in files if (out / f).exists())}")
    return 0
