"""Recurrent PPO: speed beside PureJaxRL's `ppo_rnn.py`, and learning where memory matters
(not a timed test).

    python benchmarks/recurrent.py speed      # CartPole and MemoryChain, 500k steps each
    python benchmarks/recurrent.py xland      # MiniGrid-FourRooms, GRU vs MLP, 4 seeds

`speed`: on each task, in one session, one after another: eqxppo's GRU agent, eqxppo's
feed-forward agent (same sizes), and PureJaxRL's `ppo_rnn.py` (`purejaxrl_rnn.py` in the
peers' rejax venv, when it is set up). All use PureJaxRL's recurrent settings: 4
environments x 128 steps, 4 epochs, 4 minibatches of one environment's sequence
(eqxppo: `minibatch_size` 128 = one sequence of 128 steps), 128 ReLU units, learning rate
2.5e-4 (constant), entropy 0.01. eqxppo is timed as the peers are: a first `train` call
with compilation, then a second, identical call; its timed call holds one evaluation of
10 episodes at the end (PureJaxRL's holds none). Returns: eqxppo's evaluation; PureJaxRL's
training episodes of its last 10 updates.

`xland`: XLand-MiniGrid's FourRooms (partially observed: a 7x7 egocentric view,
flattened for the MLP encoder), recurrent (GRU) against feed-forward at the same budget,
the seeds trained side by side as one population per architecture, one XLA:CPU device
per core. One JSON line per
row, then a Markdown table.
"""

import argparse
import json
import os
import platform
import subprocess
import time
from pathlib import Path

import jax
import jax.random as jr
import numpy as np

import eqxppo
from eqxppo import PPO, make_env
from eqxppo.population import Population


ROOT = Path(__file__).resolve().parent.parent
ANCHORS = Path(os.environ.get("ANCHORS", Path.home() / ".cache" / "ppo-anchors"))
# PureJaxRL's recurrent settings, as eqxppo's configuration.
RNN_HPO = {"n_steps": 128, "minibatch_size": 128, "update_epochs": 4, "learning_rate": 2.5e-4,
           "ent_coef": 0.01, "gamma": 0.99, "gae_lambda": 0.95, "clip_eps": 0.2,
           "vf_clip_eps": 0.2, "vf_coef": 0.5, "max_grad_norm": 0.5}  # fmt: skip
SPEED_TASKS = ("CartPole-v1", "MemoryChain-bsuite")


def _commit() -> str:
    out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                         text=True, check=False)  # fmt: skip
    return out.stdout.strip() or "?"


def eqxppo_row(env_name: str, recurrent: str, timesteps: int, n_envs: int) -> dict:
    env = make_env("gymnax", env_name, n_envs=n_envs)
    nas = {"activation": "relu", "hidden_size": 128, "recurrent": recurrent}
    agent = PPO(RNN_HPO, env, nas_config=nas)
    budget = {"n_total_timesteps": timesteps, "n_eval_steps": 1, "n_eval_episodes": 10}
    state = agent.init(jr.key(0))
    start = time.perf_counter()
    jax.block_until_ready(agent.train(*state, **budget))
    compile_plus_run = time.perf_counter() - start
    start = time.perf_counter()
    trained, result = jax.block_until_ready(agent.train(*state, **budget))
    run_s = time.perf_counter() - start
    steps = int(trained.runner_state.global_step)
    return {"impl": f"eqxppo {'MLP' if recurrent == 'none' else recurrent.upper()}",
            "env": env_name, "env_steps": steps, "run_s": round(run_s, 3),
            "compile_plus_run_s": round(compile_plus_run, 3),
            "steps_per_s": round(steps / run_s, 1),
            "return": float(np.asarray(result.eval_rewards)[-1].mean())}  # fmt: skip


def purejaxrl_row(env_name: str, timesteps: int, n_envs: int) -> dict | None:
    python = ANCHORS / "rejax/bin/python"
    if not (python.exists() and (ANCHORS / "purejaxrl/ppo_rnn.py").exists()):
        return None
    cmd = [str(python), str(ROOT / "benchmarks/purejaxrl_rnn.py"), "--env", env_name,
           "--timesteps", str(timesteps), "--n-envs", str(n_envs)]  # fmt: skip
    envs = {**os.environ, "PUREJAXRL_DIR": str(ANCHORS / "purejaxrl")}
    out = subprocess.run(cmd, capture_output=True, text=True, env=envs, check=True)
    row = json.loads(out.stdout.strip().splitlines()[-1])
    row["return"] = row.pop("train_return_last_10_updates")
    return row


