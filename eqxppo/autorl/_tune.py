"""The HPO loop: ask a round, train it as populations, tell every result, log it.

A round is `parallel` trials (by default one batch) asked before any is told, trained
as populations of `batch` trials, in this process or as the jobs of a launcher
(`map_units`). Each trial trains its configuration with every seed of `seeds` for its
budget; its objective is the mean over seeds of the last evaluation's mean return
(higher is better). A batch is one `Population` per distinct remaining budget, so its
static groups compile side by side, and each structure compiles once per process. A
trial in which any seed diverged is told as failed (Optuna `FAIL`, SMAC `CRASHED` with
infinite cost) and the loop goes on. On envpool or gymnasium (no `vmap`), the members
train one after another, each from the start (see `_Batch`).

Every finished trial is appended to `out/trials.jsonl` (flushed and synced) before the
next round starts, so an interrupted run loses at most the round in flight.

A study resumes as the same study. `tune` on the same folder runs the optimiser again
from its seed, round by round, and answers every asked trial that the log already holds
(the same configuration at the same budget) with the logged result, its intermediate
reports included, instead of training it: the optimisers are deterministic given
their seed and what they are told, so they ask what the uninterrupted study asked, and
the study ends with the table an uninterrupted run writes. Should an optimiser ask
something else (a library whose sampling changed), the logged trials it did not ask
for are told to it as earlier results, and the study goes on from there: no finished
trial is lost or trained twice. A torn last line (a kill while the log was written) is
cut off before anything is appended; any other unreadable line is an error.

The folder belongs to one study: `tune` holds its lock (`eqxppo._lock`) while it runs,
and `study.json` records the settings the log was made with; a rerun whose settings
differ (all but `n_trials`, which may grow) raises `StudyMismatch`, naming them.
Configurations that SMAC asks again at a larger budget continue from their states of
this process (after a resume they restart).
"""

import collections
import functools
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

from .._atomic import write_text
from .._counts import Count, as_count, check_budget
from .._lock import folder_lock
from .._settings import as_recorded, differences
from ..agent import PPO
from ..population import Population
from ..ppo import PPORunnerState
from . import _config
from ._searches import Ask, make_search


class Trial(NamedTuple):
    """One told trial, as logged.

    - `budget`: the steps the optimiser asked for.
    - `objective`: the mean over seeds of the last evaluation's mean return; for a
      pruned trial, that of the report it was pruned at; `None` for a failed or
      diverged one.
    - `status`: `complete`; `pruned` (the optimiser stopped it at a report);
      `diverged` (a seed's update blew up, see `PPORunnerState.diverged`); `failed`
      (a non-finite return without a divergence).
    - `reports`: the objective at each evaluation, at the global steps `report_steps`.
    - `steps`: the steps the trial's result stands at: the budget, or for a pruned
      trial the step of the report it was pruned at (its population mates may have
      trained it further; those steps count for nothing). `None` in logs written
      before it was recorded.
    """

    number: int
    config: dict[str, Any]
    seeds: list[int]
    budget: int
    objective: float | None
    status: str
    seconds: float
    reports: list[float] = []
    report_steps: list[int] = []
    steps: int | None = None

    def to_json(self) -> str:
        return json.dumps(self._asdict())


class StudyMismatch(ValueError):
    """A study's folder cannot continue this study: its log was made with other
    settings, or a line before its last is damaged."""


def _parse_log(path: Path) -> tuple[list[Trial], int]:
    """The trials logged in `path`, and the byte length of the whole lines they fill."""
    trials: list[Trial] = []
    data = path.read_bytes() if path.exists() else b""
    good = 0
    lines = data.split(b"\n")
    for i, line in enumerate(lines):
        if not line.strip():
            good += len(line) + 1
            continue
        try:
            trials.append(Trial(**json.loads(line)))
        except (ValueError, TypeError):
            if i == len(lines) - 1 or all(not rest.strip() for rest in lines[i + 1 :]):
                break  # a torn last line (a kill while it was written)
            raise StudyMismatch(
                f"{str(path)!r}: line {i + 1} is not a trial ({line[:60]!r}); the log was "
                "edited or damaged: repair or remove that line."
            ) from None
        good += len(line) + 1
    return trials, min(good, len(data))


def read_trials(path: str | os.PathLike) -> list[Trial]:
    """The trials logged in `path` (a torn last line, from a kill, is dropped).

    Raises `StudyMismatch` for an unreadable line before the last.
    """
    return _parse_log(Path(path))[0]


