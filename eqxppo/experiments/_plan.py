"""What a composed ARLBench tree asks eqxppo to run: jobs (a single run, or a multirun's
combinations) or an HPO study (a tree whose `hydra/sweeper` is Hypersweeper's)."""

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

from .._counts import as_count
from ..autorl import merge_config
from ..configspaces import (
    SEARCH_SPACES,
    parse_hpo_config,
    parse_nas_config,
    parse_search_space,
)
from ._compose import SWEEPERS, compose_tree, expand_sweeps, fixed_overrides


# The objectives a job reports in `performance.csv` (ARLBench's names).
JOB_OBJECTIVES = ("reward_mean", "reward_std")


class Job(NamedTuple):
    """One training run: `config` is the composed tree resolved (`hp_config`,
    `nas_config`, `autorl`, ...; Hydra's node left out), `autorl` its AutoRL section
    checked and filled with ARLBench's defaults, `out` its folder."""

    number: int
    overrides: tuple[str, ...]
    config: dict[str, Any]
    autorl: dict[str, Any]
    out: Path


class Study(NamedTuple):
    """An HPO study: Hypersweeper's settings mapped onto `eqxppo.autorl.tune` (HyperRS,
    HyperSMAC) or `eqxppo.autorl.pbt` (HyperPBT)."""

    optimizer: str  # "random", "smac" or "pbt"
    n_trials: int
    max_budget: int  # a trial's full budget (the tree's `autorl.n_total_timesteps`)
    min_budget: int | None  # SMAC's smallest (max_budget: black box); None elsewhere
    eta: int
    seeds: tuple[int, ...]  # every trial runs with these
    seed: int  # the optimiser's
    search_space: dict[str, Any]  # in ARLBench's YAML form
    maximize: bool
    job: Job  # the base: the tree's hyperparameters and environment
    # PBT's: `eqxppo.autorl.pbt`'s keyword arguments (population_size, config_interval,
    # iterations, quantiles, ...); None for the others.
    pbt: dict[str, Any] | None = None
    # Hypersweeper's round: the configurations it asks before telling any
    # (`sweeper_kwargs.max_parallelization` x n_trials, divided among the seeds).
    parallel: int = 1


def _as_dict(node: Any) -> Any:
    from omegaconf import OmegaConf

    return OmegaConf.to_container(node, resolve=True)


def _job(cfg: Any, number: int, overrides: Sequence[str], out: Path) -> Job:
    from omegaconf import open_dict

    with open_dict(cfg):
        del cfg["hydra"]
    config = _as_dict(cfg)
    if config.get("algorithm", "ppo") != "ppo":
        raise ValueError(
            f"the tree's algorithm is {config['algorithm']!r}; eqxppo runs PPO "
            "(override it: algorithm=ppo)."
        )
    # ARLBench's checkpoint keys: a job always saves its checkpoint in its folder.
    checkpoints = ("checkpoint", "checkpoint_name", "checkpoint_dir")
    autorl = merge_config({k: v for k, v in config.get("autorl", {}).items()
                           if k not in checkpoints})  # fmt: skip
    # What PPO would refuse at training time is the tree's mistake: say so now.
    as_count("autorl.n_total_timesteps", autorl["n_total_timesteps"], 1)  # a job trains
    parse_hpo_config(config.get("hp_config") or {})
    parse_nas_config(autorl["nas_config"], autorl["cnn_policy"])
    unknown = [o for o in autorl["objectives"] if o not in JOB_OBJECTIVES]
    if unknown:
        raise ValueError(
            f"objectives {unknown}: an experiment tree's runs report {list(JOB_OBJECTIVES)}."
        )
    return Job(number, tuple(overrides), config, autorl, out)


def _checked_space(settings: dict[str, Any], job: Job) -> dict[str, Any]:
    """The study's search space in the tree's form, checked as PPO's."""
    space = settings.get("search_space") or job.config.get("search_space")
    if not space:
        raise ValueError("the study has no search space (hydra.sweeper.search_space).")
    try:
        parse_search_space(space, name="search_space", where="the tree's search_space")
    except ValueError as error:
        ppo = ", ".join(sorted(n for n in SEARCH_SPACES if n != "full"))
        raise ValueError(
            f"{error} If the tree's search space is another algorithm's, choose one of "
            f"PPO's: add search_space=ppo_cc (built in: {ppo})."
        ) from None
    return space


