"""Population-based training as Hypersweeper's `HyperPBT` runs it, as one population.

`pbt` keeps `population_size` configurations (each trained with every seed of `seeds`)
and trains them in iterations of `config_interval` environment steps, one `Population`
per iteration (one compiled program per static group and group size; groups are padded
to a few bucket sizes, so later iterations reuse what earlier ones compiled).
After every iteration, as Hypersweeper's PBT decides it:

- the members whose cost (minus the objective) lies above its `quantiles[1]` quantile
  (the worst; with the default `[0.2, 0.8]`, about a fifth) load what a member drawn
  uniformly from those whose cost lies below its `quantiles[0]` quantile (the best)
  has learned; every other member continues from its own state. Loading copies the
  learned fields (network, optimizer state, observation statistics, the `diverged`
  flag), per seed; a member keeps its own environments, key and step count.
- every member then perturbs its *own* configuration: each non-categorical
  hyperparameter is resampled from the space with probability `resample_probability`,
  or else multiplied by a factor drawn from `perturbation_factors` (integers truncated)
  and clipped to its bounds; each categorical or ordinal one is resampled with
  probability `categorical_prob` (never, with `categorical_fixed`). A resampled static
  value (`minibatch_size`, ...) moves the member to another static group; what it
  learned carries over, as its shapes do not depend on the static structure.

Every draw comes from one NumPy generator seeded by `seed` (Hypersweeper resamples from the
space's own unseeded generator; here a study is reproducible from its seed), so a
study is a function of its settings. Where no member's cost lies below the lower
quantile (ties), the best member is the source (Hypersweeper takes the highest cost).
A diverged member's objective counts as minus infinity.

Every member-iteration is a `Trial` (number `iteration * population_size + member`,
budget `config_interval`, `steps` the member's total), appended to `out/trials.jsonl`
after each iteration; `out/pbt.csv` records each member's source. The folder is locked
while the study runs and `study.json` holds its settings (a rerun with others raises
`StudyMismatch`); a finished study is read back. After every iteration each member is
checkpointed (`out/pbt_state/`: the members' exact states, then `state.json` with the
configurations, objectives, the generator's state and the trials, written last): a
killed study resumes from its last finished iteration and ends, bit for bit, with the
table an uninterrupted run writes; no finished iteration trains twice.
"""

import json
import math
import os
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.random as jr
import numpy as np
from ConfigSpace import ConfigurationSpace
from ConfigSpace.hyperparameters import (
    CategoricalHyperparameter,
    IntegerHyperparameter,
    OrdinalHyperparameter,
)

from .._atomic import write_text
from .._counts import Count, as_count, check_budget
from .._csv import write_csv
from .._lock import folder_lock
from ..population import Population, PopulationState
from ..ppo import PPORunnerState
from . import _config
from ._tune import FAILED, Trial, check_study, read_trials, trial_status


def _categorical(space: ConfigurationSpace, name: str) -> bool:
    return isinstance(space[name], CategoricalHyperparameter | OrdinalHyperparameter)


def _resample(space: ConfigurationSpace, name: str, rng: np.random.RandomState) -> Any:
    value = space[name].sample_value(seed=rng)
    return value.item() if isinstance(value, np.generic) else value


def perturb(
    config: Mapping[str, Any],
    space: ConfigurationSpace,
    rng: np.random.RandomState,
    *,
    resample_probability: float = 0.25,
    perturbation_factors: Sequence[float] = (0.8, 1.2),
    categorical_prob: float = 0.1,
    categorical_fixed: bool = False,
) -> dict[str, Any]:
    """`config` (values of `space`) perturbed as Hypersweeper's PBT does (module doc)."""
    new = dict(config)
    names = list(space.keys())
    for name in (n for n in names if not _categorical(space, n)):
        hp = space[name]
        if rng.random() < resample_probability:
            new[name] = _resample(space, name, rng)
        else:
            value = new[name] * float(rng.choice(np.asarray(perturbation_factors)))
            if isinstance(hp, IntegerHyperparameter):
                value = int(value)
            new[name] = max(min(value, hp.upper), hp.lower)  # pyright: ignore
    if not categorical_fixed:
        for name in (n for n in names if _categorical(space, n)):
            if rng.random() < categorical_prob:
                new[name] = _resample(space, name, rng)
    return new


def sources(
    objectives: Sequence[float | None], rng: np.random.RandomState, quantiles: Sequence[float]
) -> list[int]:
    """The member each member loads from: a member drawn from the best for each of the
    worst, itself for every other (module doc)."""
    values = np.asarray([-math.inf if v is None else v for v in objectives], np.float64)
    finite = np.where(np.isfinite(values), values, np.finfo(np.float64).min)
    # Hypersweeper's quantiles are of the cost, minus the return.
    low, high = np.quantile(finite, [1.0 - quantiles[1], 1.0 - quantiles[0]])
    worst = [i for i, v in enumerate(finite) if v < low]
    best = [i for i, v in enumerate(finite) if v > high] or [int(np.argmax(finite))]
    return [int(rng.choice(best)) if i in worst else i for i in range(len(values))]