def _open_log(path: Path) -> tuple[list[Trial], Any]:
    """The logged trials, and the log opened for appending after a torn last line is
    cut off (so the next trial starts on a line of its own)."""
    trials, good = _parse_log(path)
    if path.exists():
        with open(path, "r+b") as f:
            f.truncate(good)  # the torn line, if any
            # A whole last trial whose newline the kill cut off keeps its line.
            if good and not path.read_bytes().endswith(b"\n"):
                f.seek(good)
                f.write(b"\n")
            os.fsync(f.fileno())
    return trials, open(path, "a")


def check_study(out: Path, settings: Mapping[str, Any]) -> None:
    """Record `settings` in `out/study.json`, or raise `StudyMismatch` naming each key
    that differs from the recorded ones (`n_trials` may change)."""
    saved = out / "study.json"
    if saved.exists():
        try:
            before = json.loads(saved.read_text())
        except ValueError as error:
            raise StudyMismatch(f"{str(saved)!r} is unreadable ({error}).") from None
        differ = differences(settings, before, held_by="the study", ignore=("n_trials",))
        if differ:
            raise StudyMismatch(
                f"{str(out)!r} holds a study with other settings: {'; '.join(differ)}. Use "
                "another folder for a new study."
            )
    write_text(saved, json.dumps(as_recorded(settings), indent=2, sort_keys=True))


FAILED = ("failed", "diverged")


def trial_status(diverged: bool, value: float, *, pruned: bool = False) -> str:
    """A trial's status (see `Trial`): a seed's divergence first, then a non-finite
    return, then whether the optimiser pruned it."""
    if diverged:
        return "diverged"
    if not math.isfinite(value):
        return "failed"
    return "pruned" if pruned else "complete"


def incumbent(trials: Sequence[Trial]) -> Trial | None:
    """The best complete trial at the largest budget any complete trial reached."""
    complete = [t for t in trials if t.status == "complete" and t.objective is not None]
    if not complete:
        return None
    top = max(t.budget for t in complete)
    return max((t for t in complete if t.budget == top), key=lambda t: t.objective or -math.inf)


def _key(config: Mapping[str, Any]) -> str:
    return json.dumps(dict(config), sort_keys=True)


class _Kept(NamedTuple):
    """A configuration's members after `steps` steps, and the result told for them (a
    trial asked again at a budget already trained is answered with it)."""

    members: list[PPORunnerState] | None
    steps: int
    result: dict[str, Any]


_NOTHING_KEPT = _Kept(None, 0, {})


