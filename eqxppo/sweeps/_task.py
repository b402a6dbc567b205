"""One task of a sweep: a set of configurations x seeds trained as one population.

A task is plain data (picklable, JSON-able), so a worker process on another machine
can run it: it rebuilds the environment from `make_env`'s arguments, trains the
population in chunks, saves every member's checkpoint and returns the learning curves.
A sweep cuts its configurations into tasks along the population's compiled groups
(`sweep_tasks`), so a task compiles one program (or loads it from the persistent cache).
"""

import json
import math
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.random as jr
import numpy as np

from .._compilation_cache import cache_stats, enable_compilation_cache
from .._counts import Count, as_count
from ..agent import PPO, save
from ..configspaces import parse_hpo_config
from ..envs import make_env
from ..population import plan_groups
from ..tracking import Row, evaluation_rows, member_result


class SweepTask(NamedTuple):
    """What one worker trains: configurations `configs` (indices into the sweep) x seeds;
    `number` is the task's place in the sweep."""

    number: int
    configs: tuple[int, ...]
    hpo_configs: tuple[dict[str, Any], ...]
    seeds: tuple[int, ...]
    env_args: dict[str, Any]  # make_env's keyword arguments
    nas_config: dict[str, Any] | None
    timesteps: int
    chunks: int
    eval_episodes: int
    key_seed: int


class TaskResult(NamedTuple):
    """A finished task: mean eval return per configuration (over seeds) and chunk, each
    member's final return and rows (`eqxppo.tracking.evaluation_rows` per chunk, with the
    population's `steps_per_s` and the member's `diverged` flag), and where the time
    went."""

    number: int
    configs: tuple[int, ...]
    curves: list[list[float]]  # (len(configs), chunks)
    final_returns: list[list[float]]  # (len(configs), n_seeds)
    diverged: list[list[bool]]  # (len(configs), n_seeds): the member's run diverged
    member_rows: list[list[Row]]  # (len(configs) * n_seeds, chunks)
    steps: list[int]
    n_programs: int
    programs_loaded: int
    compile_seconds: float
    train_seconds: float

    def to_json(self) -> str:
        return json.dumps(self._asdict())

    @classmethod
    def from_json(cls, text: str) -> "TaskResult":
        data = json.loads(text)
        if "diverged" not in data or "member_rows" not in data:
            raise ValueError(
                "A task result without divergence flags or member rows (written by an older "
                "eqxppo): delete it (out/tasks/) to train that task again."
            )
        return cls(**{**data, "configs": tuple(data["configs"])})


def sweep_tasks(
    hpo_configs: Sequence[Mapping[str, Any]],
    *,
    seeds: Sequence[Count],
    env_args: Mapping[str, Any],
    nas_config: Mapping[str, Any] | None,
    timesteps: Count,
    chunks: Count,
    eval_episodes: Count,
    key_seed: Count = 0,
    split: bool = True,
) -> list[SweepTask]:
    """Cut a sweep into tasks: one per compiled group (`split`), or one for all of it.

    Groups are planned as a population of these configurations x seeds would plan them
    for `timesteps` (`plan_groups`), so splitting changes where groups train, not what
    they compute: member `(i, j)` starts from `fold_in(key(key_seed), seeds[j])` in
    every task layout.
    """
    # Counts as every entry point reads them (`as_count`): `1e4` is fine, `1500.5` or a
    # seed of 0.7 is an error, never truncated.
    timesteps = as_count("timesteps", timesteps, 1)
    chunks = as_count("chunks", chunks, 1)
    eval_episodes = as_count("eval_episodes", eval_episodes, 1)
    key_seed = as_count("key_seed", key_seed)
    seeds = [as_count("seed", s) for s in seeds]
    per_config = [parse_hpo_config(c)[0] for c in hpo_configs]
    if split:
        # Per configuration, so its seeds weigh as len(seeds) members: the same cost,
        # hence the same groups, as the population of members plans (each group is
        # optimal on its own, so a task's population keeps it whole).
        planned = plan_groups(per_config, n_timesteps=timesteps * len(seeds))
        parts = [g.members for g in planned]
    else:
        parts = [tuple(range(len(hpo_configs)))]
    return [
        SweepTask(
            number=t,
            configs=tuple(part),
            hpo_configs=tuple(dict(hpo_configs[i]) for i in part),
            seeds=tuple(seeds),
            env_args=dict(env_args),
            nas_config=None if nas_config is None else dict(nas_config),
            timesteps=timesteps,
            chunks=chunks,
            eval_episodes=eval_episodes,
            key_seed=key_seed,
        )
        for t, part in enumerate(parts)
    ]


