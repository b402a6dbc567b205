"""`eqxppo train`: chunks of one compiled call each, a checkpoint after every chunk.

The run directory (`--out DIR`) holds `config.json` (the run's settings), `metrics.csv`
(one row per chunk), `learning_curve.png`, `checkpoint.eqx` and `status.json` (running,
with the last chunk's step, after every chunk; then finished, interrupted or diverged).
Ctrl-C keeps the last finished chunk's checkpoint and exits; `--resume DIR` continues
from it exactly.

The folder belongs to one run: the command holds its lock (`eqxppo._lock`) while it
writes, and `--out` refuses a folder that holds any run's files. After each chunk the
metrics row is written before the checkpoint, so a crash between the two loses nothing:
`--resume` drops the rows past the checkpoint's step and trains that chunk again.

A run that diverges (an update with a non-finite loss or state, dropped by the guard in
`update_step`) keeps the network of its last finite update and learns no more. The
command says so on stderr, naming the chunk and its steps, stops after that chunk (more
chunks would only step the environments), marks the chunk's row (`diverged` in
`metrics.csv`) and `status.json`, writes everything as usual and exits with status 3.
Resuming a diverged run trains nothing and exits 3 again.
"""

import argparse
import csv
import json
import math
import signal
import sys
import time
from pathlib import Path
from typing import Any

import jax
import jax.random as jr

from .._atomic import write_text
from .._lock import folder_lock
from ..agent import PPO, load, save
from ..configspaces import get_default_nas_config, hpo_config_to_dict
from ..envs import make_env
from ..ppo import PPOState, PPOTrainingResult
from ..tracking import AbstractRun, evaluation_rows, final_metrics, log_rows
from ._common import (
    CHECKPOINT,
    DIVERGED,
    EXIT_DIVERGED,
    UserError,
    check_settings,
    load_config_file,
    open_loggers,
    parse_sets,
    progress,
    pyplot,
    read_csv,
    refuse_other_commands,
    split_hpo_nas,
    user_input,
    write_csv,
    written_folders,
)


# Flags that set up a new run; `--resume` takes them from the run's config.json and
# accepts them only where they agree with it.
NEW_RUN_FLAGS = ("env", "framework", "n_envs", "seed", "config", "set", "out", "chunks",
                 "eval_episodes", "cnn_policy", "env_kwargs")  # fmt: skip
# What a run writes into its folder; `--out` refuses a folder holding any of them.
RUN_FILES = ("config.json", "metrics.csv", CHECKPOINT, "status.json")
DEFAULTS: dict[str, Any] = {"env": "CartPole-v1", "framework": "gymnax", "timesteps": 200_000,
                            "seed": 0, "n_envs": 8, "chunks": 10, "eval_episodes": 10,
                            "cnn_policy": False, "env_kwargs": {}}  # fmt: skip


def _hyperparameters(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any]]:
    """`--config` then `--set`, sorted into HPO and NAS values."""
    values = load_config_file(args.config) if args.config else {}
    values.update(parse_sets(args.set or []))
    return split_hpo_nas(values, "--config/--set")


def _env_kwargs_as_dict(args: argparse.Namespace) -> None:
    """`--env-kwarg` pairs as the mapping `config.json` records."""
    if args.env_kwargs is not None:
        args.env_kwargs = dict(args.env_kwargs)