class _Batch:
    """Trains asked trials as populations, keeping their states for continuation.

    On a framework whose state lives outside JAX (envpool, gymnasium), which cannot be
    vmapped, each member trains on its own, one after another, from a fresh start on
    environments made for it (an envpool environment owns its pool, seeded when made,
    so a configuration asked twice sees the same episodes). A member's state is not
    kept for a later, larger budget (gymnasium's vector environments are shared by
    name and size in a process, and another member has stepped them since): that
    trial trains again from the start.
    """

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
        self.states: dict[str, _Kept] = {}

    def run(self, asks: Sequence[Ask], report: Callable[[Ask, float, int], bool]) -> list[dict]:
        """Train `asks` in this process, the optimiser hearing each report as it comes
        (a population stops once all its trials are pruned)."""
        out: list[dict] = [{} for _ in asks]
        for remaining, members in self._by_remaining(asks).items():
            todo = [asks[a] for a in members]
            if remaining == 0:
                results = [self._kept(ask).result for ask in todo]
            else:
                start = time.perf_counter()
                # Before any is kept anew: a configuration asked twice in a batch starts
                # twice from the same place.
                dones = [self._kept(ask).steps for ask in todo]
                heard = _Heard(todo, self.reports, report)
                trained = self._fit(todo, remaining, heard.hear)
                seconds = time.perf_counter() - start
                results = self._results(todo, remaining, dones, heard, trained, seconds)
            for a, result in zip(members, results):
                out[a] = result
        return out

    def run_round(
        self,
        batches: Sequence[Sequence[Ask]],
        report: Callable[[Ask, float, int], bool],
        map_units: Callable[[list[Callable[[], Any]]], list[Any]],
    ) -> list[list[dict]]:
        """Train a round of batches as units of `map_units` (a launcher's jobs, each its
        own process), every unit from the states kept before the round, then let the
        optimiser hear every report, in the order `run` would have told them. The
        trials' results are `run`'s, but a population whose trials are all pruned trains
        on to its budget (it cannot hear the optimiser)."""
        jobs = []  # (batch, its asks' indices, remaining steps, done steps)
        out: list[list[dict]] = [[{} for _ in asks] for asks in batches]
        for b, asks in enumerate(batches):
            for remaining, members in self._by_remaining(asks).items():
                if remaining == 0:
                    for a in members:
                        out[b][a] = self._kept(asks[a]).result
                else:
                    dones = [self._kept(asks[a]).steps for a in members]
                    jobs.append((b, members, remaining, dones))
        units = [
            functools.partial(
                _fit_unit, self.config, self.seeds, self.reports, self.base,
                [batches[b][a]._replace(handle=None) for a in members], remaining,
                [self._kept(batches[b][a]).members for a in members],
            )
            for b, members, remaining, _ in jobs
        ]  # fmt: skip
        outcomes = map_units(units)
        for (b, members, remaining, dones), (curves, trained, seconds) in zip(jobs, outcomes):
            todo = [batches[b][a] for a in members]
            heard = _Heard(todo, self.reports, report)
            for returns in curves:
                if not heard.hear(returns):
                    break
            for a, result in zip(members, self._results(todo, remaining, dones, heard,
                                                         trained, seconds)):  # fmt: skip
                out[b][a] = result
        return out

    def _by_remaining(self, asks: Sequence[Ask]) -> dict[int, list[int]]:
        """The asks' indices by the steps each has left to train (kept states count)."""
        by_remaining: dict[int, list[int]] = {}
        for a, ask in enumerate(asks):
            by_remaining.setdefault(max(ask.budget - self._kept(ask).steps, 0), []).append(a)
        return by_remaining

    def _kept(self, ask: Ask) -> "_Kept":
        return self.states.get(_key(ask.config), _NOTHING_KEPT)

    def _fit(
        self, asks: Sequence[Ask], steps: int, on_report: Callable[[np.ndarray], bool]
    ) -> list[PPORunnerState]:
        """Train `asks` for `steps` more steps each, in `self.reports` chunks; after each
        chunk `on_report` hears every member's last mean return and says whether to go
        on. Returns the members' states."""
        chunk = math.ceil(steps / self.reports)
        episodes = self.config["n_eval_episodes"]
        budget = check_budget(chunk, 1, episodes)._asdict()
        train = self._population if self.env.vmappable else self._one_by_one
        return train(asks, steps, budget, on_report)

    def _results(
        self,
        asks: Sequence[Ask],
        steps: int,
        dones: Sequence[int],
        heard: "_Heard",
        members: list[PPORunnerState],
        seconds: float,
    ) -> list[dict]:
        """Each ask's result from what the optimiser heard (`seconds`: the population's
        training time, shared among them); the members are kept (for a later, larger
        budget)."""
        n_seeds = len(self.seeds)
        chunk = math.ceil(steps / self.reports)
        curves, pruned_at = heard.curves, heard.pruned_at
        trained = min(chunk * len(curves), steps)
        diverged = np.reshape([bool(m.diverged) for m in members], (len(asks), n_seeds))
        results = []
        for i, (ask, done) in enumerate(zip(asks, dones)):
            at = pruned_at[i]
            last = len(curves) - 1 if at is None else at
            value = float(curves[last][i])
            status = trial_status(bool(diverged[i].any()), value, pruned=at is not None)
            result = {
                "value": None if status in FAILED else value, "status": status,
                "seconds": seconds / len(asks),
                "reports": [float(c[i]) for c in curves[: last + 1]],
                "report_steps": [done + min(chunk * (r + 1), steps) for r in range(last + 1)],
                "steps": done + min(chunk * (last + 1), steps),
            }  # fmt: skip
            if self.env.vmappable:
                mine = members[i * n_seeds : (i + 1) * n_seeds]
                self.states[_key(ask.config)] = _Kept(mine, done + trained, result)
            results.append(result)
        return results

    def _population(
        self,
        asks: Sequence[Ask],
        steps: int,
        budget: dict[str, int],
        on_report: Callable[[np.ndarray], bool],
    ) -> list[PPORunnerState]:
        """The asked members as one population, continuing kept members, for `steps` in
        `self.reports` chunks of `budget`; each report's last evaluation's mean return
        per member goes to `on_report`, which says whether to go on. Returns the
        members' states."""
        n_seeds = len(self.seeds)
        pop = Population(
            [{**self.base, **a.config} for a in asks], self.env, self.seeds,
            eval_env=self.eval_env, planned_timesteps=steps,
            **_config.agent_options(self.config),
        )  # fmt: skip
        state = pop.init(jr.key(0))
        if any(_key(a.config) in self.states for a in asks):
            members = []
            for i, ask in enumerate(asks):
                kept = self._kept(ask).members
                for j in range(n_seeds):
                    m = i * n_seeds + j
                    members.append(kept[j] if kept else pop.member(state, m).runner_state)
            state = pop.state_from_members(members)
        for _ in range(self.reports):
            state, result = pop.train(state, **budget)
            rewards = np.asarray(jax.block_until_ready(result.eval_rewards))
            if not on_report(rewards[:, -1].mean(-1)):
                break
        return [pop.member(state, m).runner_state for m in range(pop.n_members)]

    def _one_by_one(
        self,
        asks: Sequence[Ask],
        steps: int,
        budget: dict[str, int],
        on_report: Callable[[np.ndarray], bool],
    ) -> list[PPORunnerState]:
        """As `_population`, one member after another, each from the start (member
        `(i, seed)` from `fold_in(key(0), seed)`, on environments seeded with `seed`);
        the reports are heard once every member has trained (none stops early)."""
        del steps
        returns = np.zeros((self.reports, len(asks) * len(self.seeds)))
        members = []
        for ask in asks:
            for seed in self.seeds:
                env, eval_env = _config.make_envs({**self.config, "seed": seed})
                agent = PPO({**self.base, **ask.config}, env, eval_env=eval_env,
                            **_config.agent_options(self.config))  # fmt: skip
                state = agent.init(jr.fold_in(jr.key(0), seed))
                for r in range(self.reports):
                    state, result = agent.train(*state, **budget)
                    returns[r, len(members)] = np.asarray(result.eval_rewards)[-1].mean()
                members.append(state.runner_state)
        for r in range(self.reports):
            on_report(returns[r])
        return members


