"""ARLBench's experiments, wall time: eqxppo measured, ARLBench estimated from a measured run.

Three of the paper's protocols on CartPole (gymnax), ARLBench's default PPO
configuration and the `ppo_cc` search space, `T` environment steps per run:

- random search: 32 trials x 3 seeds (`tune_rs`);
- PBT: 32 configurations x 3 seeds, 10 iterations of `T / 10` steps (`tune_pbt`);
- the landscape: 16 configurations x 10 seeds (`random_runs`, `autorl.seed=range(10)`).

eqxppo runs each as `eqxppo arlbench` would (`autorl.tune` and `autorl.pbt`, batches of
8 configurations as populations, one XLA:CPU device per core). ARLBench runs every
(trial, seed) as a job that builds and compiles its algorithm and trains it; its wall
time is estimated from one measured run of `../shared/peers/arlbench_ppo.py` in
ARLBench's venv (compile + run of `T` steps; a PBT job compiles, then trains `T / 10`),
times the number of jobs: Hydra, Hypersweeper and process start-up are left out, so
the estimate is ARLBench's best case.

    python benchmarks/arlbench_experiments.py [--timesteps 50000] \
        [--arlbench-python ~/.cache/ppo-anchors/arlbench/bin/python]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


PEERS = Path(os.environ.get("PEERS_DIR", Path(__file__).resolve().parents[2] / "shared" / "peers"))
ENV = {"env_framework": "gymnax", "env_name": "CartPole-v1", "n_envs": 8,
       "n_eval_episodes": 10}  # fmt: skip


def arlbench_run(python: str, timesteps: int) -> dict:
    """One ARLBench PPO run, timed by the peers' script (compile + run, then run)."""
    out = subprocess.run(
        [python, str(PEERS / "arlbench_ppo.py"), "--env", "CartPole-v1", "--timesteps",
         str(timesteps)], check=True, capture_output=True, text=True,
    )  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timesteps", type=int, default=50_000)
    parser.add_argument(
        "--arlbench-python", default=str(Path.home() / ".cache/ppo-anchors/arlbench/bin/python")
    )
    args = parser.parse_args()
    import jax

    import eqxppo

    eqxppo.use_cpu_cores()
    from eqxppo.autorl import pbt, tune
    from eqxppo.configspaces import get_search_space

    t = args.timesteps
    space = lambda: get_search_space("ppo_cc", seed=0)  # noqa: E731
    arl = arlbench_run(args.arlbench_python, t)
    compile_s = arl["compile_plus_run_s"] - arl["run_s"]
    per_job = arl["compile_plus_run_s"]
    per_pbt_job = compile_s + arl["run_s"] / 10
    print(
        f"machine: {jax.device_count()} XLA:CPU devices, jax {jax.__version__}; "
        f"T = {t:,} steps; ARLBench's one run: {arl['compile_plus_run_s']:.1f} s "
        f"(compile {compile_s:.1f} s, run {arl['run_s']:.1f} s)"
    )
    print("| experiment | eqxppo (measured) | ARLBench (estimated) | ratio |")
    print("| --- | --- | --- | --- |", flush=True)

    def row(name: str, start: float, theirs: float) -> None:
        ours = time.perf_counter() - start
        print(f"| {name} | {ours:.0f} s | {theirs:.0f} s | {theirs / ours:.1f}x |", flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        start = time.perf_counter()
        tune("random", space=space(), env_config=ENV, n_trials=32, batch=8, timesteps=t,
             seeds=(0, 1, 2), out=root / "rs")  # fmt: skip
        row("random search, 32 x 3 seeds", start, 96 * per_job)
        start = time.perf_counter()
        for seed in range(10):
            tune("random", space=space(), env_config={**ENV, "seed": seed}, n_trials=16,
                 batch=8, timesteps=t, seeds=(seed,), out=root / f"landscape_{seed}")  # fmt: skip
        row("landscape, 16 x 10 seeds", start, 160 * per_job)
        start = time.perf_counter()
        pbt(space=space(), env_config=ENV, population_size=32, config_interval=t // 10,
            iterations=10, seeds=(0, 1, 2), out=root / "pbt")  # fmt: skip
        row("PBT, 32 x 3 seeds, 10 iterations", start, 96 * 10 * per_pbt_job)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
