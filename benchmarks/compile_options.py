"""What XLA:CPU's LLVM optimisation level costs in compilation and buys in training.

    python benchmarks/compile_options.py            # levels 3 (XLA's default) and 1, twice
    python benchmarks/compile_options.py --levels 3 2 1 0 --reps 1 --seeds 2

One population program (CartPole-v1, 8 envs, `n_steps` 128, minibatch 64, 10 epochs,
`--seeds` members, 100k steps, 10 evaluations of 10 episodes), lowered and compiled
ahead of time with `xla_backend_optimization_level` set, then run once; a fresh process
per row (no persistent cache). Prints compile and run seconds and a hash of the final
parameters (equal hashes: bitwise equal training). Never run it beside another
benchmark or the tests: the machine has 2 cores.
"""

import argparse
import json
import subprocess
import sys
import textwrap


WORKER = textwrap.dedent("""
    import hashlib, json, sys, time
    import equinox as eqx, jax, numpy as np
    import jax.random as jr
    from eqxppo import PPO, make_env
    from eqxppo.ppo import train_population
    from eqxppo.population._programs import compile_all

    level, seeds = int(sys.argv[1]), int(sys.argv[2])
    env = make_env("gymnax", "CartPole-v1", n_envs=8)
    config = {"n_steps": 128, "minibatch_size": 64, "update_epochs": 10}
    pop = PPO.population([config], env, seeds=range(seeds))
    state = pop.init(jr.key(0)).groups[0]
    options = pop.spec.train_options(100_000, 10, 10)
    lower = lambda: train_population.lower(state, env, pop.groups[0].config, **options)
    t = time.perf_counter()
    (program,) = compile_all([lower], workers=1,
                             compiler_options={"xla_backend_optimization_level": level})
    compile_s = time.perf_counter() - t
    t = time.perf_counter()
    out = jax.block_until_ready(program(state, env, pop.groups[0].config, **options))
    run_s = time.perf_counter() - t
    leaves = jax.tree.leaves(eqx.filter(out[0].train_state.network, eqx.is_array))
    digest = hashlib.sha1(b"".join(np.asarray(x).tobytes() for x in leaves)).hexdigest()
    print(json.dumps({"level": level, "compile_s": round(compile_s, 2),
                      "run_s": round(run_s, 2), "params_sha1": digest[:10],
                      "final_return": float(np.mean(out[1].eval_rewards[:, -1]))}))
""")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", type=int, nargs="+", default=[3, 1])
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--seeds", type=int, default=8)
    args = parser.parse_args()
    print("| LLVM level | compile s | run s | parameters (sha1) | final return |")
    print("| --- | --- | --- | --- | --- |")
    for _ in range(args.reps):
        for level in args.levels:
            out = subprocess.run(
                [sys.executable, "-c", WORKER, str(level), str(args.seeds)],
                capture_output=True, text=True, check=True,
            )  # fmt: skip
            row = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"| {row['level']} | {row['compile_s']} | {row['run_s']} | "
                  f"{row['params_sha1']} | {row['final_return']:.1f} |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