def _new_run(args: argparse.Namespace) -> tuple[dict[str, Any], PPO, PPOState, Path | None]:
    settings = {k: DEFAULTS[k] if getattr(args, k) is None else getattr(args, k) for k in DEFAULTS}
    hpo, nas = _hyperparameters(args)
    with user_input():
        env = make_env(
            settings["framework"], settings["env"], settings["cnn_policy"], settings["n_envs"],
            settings["seed"], settings["env_kwargs"],
        )  # fmt: skip
        agent = PPO(hpo, env, cnn_policy=settings["cnn_policy"], nas_config=nas,
                    track_metrics=True)  # fmt: skip
    settings["chunk_timesteps"] = math.ceil(settings["timesteps"] / settings["chunks"])
    settings["hpo"] = hpo_config_to_dict(agent.config, agent.hparams)
    settings["nas"] = agent.nas_config
    out = Path(args.out) if args.out else None
    if out is not None:
        if (out / CHECKPOINT).exists():
            raise UserError(
                f"--out {str(out)!r} already holds a run; continue it with --resume {out} "
                "or choose another directory."
            )
        refuse_other_commands(out, "train")
        found = [name for name in RUN_FILES if (out / name).exists()]
        if found and not (out / "config.json").exists():
            raise UserError(
                f"--out {str(out)!r} holds another run's files ({', '.join(found)}) and no "
                "checkpoint to resume; choose another directory, or delete them."
            )
        # The same command killed before its first checkpoint starts again; a folder of
        # a run with other settings is refused, naming them, and so is one whose rows go
        # past a first chunk (its checkpoint was deleted: those rows are not ours).
        check_settings(out, "config.json", settings)
        if (out / "metrics.csv").exists() and len(_read_metrics(out)) > 1:
            raise UserError(
                f"--out {str(out)!r} holds a run's metrics.csv but no {CHECKPOINT} to resume "
                "from; choose another directory, or delete the folder."
            )
        (out / "config.json").write_text(json.dumps(settings, indent=2))
    return settings, agent, agent.init(jr.key(settings["seed"])), out


def _same(given: Any, recorded: Any) -> bool:
    if isinstance(given, bool) or isinstance(recorded, bool):
        return given is recorded or given == recorded
    if isinstance(given, int | float) and isinstance(recorded, int | float):
        return math.isclose(float(given), float(recorded), rel_tol=1e-6)
    return given == recorded


def _conflicts(args: argparse.Namespace, settings: dict[str, Any], out: Path) -> list[str]:
    """The flags given with `--resume` that disagree with the run's `config.json`."""
    conflicts = []
    for name in NEW_RUN_FLAGS:
        given = getattr(args, name)
        if given is None or name in ("config", "set"):
            continue
        recorded = str(out) if name == "out" else settings.get(name)
        if name == "out" and Path(given).resolve() == out.resolve():
            continue
        if not _same(given, recorded):
            conflicts.append(f"--{name.replace('_', '-')} {given} (the run has {recorded})")
    if args.config or args.set:
        hpo, nas = _hyperparameters(args)
        # A run recorded before the `recurrent` key existed is feed-forward: the defaults.
        recorded = {**dict(get_default_nas_config()), **settings["hpo"], **settings["nas"]}
        for key, value in {**hpo, **nas}.items():
            if not _same(value, recorded[key]):
                conflicts.append(f"{key}={value} (the run has {recorded[key]})")
    return conflicts


def _resumed_run(args: argparse.Namespace) -> tuple[dict[str, Any], PPO, PPOState, Path]:
    out = Path(args.resume)
    if not (out / "config.json").is_file() or not (out / CHECKPOINT).is_file():
        raise UserError(
            f"--resume {str(out)!r}: no run to resume there (it needs config.json and "
            f"{CHECKPOINT}, written by `eqxppo train --out DIR`)."
        )
    try:
        settings = json.loads((out / "config.json").read_text())
        if not isinstance(settings, dict) or not all(k in settings for k in ("hpo", "nas")):
            raise ValueError("not the settings `eqxppo train` writes")
    except (ValueError, UnicodeDecodeError) as error:
        raise UserError(f"--resume {str(out)!r}: config.json is unreadable ({error}).") from None
    conflicts = _conflicts(args, settings, out)
    if conflicts:
        raise UserError(
            f"--resume {out} continues the run with the settings in its config.json; these "
            f"flags conflict with them: {'; '.join(conflicts)}. Only --timesteps may change "
            "(to extend the run)."
        )
    if args.timesteps is not None:
        settings["timesteps"] = args.timesteps
    with user_input():
        agent, state = load(out / CHECKPOINT)
    return settings, agent, state, out


def _read_metrics(out: Path) -> list[dict[str, Any]]:
    """A resumed run's `metrics.csv` rows (none if the file is missing)."""
    if not (out / "metrics.csv").exists():
        return []
    try:
        rows = read_csv(out / "metrics.csv")
        if any(not isinstance(row.get("step"), int) for row in rows):
            raise ValueError("a row without an integer step")
    except (ValueError, csv.Error) as error:
        raise UserError(
            f"{str(out)!r}: metrics.csv is unreadable ({error}); move it aside to resume "
            "without the earlier rows."
        ) from None
    return rows


