"""Population throughput: one compiled program for many configurations (not a timed test).

    python benchmarks/population.py          # 1 and 2 CPU devices: sizes 1, 8, 64 + sequential 64
    python benchmarks/population.py --cpu-devices 1 2 --sizes 1 64 --sequential 0 --timesteps 20000

CartPole-v1, ARLBench's default static configuration, continuous hyperparameters
sampled from the HPO space (one configuration per member, seed 0). For each number of
XLA:CPU devices (`eqxppo.use_cpu_cores`, a fresh process each): a single `PPO` run, then
for each population size compilations and compile seconds of the first `train` call,
seconds of a second, identical call, and aggregate env steps per second of the real
members (a padding row a population trains beside them is not counted). Then, in the
first process, the same configurations one after another as ARLBench runs them, a fresh
compile each (`jax.clear_caches()` before every run), and one after another through one
`PPO` with `update_hpo_config` (compiled once). One JSON line per row, then a Markdown
table whose last column is each row's steps/s over its process's single run.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import time

import jax
import jax.random as jr
import numpy as np

import eqxppo
from eqxppo import PPO, make_env
from eqxppo.configspaces import HPO_KEYS, PPOConfig


_compiles: list[float] = []
jax.monitoring.register_event_duration_secs_listener(
    lambda event, duration, **kw: (
        _compiles.append(duration)
        if event == "/jax/core/compile/backend_compile_duration"
        else None
    )
)
STATIC = tuple(PPOConfig.__dataclass_fields__)  # the hyperparameters that set the program


def sample_configs(n: int, seed: int) -> list[dict]:
    """`n` configurations: the default static structure, sampled continuous values."""
    default = dict(PPO.get_default_hpo_config())
    samples = PPO.get_hpo_config_space(seed=seed).sample_configuration(max(n, 2))[:n]
    out = []
    for sample in samples:
        config = {k: sample[k] for k in HPO_KEYS if k not in STATIC}
        out.append({**config, **{k: default[k] for k in STATIC}})
    return out


def _timed(fn):
    start, n_compiles = time.perf_counter(), len(_compiles)
    out = jax.block_until_ready(fn())
    return out, time.perf_counter() - start, len(_compiles) - n_compiles


def population_row(configs: list[dict], env, timesteps: int) -> dict:
    pop = PPO.population(configs, env, seeds=(0,))
    state = pop.init(jr.key(0))
    (_, result), first_s, n_compiles = _timed(lambda: pop.train(state, timesteps, 10, 10))
    (trained, _), run_s, _ = _timed(lambda: pop.train(state, timesteps, 10, 10))
    real = pop.layout.real_rows(0, trained.groups[0])  # not the padding rows
    steps = int(np.asarray(real.global_step).sum())
    return {
        "mode": "population",
        "devices": pop.layout.meshes[0].size,
        "members": len(configs),
        "compilations": n_compiles,
        "compile_s": round(first_s - run_s, 2),
        "run_s": round(run_s, 2),
        "env_steps": steps,
        "steps_per_s": round(steps / run_s),
        "median_final_return": round(float(np.median(result.eval_rewards[:, -1].mean(-1))), 1),
    }


def single_row(config: dict, env, timesteps: int) -> dict:
    agent = PPO(config, env)
    state = agent.init(jr.fold_in(jr.key(0), 0))
    (_, _), first_s, n_compiles = _timed(lambda: agent.train(*state, n_total_timesteps=timesteps))
    (trained, result), run_s, _ = _timed(lambda: agent.train(*state, n_total_timesteps=timesteps))
    steps = int(trained.runner_state.global_step)
    return {
        "mode": "single run",
        "devices": 1,
        "members": 1,
        "compilations": n_compiles,
        "compile_s": round(first_s - run_s, 2),
        "run_s": round(run_s, 2),
        "env_steps": steps,
        "steps_per_s": round(steps / run_s),
        "median_final_return": round(float(result.eval_rewards[-1].mean()), 1),
    }


def sequential_row(configs: list[dict], env, timesteps: int, recompile: bool) -> dict:
    agent = PPO(configs[0], env)
    total_s, steps, n_compiles, finals = 0.0, 0, 0, []
    for config in configs:
        if recompile:
            jax.clear_caches()  # as ARLBench: every configuration compiles anew
            agent = PPO(config, env)
        else:
            agent.update_hpo_config(config)
        state = agent.init(jr.fold_in(jr.key(0), 0))  # the key of population member (i, seed 0)
        (state, result), seconds, compiled = _timed(
            lambda: agent.train(*state, n_total_timesteps=timesteps)
        )
        total_s += seconds
        n_compiles += compiled
        steps += int(state.runner_state.global_step)
        finals.append(float(result.eval_rewards[-1].mean()))
    return {
        "mode": "sequential, compile each" if recompile else "sequential, update_hpo_config",
        "devices": 1,
        "members": len(configs),
        "compilations": n_compiles,
        "compile_s": None,
        "run_s": round(total_s, 2),  # includes compilation: what a user waits
        "env_steps": steps,
        "steps_per_s": round(steps / total_s),
        "median_final_return": round(float(np.median(finals)), 1),
    }


def child(args: argparse.Namespace, n_devices: int, first: bool) -> list[dict]:
    """The rows of one process with `n_devices` CPU devices."""
    eqxppo.use_cpu_cores(n_devices)
    env = make_env("gymnax", "CartPole-v1", n_envs=8)
    machine = {
        "jax": jax.__version__,
        "backend": jax.default_backend(),
        "cpu_devices": n_devices,
        "cores": eqxppo.cpu_cores(),
        "device_kind": jax.devices()[0].device_kind,
        "python": platform.python_version(),
    }
    rows = [single_row(sample_configs(1, args.seed)[0], env, args.timesteps)]
    rows += [population_row(sample_configs(n, args.seed), env, args.timesteps)
             for n in args.sizes]  # fmt: skip
    if first and args.sequential:
        configs = sample_configs(args.sequential, args.seed)
        rows += [sequential_row(configs, env, args.timesteps, recompile)
                 for recompile in (False, True)]  # fmt: skip
    single = rows[0]["steps_per_s"]
    return [{**row, **machine, "over_single": round(row["steps_per_s"] / single, 2)}
            for row in rows]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpu-devices", type=int, nargs="+", default=[1, 2],
                        help="XLA:CPU device counts, one process each")  # fmt: skip
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 8, 64])
    parser.add_argument("--sequential", type=int, default=64, help="0 to skip")
    parser.add_argument("--timesteps", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child is not None:  # one process's rows, as JSON lines
        for row in child(args, args.child, first=args.child == args.cpu_devices[0]):
            print(json.dumps(row), flush=True)
        return
    rows = []
    for n in args.cpu_devices:  # a process each: the device count is fixed per process
        out = subprocess.run([sys.executable, *sys.argv, "--child", str(n)], check=True,
                             stdout=subprocess.PIPE, text=True, env=os.environ).stdout  # fmt: skip
        for line in out.splitlines():
            if line.startswith("{"):
                rows.append(json.loads(line))
                print(line, flush=True)

    print("\n| CPU devices | mode | members | compilations | compile s | run s | env steps | "
          "steps/s | over the single run | median final return |")  # fmt: skip
    print("| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(f"| {r['cpu_devices']} | {r['mode']} | {r['members']} | {r['compilations']} "
              f"| {r['compile_s'] or '-'} | {r['run_s']} | {r['env_steps']:,} "
              f"| {r['steps_per_s']:,} | {r['over_single']}x "
              f"| {r['median_final_return']} |")  # fmt: skip


if __name__ == "__main__":
    main()
