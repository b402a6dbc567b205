"""The same HPO budget through three AutoRL loops, side by side in one session.

    bash ../shared/peers/setup.sh          # once: ARLBench's venv
    python benchmarks/autorl.py            # 32 ppo_cc configurations x 3 seeds, 100k steps
    python benchmarks/autorl.py --configs 4 --seeds 1 --timesteps 20000   # a quick look

32 configurations sampled from ARLBench's `ppo_cc` space (seed 0), 3 seeds each,
CartPole-v1 with 8 envs, 100k steps, 10 evaluations of 10 episodes; wall clock including
compilation:

- (a) ARLBench's own `AutoRLEnv` (its venv, `$ANCHORS/arlbench`): one environment,
  `reset()` and `step(config, seed=s)` for every configuration and seed, one at a time;
- (b) eqxppo's `AutoRLEnv`, the same calls (its agent persists across `reset`, so each
  static structure compiles once);
- (c) eqxppo's `AutoRLPopulationEnv`: one `step` with all 32 configurations x 3 seeds,
  once per `--cpu-devices` count (default 1 and one per core: `eqxppo.use_cpu_cores`).

Columns: trainings, XLA compilations and their seconds (`jax.monitoring`), wall seconds,
the best configuration's mean objective over seeds, and (a)'s wall time over each row's.
Never run this beside another benchmark or the tests: the machine has 2 cores.
"""

import argparse
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
from sweep import COUNT_COMPILES  # this folder is on sys.path when run as a script


ROOT = Path(__file__).resolve().parent.parent
ANCHORS = Path(os.environ.get("ANCHORS", Path.home() / ".cache" / "ppo-anchors"))

# (a) and (b): the same script; only the import differs.
ONE_AT_A_TIME = COUNT_COMPILES + textwrap.dedent("""
    import json, sys, time, warnings
    warnings.filterwarnings("ignore")
    import numpy as np
    job = json.loads(sys.argv[1])
    if job["impl"] == "arlbench":
        from arlbench import AutoRLEnv
        from ConfigSpace import CategoricalHyperparameter, Configuration, ConfigurationSpace

        def action(config):
            # ARLBench's step validates a dict against PPO's full space, whose minibatch
            # sizes lack ppo_cc's 256 and 512; a Configuration passes through, as
            # ARLBench's own ppo_cc runs pass theirs.
            space = ConfigurationSpace()
            for k, v in config.items():
                space.add_hyperparameter(CategoricalHyperparameter(k, [v]))
            return Configuration(space, values=config)
    else:
        from eqxppo.autorl import AutoRLEnv
        action = lambda config: config
    start = time.perf_counter()
    env = AutoRLEnv({"algorithm": "ppo", "env_framework": "gymnax", "env_name": job["env"],
                     "n_envs": job["n_envs"], "n_total_timesteps": job["timesteps"],
                     "n_eval_steps": job["eval_steps"], "n_eval_episodes": job["eval_episodes"],
                     "n_steps": 1, "objectives": ["reward_mean"]})
    scores = []
    for config in job["configs"]:
        per_seed = []
        for seed in job["seeds"]:
            env.reset()
            _, objectives, _, _, _ = env.step(action(config), seed=seed)
            per_seed.append(float(objectives["reward_mean"]))
        scores.append(float(np.mean(per_seed)))
    print(json.dumps({"trainings": len(job["configs"]) * len(job["seeds"]),
                      "compiles": len(_compiles), "compile_s": sum(_compiles),
                      "wall_s": time.perf_counter() - start, "scores": scores}))
""")