def _maximize(kwargs: dict[str, Any], job: Job) -> bool:
    """Hypersweeper's `maximize`, checked against the tree's objectives."""
    maximize = bool(kwargs.get("maximize", True))
    upper = job.autorl["optimize_objectives"] == "upper"
    if job.autorl["objectives"] != ["reward_mean"] or maximize != upper:
        raise ValueError(
            "eqxppo's studies maximise the return: objectives [reward_mean] with maximize "
            "true and optimize_objectives upper, or maximize false and lower (the negated "
            f"return); the tree has {job.autorl['objectives']}, maximize {maximize}, "
            f"optimize_objectives {job.autorl['optimize_objectives']}."
        )
    return maximize


def _study(cfg: Any, sweeper: str, overrides: Sequence[str], out: Path) -> Study:
    settings = _as_dict(cfg.hydra.sweeper)
    kwargs = settings.get("sweeper_kwargs") or {}
    variable = settings.get("budget_variable")
    if variable not in (None, "autorl.n_total_timesteps"):
        raise ValueError(
            f"budget_variable {variable!r}: eqxppo's studies vary the environment steps "
            "(autorl.n_total_timesteps)."
        )
    job = _job(cfg, 0, overrides, out)
    optimizer = SWEEPERS[sweeper]
    if optimizer == "pbt":
        return _pbt_study(settings, job)
    intensifier = (kwargs.get("optimizer_kwargs") or {}).get("intensifier") or {}
    scenario = (kwargs.get("optimizer_kwargs") or {}).get("scenario") or {}
    full = job.autorl["n_total_timesteps"]
    max_budget = kwargs.get("max_budget", full) if variable else full
    # Without a budget variable, or a smallest budget, every trial trains the full
    # budget: for SMAC, its black-box facade (ARLBench's `tune_smac`); never a
    # multi-fidelity schedule the tree did not ask for.
    min_budget = kwargs.get("min_budget") if variable else None
    if optimizer == "smac" and min_budget is None:
        min_budget = max_budget
    if optimizer != "smac" and min_budget is not None:
        raise ValueError(
            f"{sweeper} has no fidelities: drop hydra.sweeper.sweeper_kwargs.min_budget "
            "(HyperSMAC takes it)."
        )
    space = _checked_space(settings, job)
    seeds = kwargs.get("seeds") or [job.autorl["seed"]]
    seed = (
        scenario.get("seed", space.get("seed", 0)) if optimizer == "smac" else space.get("seed", 0)
    )
    maximize = _maximize(kwargs, job)
    n_trials = as_count("hydra.sweeper.n_trials", settings.get("n_trials") or 0, 1)
    # Hypersweeper's round: `max_parallelization` (default 0.1) of the trials, at most
    # `job_array_size_limit` (default 100) jobs, divided among the seeds.
    fraction = float(kwargs.get("max_parallelization", 0.1))
    limit = as_count("job_array_size_limit", kwargs.get("job_array_size_limit", 100), 1)
    jobs = min(limit, max(1, int(fraction * n_trials)))
    parallel = max(1, jobs // len(seeds))
    return Study(
        optimizer=optimizer,
        n_trials=n_trials,
        max_budget=as_count("max_budget", max_budget, 1),
        min_budget=None if min_budget is None else as_count("min_budget", min_budget, 1),
        eta=as_count("eta", intensifier.get("eta", 3), 2),
        seeds=tuple(as_count("seed", s) for s in seeds),
        seed=as_count("seed", seed),
        search_space=space,
        maximize=maximize,
        job=job,
        parallel=parallel,
    )


# Hypersweeper's PBT settings (`sweeper_kwargs.optimizer_kwargs`) that `pbt` takes as they
# are; `population_size` and `config_interval` are read apart.
_PBT_KEYS = ("seed", "quantiles", "resample_probability", "perturbation_factors",
             "categorical_prob", "categorical_fixed")  # fmt: skip


def _pbt_study(settings: dict[str, Any], job: Job) -> Study:
    """HyperPBT's settings as one `eqxppo.autorl.pbt` study: each of its trials trains a
    member `config_interval` more steps (with `budget_variable`; without it, the tree's
    `autorl.n_total_timesteps`, as Hypersweeper's jobs would), and the study stops, as
    Hypersweeper's loop does, after `n_trials` member-iterations or once the trials'
    budgets sum to `budget`, whichever comes first."""
    kwargs = settings.get("sweeper_kwargs") or {}
    opt = dict(kwargs.get("optimizer_kwargs") or {})
    unknown = sorted(set(opt) - {"population_size", "config_interval", "self_destruct", *_PBT_KEYS})
    if unknown:
        raise ValueError(f"HyperPBT's optimizer_kwargs {unknown}: eqxppo's PBT does not take them.")
    if not kwargs.get("load_tf", False):
        raise ValueError(
            "HyperPBT without load_tf trains every member-iteration afresh; eqxppo's PBT "
            "continues the members from their states: set "
            "hydra.sweeper.sweeper_kwargs.load_tf=true."
        )
    size = as_count("optimizer_kwargs.population_size", opt.get("population_size"), 1)
    interval = as_count("optimizer_kwargs.config_interval", opt.get("config_interval"), 1)
    n_trials, total = settings.get("n_trials"), settings.get("budget")
    if n_trials is None and total is None:
        raise ValueError("HyperPBT needs hydra.sweeper.n_trials or hydra.sweeper.budget.")
    counts = []
    if n_trials is not None:
        n_trials = as_count("hydra.sweeper.n_trials", n_trials, 1)
        if n_trials % size:
            raise ValueError(
                f"hydra.sweeper.n_trials={n_trials} is not a whole number of iterations of "
                f"{size} members; eqxppo's PBT trains whole populations."
            )
        counts.append(n_trials // size)
    if total is not None:
        counts.append(math.ceil(as_count("hydra.sweeper.budget", total, 1) / (interval * size)))
    steps = interval if settings.get("budget_variable") else job.autorl["n_total_timesteps"]
    space = _checked_space(settings, job)
    seeds = kwargs.get("seeds") or [job.autorl["seed"]]
    pbt = {"population_size": size, "config_interval": steps, "iterations": min(counts),
           **{k: opt[k] for k in _PBT_KEYS if k in opt}}  # fmt: skip
    return Study(
        optimizer="pbt", n_trials=min(counts) * size, max_budget=steps, min_budget=None,
        eta=3, seeds=tuple(as_count("seed", s) for s in seeds),
        seed=as_count("seed", opt.get("seed", 42)), search_space=space,
        maximize=_maximize(kwargs, job), job=job, pbt=pbt,
    )  # fmt: skip


def plan(
    config_dir: str | os.PathLike,
    *,
    config_name: str = "base",
    overrides: Sequence[str] = (),
    multirun: bool = False,
    out: str | os.PathLike | None = None,
) -> list[Job] | Study | list[Study]:
    """What the tree asks for, as ARLBench's `run_arlbench.py` would run it.

    Without `multirun`: one job in `hydra.run.dir` (or `out`). With it: a tree whose
    `hydra/sweeper` is `HyperRS`, `HyperSMAC` or `HyperPBT` is an HPO study in `hydra.sweep.dir`
    (with sweep overrides, one study per combination, each in its own `hydra.sweep.dir`,
    or `out/<its overrides>`); any other runs one job per combination of the sweep
    overrides, in
    `hydra.sweep.dir/<job number>`. Relative folders are taken from the working
    directory, as Hydra does.
    """
    jobs = expand_sweeps(overrides)
    if not multirun:
        if len(jobs) > 1:
            raise ValueError(f"the overrides sweep over {len(jobs)} jobs: add -m (--multirun).")
        cfg = compose_tree(config_dir, config_name, overrides)
        return [_job(cfg, 0, overrides, Path(out or str(cfg.hydra.run.dir)).absolute())]
    cfg = compose_tree(config_dir, config_name, fixed_overrides(overrides))
    sweeper = cfg.hydra.runtime.choices.get("hydra/sweeper")
    folder = Path(out or str(cfg.hydra.sweep.dir)).absolute()
    if sweeper in SWEEPERS:
        if len(jobs) == 1:
            return _study(cfg, sweeper, overrides, folder)
        # An override swept beside a study (an optimiser seed, `search_space.seed=42,43`,
        # the landscape's `autorl.seed=range(10)`): one study per value, as the authors
        # ran them, each in the folder its own `hydra.sweep.dir` names.
        studies = []
        for job in jobs:
            own = compose_tree(config_dir, config_name, job)
            where = Path(out) / "_".join(job) if out else Path(str(own.hydra.sweep.dir))
            studies.append(_study(own, sweeper, job, where.absolute()))
        folders = [str(s.job.out) for s in studies]
        repeated = sorted({f for f in folders if folders.count(f) > 1})
        if repeated:
            raise ValueError(
                f"the swept studies would share a folder ({repeated[0]}): put the swept "
                "key in hydra.sweep.dir, or give each its own --out."
            )
        return studies
    if sweeper != "basic":
        raise ValueError(
            f"hydra/sweeper {sweeper!r}: eqxppo runs Hydra's basic sweeper and "
            f"Hypersweeper's {sorted(SWEEPERS)}."
        )
    return [
        _job(compose_tree(config_dir, config_name, job), number, job, folder / str(number))
        for number, job in enumerate(jobs)
    ]