def run_task(
    task: SweepTask,
    out_dir: str | os.PathLike | None = None,
    *,
    compilation_cache: str | os.PathLike | None = None,
    progress: Any = None,
) -> TaskResult:
    """Train a task's population in `task.chunks` chunks; save its members' checkpoints.

    **Arguments:**

    - `task`: from `sweep_tasks`.
    - `out_dir`: when given, member `(i, j)`'s checkpoint goes to
      `out_dir/checkpoints/config_<i>_seed_<seed>.eqx`.
    - `compilation_cache`: a cache folder to enable in this process first (a worker
      started elsewhere then loads what other workers compiled).
    - `progress`: an optional callback `progress(chunk, curves)` after each chunk.
    """
    if compilation_cache is not None:
        enable_compilation_cache(compilation_cache, min_compile_seconds=0.0)
    env = make_env(**task.env_args)
    pop = PPO.population(
        list(task.hpo_configs),
        env,
        seeds=task.seeds,
        nas_config=task.nas_config,
        planned_timesteps=task.timesteps,  # per member: the plan `sweep_tasks` made
        track_metrics=True,  # losses per member for its rows: a few floats per update
    )
    state = pop.init(jr.key(task.key_seed))
    chunk = math.ceil(task.timesteps / task.chunks)
    budget = {"n_total_timesteps": chunk, "n_eval_steps": 1, "n_eval_episodes": task.eval_episodes}
    start = time.perf_counter()
    with cache_stats() as stats:
        pop.compile(state, **budget)
    compile_seconds = time.perf_counter() - start

    n_configs, n_seeds = len(task.configs), len(task.seeds)
    curves, finals = [], np.zeros((n_configs, n_seeds))
    member_rows: list[list[Row]] = [[] for _ in range(pop.n_members)]
    start = time.perf_counter()
    for c in range(task.chunks):
        t0 = time.perf_counter()
        state, result = pop.train(state, **budget)
        result = jax.block_until_ready(result)
        steps_per_s = round(chunk * pop.n_members / (time.perf_counter() - t0), 1)
        diverged = pop.diverged(state)
        for m, rows in enumerate(member_rows):
            (row,) = evaluation_rows(member_result(result, m), steps=[chunk * (c + 1)])
            rows.append({**row, "steps_per_s": steps_per_s, "diverged": int(diverged[m])})
        rewards = np.asarray(result.eval_rewards)[:, -1].mean(-1)
        finals = rewards.reshape(n_configs, n_seeds)
        curves.append(finals.mean(-1))
        if progress is not None:
            progress(c, curves[-1])
    train_seconds = time.perf_counter() - start

    if out_dir is not None:
        folder = Path(out_dir) / "checkpoints"
        folder.mkdir(parents=True, exist_ok=True)
        for m in range(pop.n_members):
            i, seed = task.configs[m // n_seeds], task.seeds[m % n_seeds]
            agent = PPO.from_population(pop, m, state)
            save(folder / f"config_{i}_seed_{seed}.eqx", agent, pop.member(state, m))
    return TaskResult(
        number=task.number,
        configs=task.configs,
        curves=np.stack(curves, axis=1).round(3).tolist(),
        final_returns=finals.round(3).tolist(),
        diverged=pop.diverged(state).reshape(n_configs, n_seeds).tolist(),
        member_rows=member_rows,
        steps=[chunk * (c + 1) for c in range(task.chunks)],
        n_programs=len(pop.groups),
        programs_loaded=stats.hits,
        compile_seconds=round(compile_seconds, 3),
        train_seconds=round(train_seconds, 3),
    )
