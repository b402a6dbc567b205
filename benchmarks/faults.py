"""A fault-injection pass: counts, not timings (run it alone; it kills processes).

What `tests/test_reliability.py` asserts once per fault, repeated at random moments:

- `train`: `kill -9` at random moments of a 20-chunk run (writes of rows and checkpoints
  included), resumed until it finishes; the rows compared, as text, with an
  uninterrupted run's; leftover temporary files counted.
- `tune` (random search) and a PBT study: `kill -9` at random moments, rerun until the
  study finishes; the trial table compared with an uninterrupted study's.
- a second process on a folder in use; a table of bad inputs to every command, each
  expected as one line on stderr with status 2.

    python benchmarks/faults.py [--kills 10] [--out /tmp/faults]

Prints one line per fault kind: tried, survived, lost.
"""

import argparse
import csv
import json
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np


CMD = [sys.executable, "-m", "eqxppo"]
TRAIN = ["train", "--timesteps", "204800", "--chunks", "50", "--n-envs", "4",
         "--eval-episodes", "2", "--set", "n_steps=64", "--set", "hidden_size=16"]  # fmt: skip
TUNE = ["tune", "--optimizer", "random", "--trials", "8", "--batch", "2", "--timesteps",
        "2048", "--n-envs", "4", "--seeds", "1"]  # fmt: skip
PBT = textwrap.dedent("""
    import sys
    from eqxppo.autorl import pbt
    from eqxppo.configspaces import get_search_space
    pbt(space=get_search_space("ppo_cc"), out=sys.argv[1], population_size=4,
        config_interval=1024, iterations=5, seeds=(0, 1), base_config={"n_steps": 32},
        env_config={"env_framework": "gymnax", "env_name": "CartPole-v1", "n_envs": 4,
                    "n_eval_episodes": 2, "nas_config": {"hidden_size": 16}})
""")


def _rows(path: Path) -> list[list[str]]:
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    drop = {rows[0].index(c) for c in ("wall_s", "steps_per_s") if c in rows[0]}
    return [[v for j, v in enumerate(r) if j not in drop] for r in rows]


def _kill_loop(argv: list[str], marker: Path, kills: int, rng: np.random.Generator) -> int:
    """Start `argv`, kill it a random moment after `marker` changes, until it finishes
    by itself or `kills` kills; returns the kills."""
    done = 0
    while done < kills:
        before = marker.stat().st_mtime_ns if marker.exists() else None
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 300
        while proc.poll() is None and time.monotonic() < deadline:
            if marker.exists() and marker.stat().st_mtime_ns != before:
                time.sleep(float(rng.uniform(0.0, 1.0)))
                break
            time.sleep(0.005)
        if proc.poll() is not None:
            return done
        proc.kill()
        proc.wait()
        done += 1
    return done


def _trial_key(path: Path) -> list[tuple]:
    lines = path.read_text().splitlines()
    return [(t["config"], t["budget"], t["objective"], t["status"])
            for t in map(json.loads, lines)]  # fmt: skip


def train_kills(root: Path, kills: int, rng: np.random.Generator) -> str:
    reference, out = root / "train_reference", root / "train_killed"
    subprocess.run([*CMD, *TRAIN, "--out", str(reference)], check=True, capture_output=True)
    first = [*CMD, *TRAIN, "--out", str(out)]
    resume = [*CMD, "train", "--resume", str(out)]
    n = _kill_loop(first, out / "checkpoint.eqx", 1, rng)
    n += _kill_loop(resume, out / "checkpoint.eqx", kills - 1, rng)
    subprocess.run(resume, check=True, capture_output=True)
    rows, expected = _rows(out / "metrics.csv"), _rows(reference / "metrics.csv")
    lost = sum(r not in rows for r in expected)
    extra = len(rows) - len(expected)
    leftovers = len(list(out.glob(".*.tmp")))
    same = rows == expected
    return (
        f"train: {n} kills, resumed to {'the same' if same else 'OTHER'} rows "
        f"({lost} lost, {extra} extra, {leftovers} temporary files left)"
    )


def study_kills(root: Path, kills: int, rng: np.random.Generator) -> str:
    reference, out = root / "tune_reference", root / "tune_killed"
    subprocess.run([*CMD, *TUNE, "--out", str(reference)], check=True, capture_output=True)
    argv = [*CMD, *TUNE, "--out", str(out)]
    n = _kill_loop(argv, out / "trials.jsonl", kills, rng)
    subprocess.run(argv, check=True, capture_output=True)
    same = _trial_key(out / "trials.jsonl") == _trial_key(reference / "trials.jsonl")
    return f"tune (random): {n} kills, resumed to {'the same' if same else 'ANOTHER'} table"