POPULATION = COUNT_COMPILES + textwrap.dedent("""
    import json, sys, time
    import numpy as np
    import eqxppo
    from eqxppo.autorl import AutoRLPopulationEnv
    job = json.loads(sys.argv[1])
    eqxppo.use_cpu_cores(job["cpu_devices"])
    start = time.perf_counter()
    env = AutoRLPopulationEnv({"env_framework": "gymnax", "env_name": job["env"],
                               "n_envs": job["n_envs"], "n_total_timesteps": job["timesteps"],
                               "n_eval_steps": job["eval_steps"],
                               "n_eval_episodes": job["eval_episodes"], "n_steps": 1})
    env.reset()
    _, objectives, _, _, info = env.step(job["configs"], seeds=job["seeds"])
    values = np.array([o["reward_mean"] for o in objectives]).reshape(len(job["configs"]), -1)
    print(json.dumps({"trainings": values.size, "compiles": len(_compiles),
                      "compile_s": sum(_compiles), "programs": info["programs"],
                      "wall_s": time.perf_counter() - start,
                      "scores": values.mean(-1).tolist()}))
""")


def run(python: str, script: str, job: dict) -> dict:
    proc = subprocess.run([python, "-c", script, json.dumps(job)], capture_output=True,
                          text=True, env={**os.environ, "JAX_PLATFORMS": "cpu"})  # fmt: skip
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-3000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--configs", type=int, default=32)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--timesteps", type=int, default=100_000)
    parser.add_argument("--skip-arlbench", action="store_true")
    parser.add_argument("--jsonl", default=None)
    parser.add_argument("--cpu-devices", type=int, nargs="+", default=None,
                        help="a (c) row per CPU device count (default 1, per core)")  # fmt: skip
    args = parser.parse_args()
    import jax

    from eqxppo import PPO, cpu_cores
    from eqxppo.configspaces import get_search_space

    defaults = dict(PPO.get_default_hpo_config())
    samples = get_search_space("ppo_cc", seed=0).sample_configuration(max(args.configs, 2))
    plain = lambda v: v.item() if isinstance(v, np.generic) else v
    configs = [{**defaults, **{k: plain(v) for k, v in dict(c).items()}}
               for c in samples[: args.configs]]  # fmt: skip
    # Seeds from 1: ARLBench's step reads seed 0 as "no seed".
    job = {"env": "CartPole-v1", "n_envs": 8, "timesteps": args.timesteps, "eval_steps": 10,
           "eval_episodes": 10, "configs": configs,
           "seeds": list(range(1, args.seeds + 1))}  # fmt: skip
    rows = []
    if not args.skip_arlbench:
        arl = str(ANCHORS / "arlbench" / "bin" / "python")
        rows.append({"row": "(a) ARLBench AutoRLEnv, one at a time",
                     **run(arl, ONE_AT_A_TIME, {**job, "impl": "arlbench"})})  # fmt: skip
    rows.append({"row": "(b) eqxppo AutoRLEnv, one at a time",
                 **run(sys.executable, ONE_AT_A_TIME, {**job, "impl": "eqxppo"})})  # fmt: skip
    for n in args.cpu_devices or sorted({1, cpu_cores()}):
        rows.append({"row": f"(c) eqxppo AutoRLPopulationEnv, one step, {n} CPU device(s)",
                     **run(sys.executable, POPULATION, {**job, "cpu_devices": n})})  # fmt: skip
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()  # fmt: skip
    print(f"# {time.strftime('%Y-%m-%d')}, {os.cpu_count()} CPU cores, jax {jax.__version__}, "
          f"eqxppo {commit}: {args.configs} ppo_cc configurations x {args.seeds} seeds, "
          f"CartPole-v1 {args.timesteps:,} steps\n")  # fmt: skip
    print("| loop | trainings | XLA compilations | compile s | wall s | best objective | "
          "(a) / this |\n| --- | --- | --- | --- | --- | --- | --- |")  # fmt: skip
    ref = rows[0]["wall_s"] if rows[0]["row"].startswith("(a)") else None
    for r in rows:
        ratio = "-" if ref is None else f"{ref / r['wall_s']:.2f}x"
        print(f"| {r['row']} | {r['trainings']} | {r['compiles']} | {r['compile_s']:.1f} | "
              f"{r['wall_s']:.1f} | {max(r['scores']):.1f} | {ratio} |")  # fmt: skip
    if args.jsonl:
        with open(args.jsonl, "a") as f:
            for r in rows:
                f.write(json.dumps(r) + "\n")


if __name__ == "__main__":
    main()
