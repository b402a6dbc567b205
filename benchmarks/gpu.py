"""The device script: eqxppo's rows on one accelerator, one JSON line each (not a timed test).

    python benchmarks/gpu.py                 # the full rows: about 6 minutes on one H200
    python benchmarks/gpu.py --smoke         # tiny sizes, any machine (the test suite's form)
    python benchmarks/gpu.py --rows cartpole-pop-1024 halfcheetah-2048

Rows (`ROWS`): a single CartPole run of 500k steps; CartPole populations of 1,024 and
4,096 members (500k steps each, continuous hyperparameters sampled from the HPO space,
ARLBench's default static structure: one program); 64 members of `Breakout-MinAtar`
with the NatureCNN; brax `halfcheetah` with 2,048 environments (mjx), 5M steps, and the
time its 50M would take (compilation plus ten times the run). Each row compiles first
(`Population.compile`; a single run: its first call minus its second) and then times
training alone: `steps_per_s` counts every real member's environment steps.

Before a population row compiles, `Population.compile` compares the population's memory
model (`Population.memory_estimate`) with the device's free memory: a row that would
not fit is printed as skipped with the estimate, never run into an out-of-memory error.
A row that would not end within `--budget-s` (projected from the rows before it) is
skipped likewise, so the script ends in time on a slower device.

On the device machine, which has JAX with CUDA, Equinox, optax, chex and jaxtyping but
not gymnax, ConfigSpace or beartype, `benchmarks/gpu.sh` installs the carried wheels
first (see its header).
"""

import argparse
import dataclasses
import json
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.random as jr
import numpy as np
from population import sample_configs  # this folder is on sys.path when run as a script

import eqxppo
from eqxppo import PPO, make_env


ROOT = Path(__file__).resolve().parent.parent


@dataclasses.dataclass(frozen=True)
class Row:
    """What a row trains; `(full, smoke)` pairs where the smoke size differs."""

    env: str
    members: tuple[int, int]
    steps: tuple[int, int]
    n_envs: tuple[int, int] = (8, 8)
    framework: str = "gymnax"
    single: bool = False  # one `PPO` run instead of a population
    cnn: bool = False
    config: dict[str, Any] = dataclasses.field(default_factory=dict)
    smoke_config: dict[str, Any] = dataclasses.field(default_factory=dict)
    nas: dict[str, Any] | None = None
    env_kwargs: dict[str, Any] | None = None
    extrapolate_to: int | None = None  # also report the time this many steps would take


MINATAR = {"minibatch_size": 2048, "update_epochs": 4, "learning_rate": 5e-4}
CHEETAH = {"n_steps": 128, "minibatch_size": 4096, "update_epochs": 10}
ROWS: dict[str, Row] = {
    "cartpole-single": Row("CartPole-v1", (1, 1), (500_000, 4_096), single=True),
    "cartpole-pop-1024": Row("CartPole-v1", (1024, 4), (500_000, 4_096)),
    "cartpole-pop-4096": Row("CartPole-v1", (4096, 8), (500_000, 4_096)),
    "minatar-breakout-cnn-64": Row(
        "Breakout-MinAtar", (64, 2), (1_000_000, 4_096), n_envs=(64, 8), cnn=True,
        config=MINATAR, smoke_config={"minibatch_size": 256},
        nas={"activation": "relu", "hidden_size": 256},
    ),
    "halfcheetah-2048": Row(
        "halfcheetah", (1, 1), (5_000_000, 2_048), n_envs=(2048, 8), framework="brax",
        single=True, config=CHEETAH, smoke_config={"minibatch_size": 256},
        nas={"activation": "relu"}, env_kwargs={"backend": "mjx"},
        extrapolate_to=50_000_000,
    ),
}  # fmt: skip
# Anchors from the peers' published figures (steps/s): PureJaxRL's 2,048 CartPole agents
# x 500k steps in about 98 s on an A100; ARLBench's halfcheetah at 50M in about 852 s.
ANCHORS = {"cartpole-pop-1024": 10_450_000, "cartpole-pop-4096": 10_450_000,
           "halfcheetah-2048": 58_700}  # fmt: skip


def _timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    out = jax.block_until_ready(fn())
    return out, time.perf_counter() - start


