"""`eqxppo sweep`: sample configurations from the HPO space and train them as a population.

Writes to `--out DIR`: `sweep.json` (the settings and the sampled configurations),
`results.csv` (one row per configuration: its hyperparameters, the mean final return over
seeds, its rank), `curves.csv` (mean eval return per configuration and chunk) and
`learning_curves.png`; prints the best configuration.
"""

import argparse
import json
import math
import time
from pathlib import Path
from typing import Any

import jax
import jax.random as jr
import numpy as np

from ..configspaces import HPO_KEYS
from ..envs import make_env
from ..ppo import PPO
from ._common import (
    load_config_file,
    parse_sets,
    progress,
    pyplot,
    require_positive,
    split_hpo_nas,
    user_input,
    write_csv,
)


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _plot(curves: np.ndarray, steps: list[int], ranks: np.ndarray, title: str, path: Path) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    best = int(np.argmin(ranks))
    for i, curve in enumerate(curves):
        if i != best:
            ax.plot(steps, curve, color="0.6", alpha=0.6, linewidth=1)
    ax.plot(steps, curves[best], color="C3", linewidth=2.5, label=f"best: config {best}")
    ax.set(xlabel="environment steps per member (budget)", title=title,
           ylabel="mean eval return over seeds")  # fmt: skip
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def sweep_command(args: argparse.Namespace) -> int:
    """Sample, train as a population in chunks, rank, write and print."""
    require_positive(
        vars(args), ("n_configs", "seeds", "timesteps", "chunks", "eval_episodes", "n_envs")
    )
    fixed = load_config_file(args.config) if args.config else {}
    fixed.update(parse_sets(args.set or []))
    fixed_hpo, nas = split_hpo_nas(fixed, "--config/--set")
    space = PPO.get_hpo_config_space(seed=args.seed)
    samples = space.sample_configuration(max(args.n_configs, 2))[: args.n_configs]
    configs = [{**{k: _plain(v) for k, v in dict(c).items()}, **fixed_hpo} for c in samples]
    seeds = list(range(args.seed, args.seed + args.seeds))
    with user_input():
        env = make_env(args.framework, args.env, n_envs=args.n_envs)
        pop = PPO.population(configs, env, seeds=seeds, nas_config=nas)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "sweep.json").write_text(json.dumps(
        {"env": args.env, "framework": args.framework, "n_envs": args.n_envs, "seeds": seeds,
         "timesteps": args.timesteps, "chunks": args.chunks, "nas": nas, "configs": configs},
        indent=2,
    ))  # fmt: skip

    print(f"eqxppo: sweeping {args.n_configs} configurations x {args.seeds} seeds on "
          f"{args.env}: {pop.n_members} members in {len(pop.groups)} compiled group(s)",
          flush=True)  # fmt: skip
    chunk = math.ceil(args.timesteps / args.chunks)
    state = pop.init(jr.key(args.seed))
    bar = progress(args.chunks)
    curves, steps = [], []
    start = time.perf_counter()
    for _ in range(args.chunks):
        state, result = pop.train(
            state, n_total_timesteps=chunk, n_eval_steps=1, n_eval_episodes=args.eval_episodes
        )
        rewards = np.asarray(jax.block_until_ready(result.eval_rewards))[:, -1].mean(-1)
        curves.append(rewards.reshape(args.n_configs, args.seeds).mean(-1))
        steps.append(chunk * (len(steps) + 1))  # the budget; members round it up to whole updates
        if bar is not None:
            bar.update(1)
            bar.set_postfix(best=f"{curves[-1].max():.1f}", median=f"{np.median(curves[-1]):.1f}")
    if bar is not None:
        bar.close()
    curves_arr = np.stack(curves, axis=1)  # (n_configs, chunks)
    final = curves_arr[:, -1]
    ranks = np.argsort(np.argsort(-final, kind="stable"), kind="stable") + 1
    rows: list[dict[str, Any]] = [
        {"config": i, **{k: configs[i][k] for k in HPO_KEYS}, "mean_final_return":
         round(float(final[i]), 3), "rank": int(ranks[i])}
        for i in range(args.n_configs)
    ]  # fmt: skip
    write_csv(out / "results.csv", rows)
    write_csv(out / "curves.csv", [
        {"config": i, **{f"step_{s}": round(float(v), 3) for s, v in zip(steps, curves_arr[i])}}
        for i in range(args.n_configs)
    ])  # fmt: skip
    _plot(curves_arr, steps, ranks, f"eqxppo sweep on {args.env}", out / "learning_curves.png")
    best = int(np.argmin(ranks))
    print(f"{args.env}: {pop.n_members} runs of {steps[-1]:,} steps in "
          f"{time.perf_counter() - start:.1f} s; best configuration {best} with mean final "
          f"return {final[best]:.1f} over {args.seeds} seed(s):")  # fmt: skip
    print(json.dumps({k: configs[best][k] for k in HPO_KEYS}))
    print(f"wrote {out}/: sweep.json, results.csv, curves.csv, learning_curves.png")
    return 0
