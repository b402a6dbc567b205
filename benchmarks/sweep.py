"""Sweeps side by side: ARLBench one run after another against eqxppo's populations.

    bash ../shared/peers/setup.sh                      # once: ARLBench's venv
    python benchmarks/sweep.py --workload cc-2         # one workload (see WORKLOADS)
    python benchmarks/sweep.py --workload all          # all three (an hour and more here)

For each workload (configurations sampled with seed 0, CartPole-v1, 8 envs, 10
evaluations of 10 episodes, wall clock including compilation), one after another in
one session:

- (a) ARLBench: `PPO(config, env)`, `init`, `train`, for every configuration and seed,
  in ARLBench's own venv (`$ANCHORS/arlbench`), one process for all runs (its way: a
  program per run, as its `AutoRLEnv` and landscape scripts do);
- (b) eqxppo before the sweep work (commit `BASELINE`, checked out in a worktree): one
  `PPO.population`, one program per distinct static structure, groups compiled one
  after another;
- (c) eqxppo now with a cold persistent cache: traced switches, epoch groups merged by
  `plan_groups`, groups compiled side by side (`Population.compile`);
- (d) the same again with the cache (c) filled: programs loaded, not compiled.

(c) and (d) run with `--cpu-devices` XLA:CPU devices (`eqxppo.use_cpu_cores`; default
one per core, as `eqxppo sweep` does); (b) with one, as it did.

Columns: programs compiled, compile seconds (XLA's backend compilations, summed over
threads, from `jax.monitoring`), train seconds, wall seconds, mean final return, and
(a)'s wall time over each row's. Never run this beside another benchmark or the tests:
the machine has 2 cores.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np


ROOT = Path(__file__).resolve().parent.parent
ANCHORS = Path(os.environ.get("ANCHORS", Path.home() / ".cache" / "ppo-anchors"))
BASELINE = "d7e0ab6"  # the last commit before traced switches, epoch planning and caching
ENV, N_ENVS = "CartPole-v1", 8
EVAL = {"n_eval_steps": 10, "n_eval_episodes": 10}
# name -> (search space, configurations, seeds, timesteps)
WORKLOADS = {
    "landscape": ("full", 16, 10, 100_000),  # ARLBench's landscape protocol: 10 seeds
    "full-2": ("full", 16, 2, 100_000),  # little to vectorise: compilation decides
    "cc-3": ("ppo_cc", 32, 3, 100_000),  # ARLBench's classic-control HPO space
    "cc-2": ("ppo_cc", 8, 2, 100_000),  # a quick check of the machinery
    "tiny": ("full", 2, 1, 10_000),  # does it run at all
}


def sample(space_name: str, n: int) -> list[dict]:
    from eqxppo.configspaces import get_search_space

    space = get_search_space(space_name, seed=0)
    plain = lambda v: v.item() if isinstance(v, np.generic) else v
    return [{k: plain(v) for k, v in dict(c).items()} for c in space.sample_configuration(n)]


# Prepended to every worker script (here and in autorl.py): sums XLA's compile seconds.
COUNT_COMPILES = textwrap.dedent("""
    import jax, threading
    _lock, _compiles = threading.Lock(), []
    def _listen(event, duration, **kw):
        if event == "/jax/core/compile/backend_compile_duration":
            with _lock:
                _compiles.append(duration)
    jax.monitoring.register_event_duration_secs_listener(_listen)
""")

# Both workers print one JSON line: programs, compile_s, train_s, wall_s, final returns.
ARLBENCH_WORKER = COUNT_COMPILES + textwrap.dedent("""
    import json, sys, time, warnings
    warnings.filterwarnings("ignore")
    import numpy as np
    from arlbench.core.algorithms import PPO
    from arlbench.core.environments import make_env
    job = json.loads(sys.argv[1])
    start, finals, train_s = time.perf_counter(), [], 0.0
    for config in job["configs"]:
        for seed in job["seeds"]:
            env = make_env("gymnax", job["env"], n_envs=job["n_envs"], seed=seed)
            algo = PPO({**dict(PPO.get_default_hpo_config()), **config}, env)
            state = algo.init(jax.random.PRNGKey(seed))
            _, result = algo.train(state.runner_state, None,
                                   n_total_timesteps=job["timesteps"], **job["eval"])
            finals.append(float(np.asarray(result.eval_rewards)[-1].mean()))
    wall = time.perf_counter() - start
    print(json.dumps({"programs": len(job["configs"]) * len(job["seeds"]),
                      "xla_compiles": len(_compiles), "compile_s": sum(_compiles),
                      "wall_s": wall, "train_s": None, "finals": finals}))