def loaded(
    members: Sequence[PPORunnerState], src: Sequence[int], n_seeds: int
) -> list[PPORunnerState]:
    """Member `(i, j)` (configuration `i`, seed `j`, configuration-major) with what member
    `(src[i], j)` learned (`PPORunnerState.LEARNED_FIELDS`) and its own environments, key
    and steps."""
    return [
        members[i * n_seeds + j]._replace(
            **{f: getattr(members[s * n_seeds + j], f) for f in PPORunnerState.LEARNED_FIELDS}
        )
        for i, s in enumerate(src)
        for j in range(n_seeds)
    ]


def pbt(
    *,
    space: ConfigurationSpace,
    env_config: Mapping[str, Any],
    population_size: int,
    config_interval: Count,
    iterations: int,
    seeds: Sequence[int] = (0,),
    out: str | os.PathLike,
    seed: int = 42,
    quantiles: Sequence[float] = (0.2, 0.8),
    resample_probability: float = 0.25,
    perturbation_factors: Sequence[float] = (0.8, 1.2),
    categorical_prob: float = 0.1,
    categorical_fixed: bool = False,
    base_config: Mapping[str, Any] | None = None,
    on_batch: Callable[[list[Trial]], None] | None = None,
) -> list[Trial]:
    """Run (or read back) a PBT study; returns its trials, iteration-major.

    **Arguments:**

    - `space`: the hyperparameters the members sample and perturb.
    - `env_config`: AutoRL config keys for the environments and evaluation, as `tune`'s;
      the framework must run under `vmap` (the population is one program).
    - `population_size`, `config_interval`, `iterations`: members, environment steps
      per iteration, iterations.
    - `seeds`: each member trains with every seed; its objective is the mean over seeds
      of the last evaluation's mean return.
    - `seed`, `quantiles`, `resample_probability`, `perturbation_factors`,
      `categorical_prob`, `categorical_fixed`: Hypersweeper's PBT settings (module doc).
    - `base_config`: hyperparameters the space does not set.
    - `on_batch`: called with each iteration's trials.
    """
    size = as_count("population_size", population_size, 1)
    interval = as_count("config_interval", config_interval, 1)
    iterations = as_count("iterations", iterations, 1)
    seeds = [as_count("seed", s) for s in seeds]
    low, high = (float(q) for q in quantiles)
    if not 0.0 <= low <= high <= 1.0:
        raise ValueError(f"quantiles must be 0 <= low <= high <= 1, got {list(quantiles)}.")
    config = _config.merge_config(env_config)
    env, eval_env = _config.make_envs(config)
    if not env.vmappable:
        raise ValueError(
            f"PBT trains its population as one program; {config['env_framework']} cannot "
            "run under vmap (gymnax, xland and brax can)."
        )
    out = Path(out)
    options = {
        "seed": seed,
        "quantiles": [low, high],
        "resample_probability": resample_probability,
        "perturbation_factors": list(perturbation_factors),
        "categorical_prob": categorical_prob,
        "categorical_fixed": categorical_fixed,
    }
    settings = {"optimizer": "pbt", "space": str(space), "env_config": config,
                "population_size": size, "config_interval": interval, "n_trials": iterations,
                "seeds": seeds, "base_config": dict(base_config or {}), **options}  # fmt: skip
    with folder_lock(out, what="study"):
        check_study(out, settings)
        log = out / "trials.jsonl"
        done = read_trials(log) if log.exists() else []
        if len(done) >= size * iterations:
            return done[: size * iterations]
        return _run(space, config, env, eval_env, size, interval, iterations, seeds, out,
                    dict(base_config or {}), options, on_batch)  # fmt: skip


# The members' states after the last finished iteration, and what the loop needs beside
# them: `out/pbt_state/state.json` names the folder of member checkpoints it belongs to.
_STATE = "pbt_state"


def _save(
    out: Path,
    population: Population,
    state: PopulationState,
    loop: dict[str, Any],
) -> None:
    """Checkpoint every member, then point `state.json` at them (written last and
    atomically: a kill leaves the previous iteration's checkpoint whole)."""
    from ..agent import PPO, save

    folder = out / _STATE / f"iteration_{loop['iteration']}"
    folder.mkdir(parents=True, exist_ok=True)
    for m in range(population.n_members):
        save(folder / f"member_{m}.eqx", PPO.from_population(population, m, state),
             population.member(state, m))  # fmt: skip
    write_text(out / _STATE / "state.json", json.dumps({**loop, "folder": folder.name}))
    for old in (out / _STATE).glob("iteration_*"):
        if old.name != folder.name:
            shutil.rmtree(old, ignore_errors=True)


