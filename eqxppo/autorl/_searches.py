"""Ask-and-tell searches: random search, Optuna and SMAC3 behind one small interface.

(A "search" here is the hyperparameter optimiser `tune` runs, called `optimizer=` there
and `--optimizer` on the command line as in ARLBench's tooling; the optax optimizer the
agents train with is `eqxppo.ppo.make_optimizer`.)

A search asks for `n` trials (a configuration and a budget each), is told each
trial's objective (higher is better) or that it failed, and can be told trials from an
earlier, interrupted run so that it continues from them. Optuna and SMAC are the
`autorl` extra.

- **random**: samples the search space with its seed, one configuration at a time, so
  the sequence is the same whatever the batch size and however often the study resumes.
- **optuna**: a TPE study on the space converted to Optuna's distributions
  (`_spaces.to_optuna`); failed trials are told as `FAIL`; with intermediate reports
  (`report`) its median pruner may prune a trial, which is told as `PRUNED`.
- **smac**: SMAC3's multi-fidelity facade (Hyperband) on the ConfigSpace space itself,
  with budgets in environment steps between `min_budget` and the full budget. A failed
  trial is told as `CRASHED` with infinite cost. A configuration asked again at a
  larger budget continues from where its smaller budget stopped (the loop keeps the
  states), instead of restarting.
"""

from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from ConfigSpace import Configuration, ConfigurationSpace

from .._extras import require
from ._spaces import to_optuna


SEARCHES = ("random", "optuna", "smac")


class Ask(NamedTuple):
    """One asked trial: the optimiser's handle, the configuration, the budget (steps)."""

    handle: Any
    config: dict[str, Any]
    budget: int


def _plain(config: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v.item() if isinstance(v, np.generic) else v for k, v in dict(config).items()}


class RandomSearch:
    """Uniform samples of the space (with its seed)."""

    def __init__(self, space: ConfigurationSpace, *, budget: int, seed: int = 0) -> None:
        self.space, self.budget = space, budget
        self.space.seed(seed)
        self._told = 0

    def ask(self, n: int) -> list[Ask]:
        # One at a time: a batch of n draws other values than n single draws.
        return [Ask(None, _plain(self.space.sample_configuration()), self.budget)
                for _ in range(n)]  # fmt: skip

    def tell(self, ask: Ask, value: float | None, *, pruned: bool = False) -> None:
        del ask, value, pruned

    def replay(self, config: Mapping[str, Any], budget: int, value: float | None) -> None:
        self.space.sample_configuration()  # keep the sequence where it was
        del config, budget, value

    def report(self, ask: Ask, value: float, step: int) -> bool:
        del ask, value, step
        return False


class OptunaSearch:
    """An Optuna study (TPE sampler, median pruner) over the converted space."""

    def __init__(self, space: ConfigurationSpace, *, budget: int, seed: int = 0) -> None:
        self.optuna = require("optuna", "autorl", what="optimizer 'optuna'")
        self.optuna.logging.set_verbosity(self.optuna.logging.WARNING)
        self.budget = budget
        self.distributions = to_optuna(space)
        self.study = self.optuna.create_study(
            direction="maximize",
            sampler=self.optuna.samplers.TPESampler(seed=seed),
            pruner=self.optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0),
        )

    def ask(self, n: int) -> list[Ask]:
        trials = [self.study.ask(self.distributions) for _ in range(n)]
        return [Ask(t, _plain(t.params), self.budget) for t in trials]

    def tell(self, ask: Ask, value: float | None, *, pruned: bool = False) -> None:
        states = self.optuna.trial.TrialState
        if pruned:
            self.study.tell(ask.handle, state=states.PRUNED)
        elif value is None:
            self.study.tell(ask.handle, state=states.FAIL)
        else:
            self.study.tell(ask.handle, value)

    def replay(self, config: Mapping[str, Any], budget: int, value: float | None) -> None:
        del budget
        states = self.optuna.trial.TrialState
        params = {k: config[k] for k in self.distributions}
        self.study.add_trial(self.optuna.trial.create_trial(
            params=params, distributions=self.distributions,
            value=value, state=states.COMPLETE if value is not None else states.FAIL,
        ))  # fmt: skip

    def report(self, ask: Ask, value: float, step: int) -> bool:
        """An intermediate objective; True if the trial should be pruned."""
        ask.handle.report(value, step)
        return bool(ask.handle.should_prune())


