"""Population throughput: one compiled program for many configurations (not a timed test).

    python benchmarks/population.py                         # sizes 1, 8, 64 + sequential 64
    python benchmarks/population.py --sizes 1 8 --sequential 8 --timesteps 20000

CartPole-v1, ARLBench's default static configuration, continuous hyperparameters
sampled from the HPO space (one configuration per member, seed 0). For each population
size: compilations and compile seconds of the first `train` call, seconds of a second,
identical call, and aggregate env steps per second. Then the same configurations one
after another as ARLBench runs them, a fresh compile each (`jax.clear_caches()` before
every run), and one after another through one `PPO` with `update_hpo_config` (compiled
once). One JSON line per row, then a Markdown table.
"""

import argparse
import json
import platform
import time

import jax
import jax.random as jr
import numpy as np

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
    steps = int(np.asarray(trained.groups[0].global_step).sum())
    return {
        "mode": "population",
        "members": len(configs),
        "compilations": n_compiles,
        "compile_s": round(first_s - run_s, 2),
        "run_s": round(run_s, 2),
        "env_steps": steps,
        "steps_per_s": round(steps / run_s),
        "median_final_return": round(float(np.median(result.eval_rewards[:, -1].mean(-1))), 1),
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
        "members": len(configs),
        "compilations": n_compiles,
        "compile_s": None,
        "run_s": round(total_s, 2),  # includes compilation: what a user waits
        "env_steps": steps,
        "steps_per_s": round(steps / total_s),
        "median_final_return": round(float(np.median(finals)), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 8, 64])
    parser.add_argument("--sequential", type=int, default=64, help="0 to skip")
    parser.add_argument("--timesteps", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    env = make_env("gymnax", "CartPole-v1", n_envs=8)
    machine = {
        "jax": jax.__version__,
        "backend": jax.default_backend(),
        "devices": jax.device_count(),
        "device_kind": jax.devices()[0].device_kind,
        "python": platform.python_version(),
    }
    rows = [population_row(sample_configs(n, args.seed), env, args.timesteps) for n in args.sizes]
    for row in rows:
        print(json.dumps({**row, **machine}), flush=True)
    if args.sequential:
        configs = sample_configs(args.sequential, args.seed)
        for recompile in (False, True):
            rows.append(sequential_row(configs, env, args.timesteps, recompile))
            print(json.dumps({**rows[-1], **machine}), flush=True)

    print("\n| mode | members | compilations | compile s | run s | env steps | steps/s | "
          "median final return |")  # fmt: skip
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(f"| {r['mode']} | {r['members']} | {r['compilations']} | {r['compile_s'] or '-'} "
              f"| {r['run_s']} | {r['env_steps']:,} | {r['steps_per_s']:,} | "
              f"{r['median_final_return']} |")  # fmt: skip


if __name__ == "__main__":
    main()
