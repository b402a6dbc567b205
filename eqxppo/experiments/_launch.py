"""A tree's Hydra launcher (`hydra/launcher`): where its units of work run.

ARLBench's cluster configs set `override hydra/launcher: submitit_slurm` (or
`submitit_local`, `joblib`, `ray`); Hydra's `basic` launcher, the default, runs jobs one
after another in the calling process, which is what eqxppo does without a launcher.
Any other launcher runs eqxppo's *units* as its jobs: a multirun's population of jobs
(the jobs that differ only in their seed, trained together), or one study of a swept
multirun. Each unit is one launched job that trains its population, so a tree written
for a SLURM cluster runs on one, its populations spread over the cluster's nodes.

The launcher is Hydra's own, instantiated from the composed tree (its settings under
`hydra.launcher`: partition, timeout, resources, `n_jobs` for joblib) and given one
override per unit (`+eqxppo_unit=N`, with `hydra.sweep.subdir=.launched/N`, where Hydra
writes the launched job's own `.hydra/` record and log). The unit travels with the
task, pickled as the launcher pickles it (submitit: cloudpickle); it writes its jobs'
files into their folders, which the calling process holds locked until every unit has
returned. A unit that fails raises in the calling process.
"""

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from ._compose import _hydra, compose_tree


class _Units:
    """The task function each launched job runs: unit `cfg.eqxppo_unit` of `units`."""

    def __init__(self, units: Sequence[Callable[[], Any]]) -> None:
        self.units = list(units)

    def __call__(self, cfg: Any) -> Any:
        return self.units[int(cfg.eqxppo_unit)]()


class TreeLauncher(NamedTuple):
    """The `hydra/launcher` of a composed tree other than `basic`."""

    name: str
    folder: Path
    config_name: str
    overrides: tuple[str, ...]  # the tree's fixed overrides (none that sweeps)

    def map(self, units: Sequence[Callable[[], Any]]) -> list[Any]:
        """Run each unit as one job of the launcher; their return values, in order."""
        if not units:
            return []
        _hydra(self.folder)
        from hydra._internal.hydra import Hydra
        from hydra._internal.utils import create_config_search_path
        from hydra.core.global_hydra import GlobalHydra
        from hydra.core.plugins import Plugins
        from hydra.core.utils import JobStatus
        from hydra.types import HydraContext, RunMode

        GlobalHydra.instance().clear()
        search_path = create_config_search_path(str(self.folder))
        hydra = Hydra.create_main_hydra2(task_name="eqxppo", config_search_path=search_path)
        try:
            cfg = hydra.compose_config(
                self.config_name, list(self.overrides), run_mode=RunMode.MULTIRUN,
                with_log_configuration=False,
            )  # fmt: skip
            from hydra.core.utils import setup_globals

            setup_globals()
            context = HydraContext(config_loader=hydra.config_loader, callbacks=_no_callbacks())
            launcher = Plugins.instance().instantiate_launcher(
                hydra_context=context, task_function=_Units(units), config=cfg
            )
            returns = launcher.launch(
                [[f"+eqxppo_unit={i}", f"hydra.sweep.subdir=.launched/{i}"]
                 for i in range(len(units))],
                initial_job_idx=0,
            )  # fmt: skip
        finally:
            GlobalHydra.instance().clear()
        for job in returns:
            if job.status != JobStatus.COMPLETED:
                # Hydra keeps the unit's exception: raised here, as a basic run raises it.
                raise job._return_value
        return [job.return_value for job in returns]


def _no_callbacks() -> Any:
    from hydra._internal.callbacks import Callbacks

    return Callbacks()


def tree_launcher(
    config_dir: str | os.PathLike,
    *,
    config_name: str = "base",
    overrides: Sequence[str] = (),
    out: str | os.PathLike | None = None,
) -> TreeLauncher | None:
    """The tree's launcher, or None for Hydra's `basic` (jobs in this process).

    Its own files (submitit's `.submitit/`, Hydra's `.launched/N/`) go to the tree's
    `hydra.sweep.dir`, or `out` where the jobs were planned into another folder.

    A launcher whose Hydra plugin is not installed is a `MissingExtraError` naming the
    package (from `compose_tree`).
    """
    from ._compose import fixed_overrides

    fixed = fixed_overrides(overrides)
    if out is not None:
        fixed.append(f"hydra.sweep.dir={Path(out).absolute()}")
    cfg = compose_tree(config_dir, config_name, fixed)
    name = str(cfg.hydra.runtime.choices.get("hydra/launcher", "basic"))
    if name == "basic":
        return None
    return TreeLauncher(name, Path(config_dir).resolve(), config_name, tuple(fixed))