class _Heard:
    """What the optimiser heard of a population's trials: each report's mean return per
    trial (over its seeds), and the report each was pruned at. Reports are heard report
    by report, trial by trial in ask order, until every trial is pruned; never the
    last (a trial's last report is its result)."""

    def __init__(
        self, asks: Sequence[Ask], reports: int, report: Callable[[Ask, float, int], bool]
    ) -> None:
        self.asks, self.reports, self.report = asks, reports, report
        self.curves: list[np.ndarray] = []
        self.pruned_at: list[int | None] = [None] * len(asks)

    def hear(self, returns: np.ndarray) -> bool:
        """One report's mean returns (members, or trials); whether any trial goes on."""
        r = len(self.curves)
        self.curves.append(np.asarray(returns).reshape(len(self.asks), -1).mean(-1))
        for i, ask in enumerate(self.asks):
            if self.pruned_at[i] is None and r < self.reports - 1:
                if self.report(ask, float(self.curves[r][i]), r):
                    self.pruned_at[i] = r
        return any(p is None for p in self.pruned_at)


def _fit_unit(
    config: Mapping[str, Any],
    seeds: Sequence[int],
    reports: int,
    base: Mapping[str, Any],
    asks: Sequence[Ask],
    steps: int,
    kept: Sequence[list[PPORunnerState] | None],
) -> tuple[list[np.ndarray], list[PPORunnerState], float]:
    """One population of a round, as a launched job trains it (in its own process):
    `asks` for `steps` more steps, continuing the `kept` members (per ask, or None);
    every report's returns per member, the members' states and the seconds it took.
    Asks travel without their optimiser handles (Optuna's trials hold the study)."""
    start = time.perf_counter()
    trainer = _Batch(config, seeds, reports, base)
    trainer.states = {_key(a.config): _Kept(m, 0, {}) for a, m in zip(asks, kept) if m}
    curves: list[np.ndarray] = []

    def on_report(returns: np.ndarray) -> bool:
        curves.append(np.asarray(returns))
        return True

    members = trainer._fit(asks, steps, on_report)
    return curves, members, time.perf_counter() - start