def run_row(name: str, smoke: bool, seed: int) -> dict[str, Any]:
    spec = ROWS[name]
    size = 1 if smoke else 0
    members, steps, n_envs = spec.members[size], spec.steps[size], spec.n_envs[size]
    fixed = {**spec.config, **(spec.smoke_config if smoke else {})}
    env = make_env(spec.framework, spec.env, cnn_policy=spec.cnn, n_envs=n_envs,
                   env_kwargs=spec.env_kwargs)  # fmt: skip
    configs = [{**config, **fixed} for config in sample_configs(members, seed)]
    budget = {"n_total_timesteps": steps, "n_eval_steps": 10, "n_eval_episodes": 10}
    options = {"cnn_policy": spec.cnn, "nas_config": spec.nas}
    row: dict[str, Any] = {"row": name, "env": spec.env, "members": members, "n_envs": n_envs}
    if spec.single:
        agent = PPO(configs[0], env, **options)
        state = agent.init(jr.key(seed))
        train = lambda: agent.train(*state, **budget)
        _, first_s = _timed(train)
        (trained, result), run_s = _timed(train)
        compile_s = max(first_s - run_s, 0.0)
        env_steps = int(trained.runner_state.global_step)
        final = float(np.asarray(result.eval_rewards)[-1].mean())
        diverged = int(trained.runner_state.diverged)
    else:
        pop = PPO.population(configs, env, seeds=(seed,), **options)
        state = pop.init(jr.key(seed))
        row["estimated_bytes_per_member"] = pop.memory_estimate(state)
        start = time.perf_counter()
        pop.compile(state, **budget)
        compile_s = time.perf_counter() - start
        (trained, result), run_s = _timed(lambda: pop.train(state, **budget))
        env_steps = sum(
            int(np.asarray(pop.layout.real_rows(g, rs).global_step).sum())
            for g, rs in enumerate(trained.groups)
        )
        final = float(np.median(np.asarray(result.eval_rewards)[:, -1].mean(-1)))
        diverged = int(pop.diverged(trained).sum())
    row.update(compile_s=round(compile_s, 2), run_s=round(run_s, 2), env_steps=env_steps,
               steps_per_s=round(env_steps / run_s), final_return=round(final, 2),
               diverged_members=diverged)  # fmt: skip
    if spec.extrapolate_to is not None and not smoke:
        row["extrapolated_s"] = round(compile_s + run_s * spec.extrapolate_to / env_steps, 1)
        row["extrapolated_steps"] = spec.extrapolate_to
    if name in ANCHORS and not smoke:
        row["over_anchor"] = round(row["steps_per_s"] / ANCHORS[name], 2)
    return row


def _projected_s(name: str, smoke: bool, done: list[dict[str, Any]]) -> float | None:
    """Seconds a row would take, from an earlier row of the same environment."""
    spec = ROWS[name]
    size = 1 if smoke else 0
    for row in done:
        if row.get("env") == spec.env and "steps_per_s" in row:
            total = spec.members[size] * spec.steps[size]
            return row["compile_s"] + total / row["steps_per_s"]
    return None


def machine() -> dict[str, Any]:
    device = jax.devices()[0]
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()  # fmt: skip
    return {"device_kind": device.device_kind, "backend": jax.default_backend(),
            "devices": jax.device_count(), "jax": jax.__version__,
            "eqxppo": eqxppo.__version__, "commit": commit or None,
            "python": platform.python_version()}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", nargs="+", choices=list(ROWS), default=list(ROWS))
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, any machine")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--budget-s", type=float, default=420.0,
                        help="skip a row projected to end after this many seconds")  # fmt: skip
    args = parser.parse_args(argv)
    start, done = time.perf_counter(), []
    print(json.dumps({"row": "machine", **machine()}), flush=True)
    for name in args.rows:
        projected = _projected_s(name, args.smoke, done)
        left = args.budget_s - (time.perf_counter() - start)
        if projected is not None and projected > left:
            row = {"row": name, "skipped": f"projected {projected:.0f} s, {left:.0f} s left"}
        else:
            try:
                row = run_row(name, args.smoke, args.seed)
            except eqxppo.population.PopulationTooLarge as error:
                row = {"row": name, "skipped": str(error)}
            except ImportError as error:  # an environment framework this machine lacks
                row = {"row": name, "skipped": f"{type(error).__name__}: {error}"}
        done.append(row)
        print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