class SMACSearch:
    """SMAC3 over environment steps: the multi-fidelity facade (Hyperband between
    `min_budget` and the budget), or, when `min_budget` is the budget, the black-box
    facade (a Sobol initial design, every trial at the full budget)."""

    def __init__(
        self, space: ConfigurationSpace, *, budget: int, n_trials: int, out: Path,
        seed: int = 0, min_budget: int | None = None, eta: int = 3,
    ) -> None:  # fmt: skip
        smac = require("smac", "autorl", what="optimizer 'smac'")
        from smac.runhistory.dataclasses import TrialInfo, TrialValue
        from smac.runhistory.enumerations import StatusType

        self._TrialInfo, self._TrialValue, self._Status = TrialInfo, TrialValue, StatusType
        self.space, self.budget = space, budget
        low = min_budget if min_budget is not None else max(1, budget // 9)
        if low > budget:
            raise ValueError(f"SMAC's min_budget {low} is above its max_budget {budget}.")
        self.black_box = low == budget
        if self.black_box:
            scenario = smac.Scenario(space, deterministic=True, n_trials=n_trials, seed=seed,
                                     output_directory=Path(out) / "smac")  # fmt: skip
            self.smac = smac.BlackBoxFacade(
                scenario,
                target_function=lambda config, seed=0: 0.0,  # unused: ask and tell
                overwrite=True,
                logging_level=40,
            )
            return
        scenario = smac.Scenario(
            space, deterministic=True, n_trials=n_trials, seed=seed,
            output_directory=Path(out) / "smac", min_budget=low, max_budget=budget,
        )  # fmt: skip
        self.smac = smac.MultiFidelityFacade(
            scenario,
            target_function=lambda config, seed=0, budget=0.0: 0.0,  # unused: ask and tell
            intensifier=smac.MultiFidelityFacade.get_intensifier(scenario, eta=eta),
            overwrite=True,
            logging_level=40,
        )

    def ask(self, n: int) -> list[Ask]:
        infos = [self.smac.ask() for _ in range(n)]
        # Hyperband's budgets are fractions of the full one (11111.1...): the nearest
        # whole number of steps; `None` asks for the full budget.
        return [
            Ask(i, _plain(i.config), self.budget if i.budget is None else round(i.budget))
            for i in infos
        ]

    def tell(self, ask: Ask, value: float | None, *, pruned: bool = False) -> None:
        del pruned
        if value is None:
            result = self._TrialValue(cost=float("inf"), status=self._Status.CRASHED)
        else:
            result = self._TrialValue(cost=-float(value))  # SMAC minimises
        self.smac.tell(ask.handle, result)

    def replay(self, config: Mapping[str, Any], budget: int, value: float | None) -> None:
        info = self._TrialInfo(Configuration(self.space, values=dict(config)), seed=0,
                               budget=None if self.black_box else float(budget))  # fmt: skip
        self.tell(Ask(info, dict(config), budget), value)

    def report(self, ask: Ask, value: float, step: int) -> bool:
        del ask, value, step
        return False


def make_search(
    name: str,
    space: ConfigurationSpace,
    *,
    budget: int,
    n_trials: int,
    out: Path,
    seed: int = 0,
    min_budget: int | None = None,
    eta: int = 3,
) -> RandomSearch | OptunaSearch | SMACSearch:
    """The optimiser `name` (`random`, `optuna`, `smac`) for `space` and a full budget;
    `min_budget` and `eta` are SMAC's Hyperband settings (default: a ninth of the budget,
    3; `min_budget` equal to the budget: SMAC's black-box facade), which the others
    refuse."""
    if name != "smac" and (min_budget is not None or eta != 3):
        raise ValueError(f"min_budget and eta are SMAC's multi-fidelity settings, not {name}'s.")
    if name == "random":
        return RandomSearch(space, budget=budget, seed=seed)
    if name == "optuna":
        return OptunaSearch(space, budget=budget, seed=seed)
    if name == "smac":
        return SMACSearch(space, budget=budget, n_trials=n_trials, out=out, seed=seed,
                          min_budget=min_budget, eta=eta)  # fmt: skip
    raise ValueError(f"Unknown search {name!r}; known: {list(SEARCHES)}.")