def _row(
    step: int, result: PPOTrainingResult, steps_per_s: float, wall_s: float, diverged: bool
) -> dict:
    (row,) = evaluation_rows(result, steps=[step])
    return {**row, "steps_per_s": round(steps_per_s, 1), "wall_s": round(wall_s, 2),
            "diverged": int(diverged)}  # fmt: skip


def plot_learning_curve(rows: list[dict[str, Any]], title: str, path: Path) -> None:
    """Mean eval return against steps, with the min-max band over episodes."""
    plt = pyplot()
    steps = [r["step"] for r in rows]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(steps, [r["mean_return"] for r in rows], marker=".", label="mean eval return")
    ax.fill_between(steps, [r["min_return"] for r in rows], [r["max_return"] for r in rows],
                    alpha=0.25, label="min-max over episodes")  # fmt: skip
    ax.set(xlabel="environment steps", ylabel="return", title=title)
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _write_status(out: Path, rows: list[dict[str, Any]], status: str) -> None:
    """`status.json`, atomically: `running` after every chunk, then how the run ended."""
    diverged_at = next((r["step"] for r in rows if int(r.get("diverged", 0))), None)
    record = {"status": status, "step": rows[-1]["step"] if rows else 0,
              "diverged_in_chunk_ending_at_step": diverged_at}  # fmt: skip
    write_text(out / "status.json", json.dumps(record, indent=2))


def _finish(
    rows: list[dict[str, Any]], settings: dict[str, Any], out: Path | None, status: str
) -> None:
    if out is None:
        return
    _write_status(out, rows, status)
    if not rows:
        return
    write_csv(out / "metrics.csv", rows)
    plot_learning_curve(rows, f"eqxppo PPO on {settings['env']}", out / "learning_curve.png")


def _warn_diverged(rows: list[dict[str, Any]], start_step: int) -> None:
    """Name the chunk in which the run diverged (the last row) on stderr."""
    print(f"eqxppo: warning: {DIVERGED}. It diverged in chunk {len(rows)} (steps "
          f"{start_step:,} to {rows[-1]['step']:,}); training stops here, and that "
          "chunk's row in metrics.csv has diverged=1 (its losses may be NaN). Try a lower "
          "learning_rate or a max_grad_norm above 0.", file=sys.stderr, flush=True)  # fmt: skip


def train_command(args: argparse.Namespace) -> int:
    """Train or resume a run; see the module docstring."""
    _env_kwargs_as_dict(args)
    folder = args.resume or args.out
    if folder is None or (args.resume and not Path(args.resume).is_dir()):
        return _train_command(args)  # nothing to write, or nothing to resume (its error)
    with folder_lock(folder):
        return _train_command(args)


def _train_command(args: argparse.Namespace) -> int:
    if args.resume:
        settings, agent, state, out = _resumed_run(args)
        rows = _read_metrics(out)
    else:
        settings, agent, state, out = _new_run(args)
        rows = []
    step = int(state.runner_state.global_step)
    # Rows past the checkpoint (written just before a crash) are trained again.
    rows = [{**r, "diverged": r.get("diverged", 0)} for r in rows if r["step"] <= step]
    diverged = bool(state.runner_state.diverged)
    if diverged:  # a resumed diverged run: nothing left to learn
        print(f"eqxppo: warning: {DIVERGED}; nothing to resume.", file=sys.stderr)
        _finish(rows, settings, out, "diverged")
        return EXIT_DIVERGED
    runs = _start_runs(args, settings, out, resumed_at=step if args.resume else None)
    try:
        return _train_loop(args, settings, agent, state, out, rows, runs)
    finally:
        for run in runs:
            run.finish(final_metrics(rows))


def _start_runs(
    args: argparse.Namespace, settings: dict[str, Any], out: Path | None, resumed_at: int | None
) -> list[AbstractRun]:
    """One run per `--logger` backend, named after the run's folder; a resumed run
    continues its TensorBoard folder and its W&B run (the same id)."""
    loggers = open_loggers(args.logger, out)
    if not loggers:
        return []
    assert out is not None
    config = {**settings["hpo"], **settings["nas"], "env": settings["env"],
              "framework": settings["framework"], "n_envs": settings["n_envs"],
              "seed": settings["seed"]}  # fmt: skip
    if resumed_at is not None:
        config["resumed_at_step"] = resumed_at
    return [logger.start_run(out.resolve().name, config=config, resume=resumed_at is not None)
            for logger in loggers]  # fmt: skip


