"""The command line: `python -m eqxppo train --env CartPole-v1 ...` (or `eqxppo train`)."""

import argparse
import csv
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import jax
import jax.random as jr
import numpy as np

from .configspaces import HPO_KEYS, NAS_KEYS, hpo_config_to_dict
from .envs import make_env
from .ppo import PPO


def _parse_value(text: str) -> Any:
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    return text


def _parse_sets(items: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    hpo: dict[str, Any] = {}
    nas: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--set expects KEY=VALUE, got {item!r}.")
        if key in NAS_KEYS:
            nas[key] = _parse_value(value)
        elif key in HPO_KEYS:
            hpo[key] = _parse_value(value)
        else:
            raise ValueError(
                f"Unknown hyperparameter {key!r} in --set; valid: {sorted(HPO_KEYS + NAS_KEYS)}."
            )
    return hpo, nas


def _progress(total: int):
    try:
        from tqdm import tqdm
    except ImportError:  # the `cli` extra is not installed: plain lines instead
        return None
    return tqdm(total=total, unit="step", unit_scale=True, dynamic_ncols=True)


def _plot(rows: list[dict[str, Any]], env_name: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [r["step"] for r in rows]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(steps, [r["mean_return"] for r in rows], label="mean eval return")
    ax.fill_between(
        steps, [r["min_return"] for r in rows], [r["max_return"] for r in rows], alpha=0.25,
        label="min-max over episodes",
    )  # fmt: skip
    ax.set(xlabel="environment steps", ylabel="return", title=f"eqxppo PPO on {env_name}")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def train_command(args: argparse.Namespace) -> int:
    """Train in chunks (one compiled call each, compiled once) and report progress."""
    hpo, nas = _parse_sets(args.set)
    env = make_env(args.framework, args.env, n_envs=args.n_envs, seed=args.seed)
    agent = PPO(hpo, env, nas_config=nas)
    chunk_steps = math.ceil(args.timesteps / args.chunks)
    state = agent.init(jr.key(args.seed))
    out = Path(args.out) if args.out else None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        config = {"env": args.env, "framework": args.framework, "n_envs": args.n_envs,
                  "seed": args.seed, "timesteps": args.timesteps,
                  "hpo": hpo_config_to_dict(agent.config, agent.hparams),
                  "nas": {"activation": agent.network_config.activation,
                          "hidden_size": agent.network_config.hidden_size}}  # fmt: skip
        (out / "config.json").write_text(json.dumps(config, indent=2))

    print(
        f"eqxppo: training PPO on {args.env} ({args.n_envs} envs, {args.timesteps:,} steps "
        f"in {args.chunks} chunks; the first chunk includes compilation)",
        flush=True,
    )
    bar = _progress(args.chunks * chunk_steps)
    rows: list[dict[str, Any]] = []
    start = time.perf_counter()
    steps_done = 0
    for _ in range(args.chunks):
        t0 = time.perf_counter()
        state, result = agent.train(
            *state, n_total_timesteps=chunk_steps, n_eval_steps=1,
            n_eval_episodes=args.eval_episodes,
        )  # fmt: skip
        returns = np.asarray(jax.block_until_ready(result.eval_rewards))[-1]
        new_step = int(state.runner_state.global_step)
        sps = (new_step - steps_done) / (time.perf_counter() - t0)
        steps_done = new_step
        row = {"step": new_step, "mean_return": float(returns.mean()),
               "min_return": float(returns.min()), "max_return": float(returns.max()),
               "steps_per_s": round(sps, 1)}  # fmt: skip
        rows.append(row)
        if bar is not None:
            bar.update(new_step - bar.n)
            bar.set_postfix(ret=f"{row['mean_return']:.1f}", sps=f"{sps:,.0f}")
        else:
            print(f"step {new_step:>10,}  return {row['mean_return']:8.1f}  {sps:10,.0f} steps/s")
    if bar is not None:
        bar.close()
    elapsed = time.perf_counter() - start
    last = rows[-1]
    print(
        f"{args.env}: final eval return {last['mean_return']:.1f} "
        f"(min {last['min_return']:.1f}, max {last['max_return']:.1f}, "
        f"{args.eval_episodes} episodes) after {steps_done:,} steps in {elapsed:.1f} s"
    )
    if out is not None:
        with open(out / "metrics.csv", "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        _plot(rows, args.env, out / "learning_curve.png")
        print(f"wrote {out / 'config.json'}, {out / 'metrics.csv'}, {out / 'learning_curve.png'}")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="eqxppo", description="PPO on Equinox.")
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="train PPO on one environment")
    train.add_argument("--env", default="CartPole-v1")
    train.add_argument("--framework", default="gymnax")
    train.add_argument("--timesteps", type=int, default=200_000)
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--n-envs", type=int, default=8)
    train.add_argument("--chunks", type=int, default=10, help="progress updates / evaluations")
    train.add_argument("--eval-episodes", type=int, default=10)
    train.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="hyperparameter override, e.g. --set learning_rate=1e-3")  # fmt: skip
    train.add_argument("--out", default=None, help="write config.json, metrics.csv and a plot")
    train.set_defaults(func=train_command)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of `python -m eqxppo` and the `eqxppo` script."""
    args = _parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, TypeError) as error:  # user errors: one line, no traceback
        print(f"eqxppo: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