def _in_turn(units: Sequence[Callable[[], Any]]) -> list[Any]:
    """A round's units one after another in this process."""
    return [unit() for unit in units]


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
    parallel: int | None = None,
    map_units: Callable[[list[Callable[[], Any]]], list[Any]] | None = None,
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
    - `parallel`: trials asked before any is told (a round; default `batch`): a round
      trains as populations of at most `batch` trials, and the optimiser hears them all
      after it (Hypersweeper's `max_parallel` configurations per round).
    - `map_units`: runs a round's populations, given as callables, and returns their
      values in order (`eqxppo.experiments.TreeLauncher.map`: each one a job of a Hydra
      launcher, in its own process). With it the optimiser hears a population's
      reports once it has trained (in the order it would have heard them, so the
      results are those of a study without it, but for a population whose trials are
      all pruned: it trains on to its budget).
    """
    n_trials, batch = as_count("n_trials", n_trials, 1), as_count("batch", batch, 1)
    timesteps, reports = as_count("timesteps", timesteps, 1), as_count("reports", reports, 1)
    out = Path(out)
    config = _config.merge_config(env_config)
    low = None if min_budget is None else as_count("min_budget", min_budget, 1)
    seeds = [as_count("seed", s) for s in seeds]
    parallel = batch if parallel is None else as_count("parallel", parallel, 1)
    settings = {"optimizer": optimizer, "space": str(space), "env_config": config,
                "n_trials": n_trials, "batch": batch, "timesteps": timesteps, "seeds": seeds,
                "seed": seed, "reports": reports, "base_config": dict(base_config or {}),
                "min_budget": low, "eta": eta}  # fmt: skip
    if parallel != batch:  # recorded only where set: a folder from before it resumes
        settings["parallel"] = parallel
    with folder_lock(out, what="study"):
        check_study(out, settings)
        opt = make_search(optimizer, space, budget=timesteps, n_trials=n_trials, out=out,
                             seed=seed, min_budget=low, eta=eta)  # fmt: skip
        trainer = _Batch(config, seeds, reports, base_config or {})
        trials, log = _open_log(out / "trials.jsonl")
        with log:
            return _study_loop(opt, trainer, trials, log, n_trials=n_trials, batch=batch,
                               parallel=parallel, reports=reports, on_batch=on_batch,
                               map_units=map_units)  # fmt: skip


def _study_loop(
    opt: Any,
    trainer: "_Batch",
    logged: list[Trial],
    log: Any,
    *,
    n_trials: int,
    batch: int,
    parallel: int,
    reports: int,
    on_batch: Callable[[list[Trial]], None] | None,
    map_units: Callable[[list[Callable[[], Any]]], list[Any]] | None,
) -> list[Trial]:
    """Ask a round, answer from the log or train, tell, append; see the module docstring."""
    unanswered: dict[tuple[str, int], collections.deque[Trial]] = collections.defaultdict(
        collections.deque
    )
    for trial in logged:
        unanswered[(_key(trial.config), trial.budget)].append(trial)
    trials, told = list(logged), 0
    while told < n_trials:
        asks = opt.ask(min(parallel, n_trials - told))
        answers = [_take(unanswered, ask) for ask in asks]
        if any(a is None for a in answers) and any(unanswered.values()):
            # The optimiser asked what the log does not hold: tell it the rest of the
            # log as earlier results, and go on from there.
            for rest in unanswered.values():
                while rest:
                    trial = rest.popleft()
                    opt.replay(trial.config, trial.budget, trial.objective
                               if trial.status == "complete" else None)  # fmt: skip
                    told += 1
        todo = [ask for ask, answer in zip(asks, answers) if answer is None]
        # The round's populations, as even as `batch` allows (a round of 10 in batches of
        # 8 trains 5 and 5: one program, not two).
        n_batches = math.ceil(len(todo) / batch)
        edges = [len(todo) * b // max(n_batches, 1) for b in range(n_batches + 1)]
        batches = [todo[lo:hi] for lo, hi in zip(edges, edges[1:])]
        if map_units is None and len(batches) <= 1:  # one population: it hears as it goes
            results = iter(trainer.run(batches[0], opt.report) if batches else [])
        else:  # every population from the states kept before the round, then heard
            rounds = trainer.run_round(batches, opt.report, map_units or _in_turn)
            results = iter([r for results_ in rounds for r in results_])
        new = []
        for ask, answer in zip(asks, answers):
            if answer is not None:  # the logged result, told as it was the first time
                for r, value in enumerate(answer.reports[: reports - 1]):
                    if opt.report(ask, value, r):
                        break
                opt.tell(ask, answer.objective, pruned=answer.status == "pruned")
                told += 1
                continue
            result = next(results)
            pruned = result["status"] == "pruned"
            opt.tell(ask, None if pruned else result["value"], pruned=pruned)
            trial = Trial(len(trials), ask.config, list(trainer.seeds), ask.budget,
                          result["value"], result["status"], round(result["seconds"], 3),
                          result["reports"], result["report_steps"], result["steps"])  # fmt: skip
            trials.append(trial)
            new.append(trial)
            told += 1
            log.write(trial.to_json() + "\n")
        if new:
            log.flush()
            os.fsync(log.fileno())
            if on_batch is not None:
                on_batch(new)
    return trials


def _take(unanswered: Mapping[tuple[str, int], collections.deque[Trial]], ask: Ask) -> Trial | None:
    """The logged trial that answers `ask`, if the log holds one not yet told."""
    waiting = unanswered.get((_key(ask.config), ask.budget))
    return waiting.popleft() if waiting else None
