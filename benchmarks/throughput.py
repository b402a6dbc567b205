"""eqxppo training throughput and compile time, timed as ../shared/peers times its peers.

    python benchmarks/throughput.py                            # the four environments
    python benchmarks/throughput.py --env CartPole-v1 --timesteps 500000

For each environment: `init`, then `train(..., n_eval_steps=10, n_eval_episodes=10)`
twice with identical arguments; the first call includes tracing and compilation, the
second is timed as the run. Prints one JSON line per environment. Run one benchmark at a
time: the machine has 2 cores.
"""

import argparse
import json
import os
import platform
import time

import jax
import jax.random as jr
import numpy as np

from eqxppo import PPO, make_env


# env -> (cnn_policy, hpo overrides, nas overrides). The reference defaults everywhere:
# 8 envs x 128 steps, 10 epochs, minibatch 64, 64x64 tanh; MinAtar with the NatureCNN.
ENVS = {
    "CartPole-v1": (False, {}, {}),
    "Acrobot-v1": (False, {}, {}),
    "Pendulum-v1": (False, {}, {}),
    "Breakout-MinAtar": (True, {}, {}),
}


def measure(env_name: str, timesteps: int, n_envs: int, seed: int) -> dict:
    cnn, hpo, nas = ENVS.get(env_name, (False, {}, {}))
    env = make_env("gymnax", env_name, cnn_policy=cnn, n_envs=n_envs, seed=seed)
    agent = PPO(hpo, env, cnn_policy=cnn, nas_config=nas)
    state = agent.init(jr.key(seed))
    jax.block_until_ready(state)

    def call():
        return jax.block_until_ready(
            agent.train(*state, n_total_timesteps=timesteps, n_eval_steps=10, n_eval_episodes=10)
        )

    t0 = time.perf_counter()
    call()
    compile_run_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    out, result = call()
    run_s = time.perf_counter() - t0
    env_steps = int(out.runner_state.global_step)
    return {
        "impl": "eqxppo",
        "env": env_name,
        "n_envs": n_envs,
        "env_steps": env_steps,
        "compile_plus_run_s": round(compile_run_s, 3),
        "run_s": round(run_s, 3),
        "compile_s_est": round(compile_run_s - run_s, 3),
        "steps_per_s": round(env_steps / run_s, 1),
        "final_eval_return_mean": float(np.asarray(result.eval_rewards)[-1].mean()),
        "jax": jax.__version__,
        "backend": jax.default_backend(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", action="append", choices=list(ENVS))
    parser.add_argument("--timesteps", type=int, default=500_000)
    parser.add_argument("--n-envs", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    for name in args.env or list(ENVS):
        print(json.dumps(measure(name, args.timesteps, args.n_envs, args.seed)), flush=True)
