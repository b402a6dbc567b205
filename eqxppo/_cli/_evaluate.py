"""`eqxppo evaluate DIR`: load a run's checkpoint and report its return over fresh episodes."""

import argparse
import dataclasses
import sys
from pathlib import Path

import jax.random as jr
import numpy as np

from ..agent import PPO, load
from ._common import CHECKPOINT, DIVERGED, UserError, user_input


def evaluate_command(args: argparse.Namespace) -> int:
    """Print `mean +- std` of the return over `--episodes` episodes."""
    path = Path(args.dir)
    if path.is_dir():
        path = path / CHECKPOINT
    if not path.is_file():
        raise UserError(f"evaluate: no checkpoint at {str(path)!r} (expected a run directory "
                         f"of `eqxppo train --out DIR` or a {CHECKPOINT} file).")  # fmt: skip
    with user_input():
        agent, state = load(path)
    runner_state = state.runner_state
    if args.stochastic:
        agent = PPO.from_spec(
            dataclasses.replace(agent.spec, deterministic_eval=False), agent.hpo_config
        )
    returns = np.asarray(agent.eval(runner_state, args.episodes, jr.key(args.seed)))
    mode = "stochastic" if args.stochastic else "deterministic"
    env_name = agent.env.make_env_args()["env_name"]
    print(f"{env_name} at step {int(runner_state.global_step):,}: return "
          f"{returns.mean():.1f} +- {returns.std():.1f} over {args.episodes} {mode} episodes "
          f"(min {returns.min():.1f}, max {returns.max():.1f})")  # fmt: skip
    if bool(runner_state.diverged):
        print(f"eqxppo: warning: {DIVERGED}", file=sys.stderr)
    return 0