""")

EQXPPO_WORKER = COUNT_COMPILES + textwrap.dedent("""
    import inspect, json, sys, time
    import jax.random as jr
    import numpy as np
    import eqxppo
    from eqxppo import PPO, make_env
    job = json.loads(sys.argv[1])
    if "cpu_devices" in job:  # rows (c) and (d); None: one per core
        eqxppo.use_cpu_cores(job["cpu_devices"])
    if job["cache"]:
        eqxppo.enable_compilation_cache(job["cache"], min_compile_seconds=0)
    start = time.perf_counter()
    env = make_env("gymnax", job["env"], n_envs=job["n_envs"])
    options = {}
    if "planned_timesteps" in inspect.signature(eqxppo.Population).parameters:
        options["planned_timesteps"] = job["timesteps"]
    pop = PPO.population(job["configs"], env, seeds=job["seeds"], **options)
    state = pop.init(jr.key(0))
    budget = {"n_total_timesteps": job["timesteps"], **job["eval"]}
    if hasattr(pop, "compile"):
        pop.compile(state, **budget)
    before_train = time.perf_counter()
    state, result = pop.train(state, **budget)
    rewards = np.asarray(jax.block_until_ready(result.eval_rewards))
    end = time.perf_counter()
    print(json.dumps({"programs": len(pop.groups), "xla_compiles": len(_compiles),
                      "compile_s": sum(_compiles), "train_s": end - before_train,
                      "wall_s": end - start, "finals": rewards[:, -1].mean(-1).tolist()}))
""")


def run(command: list[str], job: dict, env: dict | None = None, cwd: Path | None = None) -> dict:
    # `python -c` puts the working directory first on sys.path: the baseline runs from
    # its own worktree, or it would import this checkout's eqxppo.
    proc = subprocess.run(
        [*command, json.dumps(job)], capture_output=True, text=True, cwd=cwd or ROOT,
        env={**os.environ, "JAX_PLATFORMS": "cpu", **(env or {})},
    )  # fmt: skip
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-3000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def baseline_tree() -> Path:
    tree = Path(tempfile.gettempdir()) / f"eqxppo-{BASELINE}"
    if not tree.exists():
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree),
                        BASELINE], check=True, capture_output=True)  # fmt: skip
    return tree


def workload(
    name: str, skip_arlbench: bool, only: str | None = None, cpu_devices: int | None = None
) -> list[dict]:
    space, n_configs, n_seeds, timesteps = WORKLOADS[name]
    job = {"configs": sample(space, n_configs), "seeds": list(range(n_seeds)), "env": ENV,
           "n_envs": N_ENVS, "timesteps": timesteps, "eval": EVAL, "cache": None}  # fmt: skip
    rows = []
    if not skip_arlbench and only in (None, "a"):
        python = ANCHORS / "arlbench" / "bin" / "python"
        rows.append({"row": "(a) ARLBench, one run after another",
                     **run([str(python), "-c", ARLBENCH_WORKER], job)})  # fmt: skip
    me = [sys.executable, "-c", EQXPPO_WORKER]
    if only in (None, "b"):
        tree = baseline_tree()
        rows.append({"row": f"(b) eqxppo {BASELINE} (before)",
                     **run(me, job, {"PYTHONPATH": str(tree)}, cwd=tree)})  # fmt: skip
    if only not in (None, "cd"):
        return rows
    with tempfile.TemporaryDirectory() as cache:
        job = {**job, "cache": cache, "cpu_devices": cpu_devices}
        rows.append({"row": "(c) eqxppo now, cold cache", **run(me, job)})
        rows.append({"row": "(d) eqxppo now, warm cache", **run(me, job)})
    return rows


def table(name: str, rows: list[dict]) -> str:
    space, n_configs, n_seeds, timesteps = WORKLOADS[name]
    head = (f"{name}: {n_configs} configurations ({space} space, seed 0) x {n_seeds} seeds, "
            f"{ENV} {timesteps:,} steps\n\n| run | programs | compile s | train s | wall s | "
            "mean final return | (a) / this |\n"
            "| --- | --- | --- | --- | --- | --- | --- |")  # fmt: skip
    ref = rows[0]["wall_s"] if rows[0]["row"].startswith("(a)") else None
    lines = [head]
    for r in rows:
        train = "-" if r["train_s"] is None else f"{r['train_s']:.1f}"
        ratio = "-" if ref is None else f"{ref / r['wall_s']:.2f}x"
        lines.append(f"| {r['row']} | {r['programs']} | {r['compile_s']:.1f} | {train} | "
                     f"{r['wall_s']:.1f} | {np.mean(r['finals']):.1f} | {ratio} |")  # fmt: skip
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workload", default="cc-2", choices=[*WORKLOADS, "all"])
    parser.add_argument("--skip-arlbench", action="store_true")
    parser.add_argument("--only", default=None, choices=["a", "b", "cd"],
                        help="run only these rows")  # fmt: skip
    parser.add_argument("--jsonl", default=None, help="append raw rows here")
    parser.add_argument("--cpu-devices", type=int, default=None,
                        help="CPU devices of rows (c) and (d) (default: one per core)")  # fmt: skip
    args = parser.parse_args()
    import jax

    names = ["landscape", "full-2", "cc-3"] if args.workload == "all" else [args.workload]
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()  # fmt: skip
    devices = args.cpu_devices or os.cpu_count()
    print(f"# {time.strftime('%Y-%m-%d')}, {os.cpu_count()} CPU cores, jax {jax.__version__}, "
          f"eqxppo {commit}, (c) and (d) on {devices} CPU device(s)\n")  # fmt: skip
    for name in names:
        rows = workload(name, args.skip_arlbench, args.only, args.cpu_devices)
        if args.jsonl:
            with open(args.jsonl, "a") as f:
                for r in rows:
                    f.write(json.dumps({"workload": name, **r}) + "\n")
        print(table(name, rows) + "\n", flush=True)


if __name__ == "__main__":
    main()
