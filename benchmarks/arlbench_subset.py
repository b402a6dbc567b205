"""ARLBench's PPO subset on eqxppo: the five environments with ARLBench's incumbent config.

    python benchmarks/arlbench_subset.py                 # all five at the CPU budgets below
    python benchmarks/arlbench_subset.py --only halfcheetah --timesteps 50000000 --n-envs 2048

Needs `pip install -e ".[envs]"`. For each environment: steps/s of the `train` call
(compilation excluded), seconds of XLA compilation inside it, and the mean return of
the last evaluation, as one JSON line each (and `--out FILE` appends them). The budgets
are what a 2-core CPU finishes in minutes, not ARLBench's (in `ARLBENCH_BUDGET`);
halfcheetah also runs with fewer environments than ARLBench's 2048.
"""

import argparse
import json
import platform
import time
from importlib.metadata import version

import jax
import jax.random as jr
import numpy as np

from eqxppo import PPO, make_env


# ARLBench's incumbent PPO configuration (its examples/configs/incumbent/ppo_*.yaml);
# n_steps and update_epochs stay at the defaults (128, 10).
INCUMBENT = {"clip_eps": 0.177, "ent_coef": 0.01, "gae_lambda": 0.93, "gamma": 0.99876,
             "learning_rate": 0.000322, "max_grad_norm": 0.881, "minibatch_size": 64,
             "normalize_advantage": True, "normalize_observations": False,
             "vf_clip_eps": 0.211, "vf_coef": 0.5245}  # fmt: skip

# name -> framework, env_name, n_envs, cnn_policy, nas, train kwargs, eval kwargs,
#         CPU budget, ARLBench's budget
TASKS = {
    "LunarLander-v2": ("envpool", "LunarLander-v2", 8, False, {}, {}, {}, 300_000, 1_000_000),
    "BattleZone-v5": ("envpool", "BattleZone-v5", 8, True,
                      {"activation": "relu", "hidden_size": 512},
                      {"episodic_life": True, "reward_clip": True},
                      {"episodic_life": False, "reward_clip": False}, 4_096, 10_000_000),
    "halfcheetah": ("brax", "halfcheetah", 64, False, {"activation": "relu"},
                    {"backend": "mjx"}, {"backend": "mjx"}, 32_768, 50_000_000),
    "MiniGrid-EmptyRandom-5x5": ("xland", "MiniGrid-EmptyRandom-5x5", 8, False, {}, {}, {},
                                 100_000, 100_000),
    "MiniGrid-FourRooms": ("xland", "MiniGrid-FourRooms", 8, False, {}, {}, {}, 200_000,
                           5_000_000),
}  # fmt: skip
ARLBENCH_BUDGET = {name: task[-1] for name, task in TASKS.items()}
# On a CPU an untrained Atari agent's evaluation episodes (up to 27,000 steps of the CNN
# each) cost more than the training; `--full-eval` lifts this cap.
CPU_EVAL_CAP = {"BattleZone-v5": {"max_episode_steps": 1_000}}

_compile_s: list[float] = []


def _on_event(event: str, duration: float, **kwargs) -> None:
    del kwargs
    if event == "/jax/core/compile/backend_compile_duration":
        _compile_s.append(duration)


jax.monitoring.register_event_duration_secs_listener(_on_event)


def run(
    name: str, timesteps: int | None, n_envs: int | None, seed: int, n_eval: int, full_eval: bool
) -> dict:
    framework, env_name, default_envs, cnn, nas, train_kw, eval_kw, budget, _ = TASKS[name]
    n_envs = n_envs or default_envs
    if not full_eval:
        eval_kw = {**eval_kw, **CPU_EVAL_CAP.get(name, {})}
    env = make_env(framework, env_name, cnn, n_envs, seed, train_kw)
    eval_env = make_env(framework, env_name, cnn, n_envs, seed + 1, eval_kw)
    agent = PPO(INCUMBENT, env, eval_env=eval_env, cnn_policy=cnn, nas_config=nas)
    timesteps = timesteps or budget
    start = time.perf_counter()
    state = agent.init(jr.key(seed))
    compiled_before = len(_compile_s)
    state, result = agent.train(*state, n_total_timesteps=timesteps, n_eval_steps=4,
                                n_eval_episodes=n_eval)  # fmt: skip
    rewards = np.asarray(jax.block_until_ready(result.eval_rewards))
    wall = time.perf_counter() - start
    compile_s = sum(_compile_s[compiled_before:])
    steps = int(state.runner_state.global_step)
    return {
        "env": name, "framework": framework, "n_envs": n_envs, "env_steps": steps,
        "arlbench_budget": ARLBENCH_BUDGET[name], "wall_s": round(wall, 1),
        "compile_s": round(compile_s, 1),
        "steps_per_s": round(steps / max(wall - compile_s, 1e-9)),
        "eval_curve": [round(float(x), 3) for x in rewards.mean(-1)],
        "final_return": round(float(rewards[-1].mean()), 3),
        "diverged": bool(state.runner_state.diverged), "seed": seed, "eval_kwargs": eval_kw,
        "jax": jax.__version__, "eqxppo": version("eqxppo"), "machine": platform.processor()
        or platform.machine(), "cpus": jax.device_count(),
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", choices=list(TASKS), action="append")
    parser.add_argument("--timesteps", type=int, default=None, help="default: the CPU budget")
    parser.add_argument("--n-envs", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--eval-episodes", type=int, default=8)
    parser.add_argument("--out", default=None, help="append the JSON lines to this file")
    parser.add_argument("--full-eval", action="store_true", help="no cap on eval episodes")
    args = parser.parse_args()
    for name in args.only or list(TASKS):
        row = run(name, args.timesteps, args.n_envs, args.seed, args.eval_episodes, args.full_eval)
        line = json.dumps(row)
        print(line, flush=True)
        if args.out:
            with open(args.out, "a") as f:
                f.write(line + "\n")


if __name__ == "__main__":
    main()