def _train_loop(
    args: argparse.Namespace,
    settings: dict[str, Any],
    agent: PPO,
    state: PPOState,
    out: Path | None,
    rows: list[dict[str, Any]],
    runs: list[AbstractRun],
) -> int:
    """Train chunk by chunk until the budget, an interruption or a divergence."""
    step = int(state.runner_state.global_step)
    diverged = False
    total = settings["timesteps"]
    verb = "resuming" if args.resume else "training"
    print(f"eqxppo: {verb} PPO on {settings['env']} ({settings['n_envs']} envs) at step "
          f"{step:,} of {total:,}; the first chunk includes compilation", flush=True)  # fmt: skip
    saved_step = step if args.resume else None
    bar = progress(total, initial=min(step, total))
    start = time.perf_counter()
    # SIGINT means "save and stop" even where the shell that started us ignores it
    # (a non-interactive shell's `eqxppo train ... &`), so `kill -INT` always works.
    previous_handler = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        while step < total:
            t0 = time.perf_counter()
            state, result = agent.train(
                *state, n_total_timesteps=settings["chunk_timesteps"], n_eval_steps=1,
                n_eval_episodes=settings["eval_episodes"],
            )  # fmt: skip
            result = jax.block_until_ready(result)
            new_step = int(state.runner_state.global_step)
            now = time.perf_counter()
            prev_wall = rows[-1]["wall_s"] if rows else 0.0
            sps = (new_step - step) / (now - t0)
            diverged = bool(state.runner_state.diverged)
            rows.append(_row(new_step, result, sps, prev_wall + now - t0, diverged))
            for run in runs:
                log_rows(run, rows[-1:])
            chunk_start, step = step, new_step
            if out is not None:  # the row first: a crash in between loses nothing
                write_csv(out / "metrics.csv", rows)
                save(out / CHECKPOINT, agent, state)
                saved_step = step
                _write_status(out, rows, "running")
            if bar is not None:
                bar.update(min(step, total) - bar.n)
                bar.set_postfix(ret=f"{rows[-1]['mean_return']:.1f}",
                                sps=f"{rows[-1]['steps_per_s']:,.0f}")  # fmt: skip
            else:
                print(f"step {step:>11,}  return {rows[-1]['mean_return']:9.1f}  "
                      f"{rows[-1]['steps_per_s']:>10,.0f} steps/s", flush=True)  # fmt: skip
            if diverged:
                if bar is not None:
                    bar.close()
                    bar = None
                _warn_diverged(rows, chunk_start)
                break
    except KeyboardInterrupt:
        if bar is not None:
            bar.close()
        _finish(rows, settings, out, "interrupted")
        if out is None:
            where = "nothing saved (no --out)"
        elif saved_step is None:
            where = "no chunk finished, nothing to resume"
        else:
            where = f"checkpoint at step {saved_step:,}; continue with: eqxppo train --resume {out}"
        print(f"eqxppo: interrupted; {where}", flush=True)
        return 130
    finally:
        signal.signal(signal.SIGINT, previous_handler)
    if bar is not None:
        bar.close()
    _finish(rows, settings, out, "diverged" if diverged else "finished")
    if rows:
        last = rows[-1]
        what = "eval return of the last finite network" if diverged else "final eval return"
        print(f"{settings['env']}: {what} {last['mean_return']:.1f} (min "
              f"{last['min_return']:.1f}, max {last['max_return']:.1f}, "
              f"{settings['eval_episodes']} episodes) after {step:,} steps; "
              f"{time.perf_counter() - start:.1f} s this session")  # fmt: skip
    else:
        print(f"nothing to do: the run is at step {step:,} of {total:,}.")
    if out is not None:
        files = ["config.json", "metrics.csv", "learning_curve.png", CHECKPOINT, "status.json",
                 *written_folders(out, args.logger)]  # fmt: skip
        print(f"wrote {out}/: {', '.join(f for f in files if (out / f).exists())}")
    return EXIT_DIVERGED if diverged else 0