def speed(args: argparse.Namespace) -> list[dict]:
    rows = []
    for env_name in SPEED_TASKS:
        for recurrent in ("gru", "none"):
            rows.append(eqxppo_row(env_name, recurrent, args.timesteps, args.n_envs))
            print(json.dumps(rows[-1]), flush=True)
        peer = purejaxrl_row(env_name, args.timesteps, args.n_envs)
        if peer is not None:
            rows.append(peer)
            print(json.dumps(peer), flush=True)
    print("\n| task | implementation | steps/s | compile + run s | return | eqxppo GRU over it |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for row in rows:
        gru = next(r for r in rows if r["env"] == row["env"] and r["impl"] == "eqxppo GRU")
        ratio = gru["steps_per_s"] / row["steps_per_s"]
        speed, seconds = f"{row['steps_per_s']:,.0f}", f"{row['compile_plus_run_s']:.1f}"
        cells = (row["env"], row["impl"], speed, seconds, f"{row['return']:.2f}", f"{ratio:.2f}x")
        print("| " + " | ".join(cells) + " |")
    return rows


def xland(args: argparse.Namespace) -> list[dict]:
    env = make_env("xland", args.env_name, n_envs=args.n_envs)
    hpo = {"n_steps": 64, "minibatch_size": 256, "update_epochs": 4, "learning_rate": 5e-4,
           "ent_coef": 0.01, "gamma": 0.99, "gae_lambda": 0.95}  # fmt: skip
    rows = []
    for recurrent in ("gru", "none"):
        nas = {"activation": "relu", "hidden_size": 128, "recurrent": recurrent}
        population = Population([hpo], env, seeds=range(args.seeds), nas_config=nas)
        start = time.perf_counter()
        state, result = population.train(population.init(jr.key(0)),
                                         n_total_timesteps=args.timesteps, n_eval_steps=10,
                                         n_eval_episodes=64)  # fmt: skip
        jax.block_until_ready((state, result))
        seconds = time.perf_counter() - start
        curve = np.asarray(result.eval_rewards).mean(-1)  # (seeds, n_eval_steps)
        row = {"env": args.env_name, "agent": "GRU" if recurrent == "gru" else "MLP",
               "timesteps": args.timesteps, "seeds": args.seeds, "seconds": round(seconds, 1),
               "final_return_per_seed": [round(float(x), 3) for x in curve[:, -1]],
               "final_return_mean": round(float(curve[:, -1].mean()), 3),
               "curve_mean": [round(float(x), 3) for x in curve.mean(0)]}  # fmt: skip
        rows.append(row)
        print(json.dumps(row), flush=True)
    print("\n| agent | final return (mean over seeds) | per seed | seconds (all seeds) |")
    print("| --- | ---: | --- | ---: |")
    for row in rows:
        per_seed = ", ".join(f"{x:.2f}" for x in row["final_return_per_seed"])
        print(f"| {row['agent']} | {row['final_return_mean']:.3f} | {per_seed} | "
              f"{row['seconds']:.0f} |")  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="workload", required=True)
    s = sub.add_parser("speed")
    s.add_argument("--timesteps", type=int, default=500_000)
    s.add_argument("--n-envs", type=int, default=4)
    x = sub.add_parser("xland")
    x.add_argument("--env-name", default="MiniGrid-FourRooms")
    x.add_argument("--timesteps", type=int, default=2_000_000)
    x.add_argument("--n-envs", type=int, default=16)
    x.add_argument("--seeds", type=int, default=4)
    args = parser.parse_args()
    if args.workload == "xland":
        eqxppo.use_cpu_cores()  # the seeds side by side, one XLA:CPU device per core
    machine = {"machine": platform.machine(), "cpus": os.cpu_count(),
               "python": platform.python_version(), "jax": jax.__version__,
               "backend": jax.default_backend(), "devices": jax.device_count(),
               "commit": _commit()}  # fmt: skip
    print(json.dumps(machine), flush=True)
    speed(args) if args.workload == "speed" else xland(args)


if __name__ == "__main__":
    main()