def pbt_kills(root: Path, kills: int, rng: np.random.Generator) -> str:
    reference, out = root / "pbt_reference", root / "pbt_killed"
    run = lambda folder: [sys.executable, "-c", PBT, str(folder)]
    subprocess.run(run(reference), check=True, capture_output=True)
    n = _kill_loop(run(out), out / "trials.jsonl", kills, rng)
    subprocess.run(run(out), check=True, capture_output=True)

    def strip(path: Path) -> list[dict]:
        return [{**t, "seconds": 0} for t in map(json.loads, path.read_text().splitlines())]

    same = strip(out / "trials.jsonl") == strip(reference / "trials.jsonl")
    return f"pbt: {n} kills, resumed to {'the same' if same else 'ANOTHER'} table"


def bad_inputs(root: Path) -> str:
    a_file = root / "a_file"
    a_file.write_text("x")
    garbage = root / "garbage.yaml"
    garbage.write_text("learning_rate: [1, 2\n  : :")
    binary = root / "binary"
    binary.write_bytes(bytes(range(256)))
    (root / "broken_run").mkdir()
    (root / "broken_run" / "checkpoint.eqx").write_bytes(bytes(range(256)))
    quick = ["--trials", "1", "--timesteps", "64", "--n-envs", "2"]
    cases = {
        "train --out under a file": ["train", "--out", str(a_file / "x")],
        "train --config garbage": ["train", "--config", str(garbage)],
        "train --config binary": ["train", "--config", str(binary)],
        "train --config missing": ["train", "--config", str(root / "nope.json")],
        "train zero timesteps": ["train", "--timesteps", "0"],
        "train fractional timesteps": ["train", "--timesteps", "1.5"],
        "train unknown key": ["train", "--set", "nope=1"],
        "train bad value": ["train", "--set", "learning_rate=abc"],
        "train negative lr": ["train", "--set", "learning_rate=-1"],
        "train zero envs": ["train", "--n-envs", "0"],
        "train unknown env": ["train", "--env", "NoSuchEnv-v0"],
        "train unknown framework": ["train", "--framework", "nope"],
        "train resume nothing": ["train", "--resume", str(root / "nowhere")],
        "evaluate nothing": ["evaluate", str(root / "nowhere")],
        "evaluate a broken checkpoint": ["evaluate", str(root / "broken_run")],
        "train resume a broken checkpoint": ["train", "--resume", str(root / "broken_run")],
        "sweep --out under a file": ["sweep", "--n-configs", "1", "--out", str(a_file / "s")],
        "sweep zero configs": ["sweep", "--n-configs", "0"],
        "tune --out under a file": ["tune", *quick, "--out", str(a_file / "t")],
        "tune zero trials": ["tune", "--trials", "0", "--out", str(root / "t0")],
        "tune space garbage": ["tune", *quick, "--space", str(garbage), "--out",
                               str(root / "t1")],
        "tune space missing": ["tune", *quick, "--space", str(root / "nope.yaml"), "--out",
                               str(root / "t2")],
        "tune unknown optimizer": ["tune", "--optimizer", "nope"],
        "arlbench no folder": ["arlbench", str(root / "no_tree")],
        "arlbench a file": ["arlbench", str(a_file)],
    }  # fmt: skip
    one_line, failures = 0, []
    for name, argv in cases.items():
        proc = subprocess.run([*CMD, *argv], capture_output=True, text=True, timeout=300)
        err = proc.stderr.strip().splitlines()
        ok = proc.returncode == 2 and len(err) == 1 and err[0].startswith("eqxppo")
        one_line += ok
        if not ok:
            failures.append(f"{name} (status {proc.returncode}, {len(err)} lines)")
    return f"bad inputs: {len(cases)} tried, {one_line} answered in one line with status 2" + (
        f"; not: {', '.join(failures)}" if failures else ""
    )


def second_process(root: Path) -> str:
    out = root / "busy"
    long_run = [*TRAIN, "--timesteps", "20480000"]  # the last flag wins: minutes of training
    holder = subprocess.Popen([*CMD, *long_run, "--out", str(out)], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)  # fmt: skip
    while not (out / "config.json").exists() and holder.poll() is None:
        time.sleep(0.05)
    refused = 0
    for argv in (["train", "--out", str(out)], ["train", "--resume", str(out)],
                 ["tune", "--trials", "1", "--out", str(out)]):  # fmt: skip
        proc = subprocess.run([*CMD, *argv], capture_output=True, text=True)
        refused += proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
    alive = holder.poll() is None
    holder.kill()
    holder.wait()
    return (
        f"second process on a folder in use: 3 tried, {refused} refused in one line "
        f"(the first {'still training' if alive else 'HAD ENDED'})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--out", type=Path, default=Path("/tmp/eqxppo_faults"))
    args = parser.parse_args()
    shutil.rmtree(args.out, ignore_errors=True)
    args.out.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for check in (lambda: bad_inputs(args.out), lambda: second_process(args.out),
                  lambda: train_kills(args.out, args.kills, rng),
                  lambda: study_kills(args.out, args.kills, rng),
                  lambda: pbt_kills(args.out, args.kills, rng)):  # fmt: skip
        start = time.perf_counter()
        print(f"{check()}  [{time.perf_counter() - start:.0f} s]", flush=True)


if __name__ == "__main__":
    main()
