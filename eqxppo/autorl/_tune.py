"""The HPO loop: ask a batch, train it as one population, tell every result, log it.

Each trial trains its configuration with every seed of `seeds` for its budget; its
objective is the mean over seeds of the last evaluation's mean return (higher is
better). A batch is one `Population` per distinct remaining budget, so its static groups
compile side by side, and each structure compiles once per process. A trial in which any
seed diverged is told as failed (Optuna `FAIL`, SMAC `CRASHED` with infinite cost) and
the loop goes on.

Every finished trial is appended to `out/trials.jsonl` (flushed and synced) before the
next batch starts, so an interrupted run loses at most the batch in flight; `tune` on
the same folder reads the log, tells the optimiser what it had learned, and asks only
for the trials still missing. Configurations that SMAC asks again at a larger budget
continue from their states of this process (after a resume they restart).
"""

import json
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.random as jr
import numpy as np
from ConfigSpace import ConfigurationSpace

from .._counts import Count, as_count
from ..ppo import Population, PPORunnerState
from . import _config
from ._optimizers import Ask, make_optimizer


class Trial(NamedTuple):
    """One told trial, as logged: `status` is `complete`, `failed` or `pruned`."""

    number: int
    config: dict[str, Any]
    seeds: list[int]
    budget: int
    objective: float | None
    status: str
    seconds: float

    def to_json(self) -> str:
        return json.dumps(self._asdict())


def read_trials(path: str | os.PathLike) -> list[Trial]:
    """The trials logged in `path` (a trailing partial line, from a kill, is dropped)."""
    trials = []
    if Path(path).exists():
        for line in Path(path).read_text().splitlines():
            try:
                trials.append(Trial(**json.loads(line)))
            except (ValueError, TypeError):
                break
    return trials


def incumbent(trials: Sequence[Trial]) -> Trial | None:
    """The best complete trial at the largest budget any complete trial reached."""
    complete = [t for t in trials if t.status == "complete" and t.objective is not None]
    if not complete:
        return None
    top = max(t.budget for t in complete)
    return max((t for t in complete if t.budget == top), key=lambda t: t.objective or -math.inf)


def _key(config: Mapping[str, Any]) -> str:
    return json.dumps(dict(config), sort_keys=True)


class _Batch:
    """Trains asked trials as populations, keeping their states for continuation."""

    def __init__(
        self,
        config: Mapping[str, Any],
        seeds: Sequence[int],
        reports: int,
        base: Mapping[str, Any],
    ) -> None:
        self.config, self.base = config, dict(base)
        self.env, self.eval_env = _config.make_envs(config)
        self.seeds, self.reports = tuple(as_count("seed", s) for s in seeds), reports
        self.states: dict[str, tuple[list[PPORunnerState], int]] = {}

    def run(self, asks: Sequence[Ask], report: Callable[[Ask, float, int], bool]) -> list[dict]:
        by_remaining: dict[int, list[int]] = {}
        for a, ask in enumerate(asks):
            done = self.states.get(_key(ask.config), (None, 0))[1]
            by_remaining.setdefault(max(ask.budget - done, 0), []).append(a)
        out: list[dict] = [{} for _ in asks]
        for remaining, members in by_remaining.items():
            results = self._train([asks[a] for a in members], remaining, report)
            for a, result in zip(members, results):
                out[a] = result
        return out

    def _train(self, asks: Sequence[Ask], steps: int, report: Callable) -> list[dict]:
        start = time.perf_counter()
        n_seeds = len(self.seeds)
        pop = Population(
            [{**self.base, **a.config} for a in asks], self.env, self.seeds,
            eval_env=self.eval_env,
            nas_config=self.config["nas_config"], cnn_policy=self.config["cnn_policy"],
            deterministic_eval=self.config["deterministic_eval"],
            planned_timesteps=max(steps, 1),
        )  # fmt: skip
        state = pop.init(jr.key(0))
        if any(_key(a.config) in self.states for a in asks):
            members = []
            for i, ask in enumerate(asks):
                kept = self.states.get(_key(ask.config))
                for j in range(n_seeds):
                    m = i * n_seeds + j
                    members.append(kept[0][j] if kept else pop.member(state, m).runner_state)
            state = pop.state_from_members(members)
        values = np.full(len(asks), np.nan)
        pruned = [False] * len(asks)
        chunk = math.ceil(steps / self.reports) if steps else 0
        for r in range(self.reports if steps else 0):
            episodes = self.config["n_eval_episodes"]
            state, result = pop.train(
                state, n_total_timesteps=chunk, n_eval_steps=1, n_eval_episodes=episodes
            )
            rewards = np.asarray(jax.block_until_ready(result.eval_rewards))[:, -1].mean(-1)
            values = rewards.reshape(len(asks), n_seeds).mean(-1)
            for i, ask in enumerate(asks):
                if not pruned[i] and r < self.reports - 1:
                    pruned[i] = report(ask, float(values[i]), r)
        diverged = np.any(np.reshape(pop.diverged(state), (len(asks), n_seeds)), axis=-1)
        seconds = time.perf_counter() - start
        results = []
        for i, ask in enumerate(asks):
            done = self.states.get(_key(ask.config), (None, 0))[1]
            members = [pop.member(state, i * n_seeds + j).runner_state for j in range(n_seeds)]
            self.states[_key(ask.config)] = (members, done + steps)
            failed = bool(diverged[i]) or not np.isfinite(values[i])
            results.append({"value": None if failed else float(values[i]), "pruned": pruned[i],
                            "seconds": seconds / len(asks)})  # fmt: skip
        return results