def _restore(out: Path) -> tuple[dict[str, Any], list[PPORunnerState]] | None:
    """The last checkpoint's loop state and member states, if any."""
    from ..agent import load

    path = out / _STATE / "state.json"
    if not path.exists():
        return None
    loop = json.loads(path.read_text())
    folder = out / _STATE / loop["folder"]
    n = len(list(folder.glob("member_*.eqx")))
    return loop, [load(folder / f"member_{m}.eqx")[1].runner_state for m in range(n)]


def _run(
    space: ConfigurationSpace,
    config: dict[str, Any],
    env: Any,
    eval_env: Any,
    size: int,
    interval: int,
    iterations: int,
    seeds: list[int],
    out: Path,
    base: dict[str, Any],
    options: dict[str, Any],
    on_batch: Callable[[list[Trial]], None] | None,
) -> list[Trial]:
    n_seeds = len(seeds)
    budget = check_budget(interval, 1, config["n_eval_episodes"])._asdict()
    # Members move between static groups as they perturb: with bucketed rows each
    # iteration's groups take one of a few sizes, whose programs the next iterations
    # reuse (one compilation per group and size seen, not per iteration).
    agent = {"eval_env": eval_env, "planned_timesteps": interval, "bucket_rows": True,
             **_config.agent_options(config)}  # fmt: skip
    rng = np.random.RandomState(options["seed"])

    def continued(
        configs: list[dict[str, Any]], members: list[PPORunnerState]
    ) -> tuple[Population, PopulationState]:
        """A population of one configuration per member (each for every seed), every
        member continuing from its state in `members`."""
        population = Population([{**base, **c} for c in configs for _ in seeds], env, (0,),
                                **agent)  # fmt: skip
        return population, population.state_from_members(members)

    restored = _restore(out)
    population: Population | None = None
    state: PopulationState | None = None
    if restored is None:
        first, trials, lineage, objectives = 0, [], [], []
        configs = [{n: _resample(space, n, rng) for n in space.keys()} for _ in range(size)]
    else:  # resumed: where the last finished iteration left every member
        loop, members = restored
        first, configs, objectives = loop["iteration"] + 1, loop["configs"], loop["objectives"]
        trials = [Trial(**t) for t in loop["trials"]]
        lineage = loop["lineage"]
        name, keys, pos, gauss, cached = loop["rng"]
        rng.set_state((name, np.asarray(keys, np.uint32), pos, gauss, cached))
        population, state = continued(configs, members)
    # The log holds exactly the checkpointed trials (a kill may have come between the
    # checkpoint and the log's append, or in the middle of an iteration).
    write_text(out / "trials.jsonl", "".join(t.to_json() + "\n" for t in trials))
    with open(out / "trials.jsonl", "a") as log:
        for it in range(first, iterations):
            start = time.perf_counter()
            if population is None or state is None:
                src = list(range(size))
                population = Population([{**base, **c} for c in configs], env, seeds, **agent)
                state = population.init(jr.key(0))
            else:
                src = sources(objectives, rng, options["quantiles"])
                configs = [perturb(c, space, rng, **{k: options[k] for k in (
                    "resample_probability", "perturbation_factors", "categorical_prob",
                    "categorical_fixed")}) for c in configs]  # fmt: skip
                old = [population.member(state, m).runner_state for m in range(size * n_seeds)]
                population, state = continued(configs, loaded(old, src, n_seeds))
            state, result = population.train(state, **budget)
            rewards = np.asarray(jax.block_until_ready(result.eval_rewards))
            last = rewards[:, -1].mean(-1).reshape(size, n_seeds).mean(-1)
            flags = np.asarray(population.diverged(state)).reshape(size, n_seeds)
            diverged = [bool(f.any()) for f in flags]
            seconds = (time.perf_counter() - start) / size
            new, objectives = [], []
            for i in range(size):
                value = float(last[i])
                status = trial_status(diverged[i], value)
                objective = None if status in FAILED else value
                objectives.append(objective)
                steps = (it + 1) * interval
                new.append(Trial(it * size + i, dict(configs[i]), list(seeds), interval,
                                 objective, status, round(seconds, 3), [value], [steps],
                                 steps))  # fmt: skip
                lineage.append({"iteration": it, "member": i, "loaded_from": src[i],
                                "objective": "" if objective is None else objective})  # fmt: skip
            trials += new
            name, keys, pos, gauss, cached = rng.get_state()
            _save(out, population, state, {
                "iteration": it, "configs": configs, "objectives": objectives,
                "trials": [t._asdict() for t in trials], "lineage": lineage,
                "rng": [name, np.asarray(keys).tolist(), int(pos), int(gauss), float(cached)],
            })  # fmt: skip
            for trial in new:
                log.write(trial.to_json() + "\n")
            log.flush()
            os.fsync(log.fileno())
            write_csv(out / "pbt.csv", lineage)
            if on_batch is not None:
                on_batch(new)
    write_text(out / "pbt.json", json.dumps({"final_configs": configs}, indent=2))
    return trials
