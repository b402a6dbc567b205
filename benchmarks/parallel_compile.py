"""How compiling a population's groups side by side scales with threads.

    python benchmarks/parallel_compile.py [--groups 4] [--workers 1 2]

Builds a population of `--groups` configurations with distinct `n_steps` (one program
each; CartPole-v1, 8 envs, the default MLP) and times `Population.compile` in a fresh
process per worker count, without the persistent cache: tracing and lowering (Python,
serial) plus XLA's compilations (in the thread pool). Prints seconds and the speed-up
over one worker. Never run this beside another benchmark or the tests.
"""

import argparse
import json
import os
import subprocess
import sys
import textwrap


WORKER = textwrap.dedent("""
    import json, sys, time
    import jax, jax.random as jr
    from eqxppo import PPO, make_env
    groups, workers = int(sys.argv[1]), int(sys.argv[2])
    durations = []
    jax.monitoring.register_event_duration_secs_listener(
        lambda e, d, **kw: durations.append(d)
        if e == "/jax/core/compile/backend_compile_duration" else None)
    env = make_env("gymnax", "CartPole-v1", n_envs=8)
    configs = [{"n_steps": n} for n in (32, 64, 80, 128, 256, 512, 5)[:groups]]
    pop = PPO.population(configs, env, seeds=(0, 1), compile_workers=workers)
    state = pop.init(jr.key(0))
    before = len(durations)
    start = time.perf_counter()
    pop.compile(state, n_total_timesteps=100_000, n_eval_steps=10, n_eval_episodes=10)
    wall = time.perf_counter() - start
    print(json.dumps({"wall_s": wall, "xla_s": sum(durations[before:]),
                      "programs": len(durations) - before}))
""")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--groups", type=int, default=4)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    env.pop("JAX_COMPILATION_CACHE_DIR", None)
    rows = []
    for workers in args.workers:
        out = subprocess.run([sys.executable, "-c", WORKER, str(args.groups), str(workers)],
                             capture_output=True, text=True, env=env, check=True)  # fmt: skip
        rows.append({"workers": workers, **json.loads(out.stdout.strip().splitlines()[-1])})
    base = rows[0]["wall_s"]
    print(f"{args.groups} groups, {os.cpu_count()} CPU cores\n")
    print("| workers | compile wall s | XLA compile s (summed over threads) | speed-up |")
    print("| --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['workers']} | {r['wall_s']:.1f} | {r['xla_s']:.1f} | "
              f"{base / r['wall_s']:.2f}x |")  # fmt: skip


if __name__ == "__main__":
    main()