def tune(
    optimizer: str,
    *,
    space: ConfigurationSpace,
    env_config: Mapping[str, Any],
    n_trials: int,
    batch: int,
    timesteps: Count,
    seeds: Sequence[int] = (0,),
    out: str | os.PathLike,
    seed: int = 0,
    reports: int = 1,
    on_batch: Callable[[list[Trial]], None] | None = None,
    base_config: Mapping[str, Any] | None = None,
    min_budget: Count | None = None,
    eta: int = 3,
) -> list[Trial]:
    """Run (or resume) an HPO loop; returns every trial, the earlier ones included.

    **Arguments:**

    - `optimizer`: `"random"`, `"optuna"` or `"smac"` (the last two: `eqxppo[autorl]`).
    - `space`: the search space (e.g. `eqxppo.configspaces.get_search_space("ppo_cc")`);
      names it leaves out keep ARLBench's defaults.
    - `env_config`: AutoRL config keys for the environments and evaluation
      (`env_framework`, `env_name`, `n_envs`, `nas_config`, `n_eval_episodes`, ...).
    - `n_trials`, `batch`: trials in all, and per population.
    - `timesteps`: a trial's full budget (SMAC asks fractions of it).
    - `seeds`: seeds every trial runs with.
    - `out`: the folder of `trials.jsonl` (and SMAC's own output).
    - `reports`: intermediate evaluations per trial (Optuna prunes on them).
    - `on_batch`: called with the trials of each finished batch.
    - `base_config`: hyperparameters every trial starts from (an algorithm's or an
      incumbent's); the asked ones replace them, the rest keep ARLBench's defaults.
    - `min_budget`, `eta`: SMAC's smallest budget and Hyperband's reduction factor
      (default a ninth of `timesteps`, 3); only for `"smac"`.
    """
    n_trials, batch = as_count("n_trials", n_trials, 1), as_count("batch", batch, 1)
    timesteps, reports = as_count("timesteps", timesteps, 1), as_count("reports", reports, 1)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    log = out / "trials.jsonl"
    trials = read_trials(log)
    config = _config.merge_config(env_config)
    low = None if min_budget is None else as_count("min_budget", min_budget, 1)
    opt = make_optimizer(optimizer, space, budget=timesteps, n_trials=n_trials, out=out,
                         seed=seed, min_budget=low, eta=eta)  # fmt: skip
    for trial in trials:
        opt.replay(trial.config, trial.budget, trial.objective if trial.status == "complete"
                   else None)  # fmt: skip
    trainer = _Batch(config, seeds, reports, base_config or {})
    with open(log, "a") as f:
        while len(trials) < n_trials:
            asks = opt.ask(min(batch, n_trials - len(trials)))
            results = trainer.run(asks, opt.report)
            new = []
            for ask, result in zip(asks, results):
                status = "pruned" if result["pruned"] else (
                    "failed" if result["value"] is None else "complete")  # fmt: skip
                opt.tell(ask, result["value"], pruned=result["pruned"])
                trial = Trial(len(trials), ask.config, list(trainer.seeds), ask.budget,
                              result["value"], status, round(result["seconds"], 3))  # fmt: skip
                trials.append(trial)
                new.append(trial)
                f.write(trial.to_json() + "\n")
            f.flush()
            os.fsync(f.fileno())
            if on_batch is not None:
                on_batch(new)
    return trials
