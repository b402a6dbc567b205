"""The logger contract, and the CSV logger that needs nothing beyond the standard library.

A logger opens one *run* per thing trained (a single agent, a population member, an HPO
trial), named and grouped, with its hyperparameters; a run receives rows of scalars at
global steps and is finished with its final metrics. Loggers are host-side: they take
what a compiled `train` call returned, so logging costs the compiled program nothing.
"""

import abc
import csv
import json
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .._csv import write_csv


Scalars = Mapping[str, float]


class AbstractRun(abc.ABC):
    """One run of a logger: `log` rows at global steps, then `finish` once."""

    @abc.abstractmethod
    def log(self, step: int, scalars: Scalars) -> None:
        """Record `scalars` (tag -> value) at global step `step`."""

    @abc.abstractmethod
    def finish(self, final: Scalars) -> None:
        """Record the run's final metrics (what a hyperparameter table compares) and close."""


class AbstractLogger(abc.ABC):
    """Opens runs in one backend (CSV files, TensorBoard, W&B)."""

    @abc.abstractmethod
    def start_run(
        self,
        name: str,
        *,
        config: Mapping[str, Any],
        group: str | None = None,
        resume: bool = False,
    ) -> AbstractRun:
        """A run called `name` (unique within its group) with hyperparameters `config`;
        `group` gathers runs that belong together (a sweep's members, a study's trials).
        `resume`: continue the run of that name and group this logger wrote before (a
        resumed training run), its earlier steps kept; a new run if there is none."""


def run_folder(root: Path, name: str, group: str | None) -> Path:
    """`root/[group/]name`, each part made safe as a folder name."""
    parts = [part for part in (group, name) if part]
    return root.joinpath(*(re.sub(r"[^\w.=+-]+", "_", part) for part in parts))


def plain_config(config: Mapping[str, Any]) -> dict[str, bool | int | float | str]:
    """Hyperparameters as the scalar types every backend stores (others as text)."""
    out: dict[str, bool | int | float | str] = {}
    for key, value in config.items():
        if hasattr(value, "item"):  # a NumPy or JAX scalar
            value = value.item()
        out[key] = value if isinstance(value, bool | int | float | str) else str(value)
    return out


class _CSVRun(AbstractRun):
    def __init__(self, folder: Path, config: Mapping[str, Any], resume: bool) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.config = plain_config(config)
        self.rows: list[dict[str, float]] = []
        if resume and (folder / "metrics.csv").exists():
            with open(folder / "metrics.csv", newline="") as f:
                self.rows = [{k: float(v) for k, v in row.items() if v != ""}
                             for row in csv.DictReader(f)]  # fmt: skip
        (folder / "config.json").write_text(json.dumps(self.config, indent=2))

    def log(self, step: int, scalars: Scalars) -> None:
        self.rows.append({"step": int(step), **{k: float(v) for k, v in scalars.items()}})
        write_csv(self.folder / "metrics.csv", self.rows)

    def finish(self, final: Scalars) -> None:
        values = {k: None if math.isnan(v) else float(v) for k, v in final.items()}
        record = {"config": self.config, "final": values}
        (self.folder / "final.json").write_text(json.dumps(record, indent=2))


class CSVLogger(AbstractLogger):
    """Each run in `root/[group/]name/`: `config.json` (its hyperparameters),
    `metrics.csv` (one row per logged step, rewritten atomically as rows arrive) and, once
    finished, `final.json` (hyperparameters and final metrics)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def start_run(
        self,
        name: str,
        *,
        config: Mapping[str, Any],
        group: str | None = None,
        resume: bool = False,
    ) -> AbstractRun:
        return _CSVRun(run_folder(self.root, name, group), config, resume)
