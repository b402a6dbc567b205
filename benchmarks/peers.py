"""eqxppo against ARLBench, rejax and PureJaxRL, side by side, one run after another.

    bash ../shared/peers/setup.sh           # once: the peers' venvs (a few minutes)
    python benchmarks/peers.py              # CartPole 500k; Acrobot, Pendulum, MinAtar 100k
    python benchmarks/peers.py --only CartPole-v1 --timesteps 100000

Every implementation is timed by the scripts in `../shared/peers/` (`$PEERS_DIR`), which
time eqxppo (`eqxppo_ppo.py`, this interpreter) exactly as they time the peers (their own
venvs under `$ANCHORS`, default `~/.cache/ppo-anchors`): the reference defaults (8 envs x
128 steps, 10 epochs, minibatch 64, 64x64 tanh; MinAtar observations flattened for the
MLP, as the peers run them), a first `train` call with compilation, then a second,
identical call timed as the run. Raw JSON lines go to `--jsonl`; the table at the end gives
each peer's steps/s and compile seconds and eqxppo's ratio to it. Never run this beside
another benchmark: the machine has 2 cores.
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import jax


ROOT = Path(__file__).resolve().parent.parent
PEERS_DIR = Path(os.environ.get("PEERS_DIR", ROOT.parent / "shared" / "peers"))
ANCHORS = Path(os.environ.get("ANCHORS", Path.home() / ".cache" / "ppo-anchors"))
# env -> total timesteps (the speed issue's CartPole budget is 500k).
TASKS = {"CartPole-v1": 500_000, "Acrobot-v1": 100_000, "Pendulum-v1": 100_000,
         "Breakout-MinAtar": 100_000}  # fmt: skip


def implementations() -> dict[str, tuple[list[str], dict[str, str]]]:
    """name -> (command prefix, extra environment) for every implementation set up here."""
    out = {"eqxppo": ([sys.executable, str(PEERS_DIR / "eqxppo_ppo.py")], {})}
    if (ANCHORS / "arlbench/bin/python").exists():
        arl = [str(ANCHORS / "arlbench/bin/python"), str(PEERS_DIR / "arlbench_ppo.py")]
        out["ARLBench"] = (arl, {})
    if (ANCHORS / "rejax/bin/python").exists():
        out["rejax"] = ([str(ANCHORS / "rejax/bin/python"), str(PEERS_DIR / "rejax_ppo.py")], {})
        if (ANCHORS / "purejaxrl/ppo.py").exists():
            out["PureJaxRL"] = (
                [str(ANCHORS / "rejax/bin/python"), str(PEERS_DIR / "purejaxrl_ppo.py")],
                {"PUREJAXRL_DIR": str(ANCHORS / "purejaxrl")},
            )
    return out


def run_one(name: str, command: list[str], extra_env: dict[str, str], env_name: str,
            timesteps: int, cap_s: int) -> dict:  # fmt: skip
    args = [*command, "--env", env_name, "--timesteps", str(timesteps)]
    start = time.perf_counter()
    try:
        proc = subprocess.run(args, capture_output=True, text=True, timeout=cap_s,
                              env={**os.environ, **extra_env})  # fmt: skip
    except subprocess.TimeoutExpired:
        return {"impl": name, "env": env_name, "error": f"over {cap_s} s"}
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = " | ".join(proc.stderr.strip().splitlines()[-3:])
        return {"impl": name, "env": env_name, "error": f"exit {proc.returncode}: {tail}"}
    row = json.loads(lines[-1])
    row.update(impl=name, env=env_name, wall_s=round(time.perf_counter() - start, 1))
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=list(TASKS), action="append")
    parser.add_argument("--timesteps", type=int, default=None, help="for every env")
    parser.add_argument("--cap", type=int, default=600, help="seconds per run")
    parser.add_argument("--jsonl", default="peers.jsonl")
    args = parser.parse_args()

    impls = implementations()
    print(f"implementations: {list(impls)}; peers scripts: {PEERS_DIR}", file=sys.stderr)
    rows = []
    with open(args.jsonl, "a") as f:
        for env_name in args.only or list(TASKS):
            for name, (command, extra) in impls.items():
                timesteps = args.timesteps or TASKS[env_name]
                print(f"[{time.strftime('%T')}] {name} {env_name} {timesteps}", file=sys.stderr)
                row = run_one(name, command, extra, env_name, timesteps, args.cap)
                row["machine"] = f"{os.cpu_count()} CPU cores, {jax.default_backend()}"
                f.write(json.dumps(row) + "\n")
                f.flush()
                rows.append(row)

    print("\n| env | impl (jax) | env steps | compile s | run s | steps/s | eqxppo speed-up "
          "| final return |")  # fmt: skip
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for env_name in args.only or list(TASKS):
        mine = next((r for r in rows if r["env"] == env_name and r["impl"] == "eqxppo"), {})
        for r in (r for r in rows if r["env"] == env_name):
            if "error" in r:
                print(f"| {env_name} | {r['impl']} | error: {r['error'][:80]} | | | | | |")
                continue
            ratio = mine.get("steps_per_s", 0) / r["steps_per_s"] if "steps_per_s" in mine else 0
            print(f"| {env_name} | {r['impl']} ({r.get('jax', '?')}) | {r['env_steps']:,} | "
                  f"{r.get('compile_s_est', r['compile_plus_run_s'] - r['run_s']):.2f} | "
                  f"{r['run_s']:.2f} | {r['steps_per_s']:,.0f} | {ratio:.2f}x | "
                  f"{r.get('final_eval_return_mean', float('nan')):.1f} |")  # fmt: skip


if __name__ == "__main__":
    main()
