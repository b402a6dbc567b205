"""Weights & Biases runs: online, or offline (`mode="offline"` or `WANDB_MODE=offline`)
for `wandb sync` later."""

import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .._extras import require
from ._logger import AbstractLogger, AbstractRun, Scalars, plain_config


class _WandbRun(AbstractRun):
    def __init__(self, run: Any) -> None:
        self.run = run

    def log(self, step: int, scalars: Scalars) -> None:
        self.run.log({tag: float(v) for tag, v in scalars.items()}, step=int(step))

    def finish(self, final: Scalars) -> None:
        for tag, value in final.items():
            self.run.summary[tag] = None if math.isnan(value) else float(value)
        self.run.finish()


class WandbLogger(AbstractLogger):
    """One W&B run per eqxppo run, in `project` (default `$WANDB_PROJECT`, else
    `"eqxppo"`), grouped by `group`, with the hyperparameters as its config and the final
    metrics in its summary. `dir` holds W&B's local files; `mode` is W&B's (`"online"`,
    `"offline"`, `"disabled"`; default `$WANDB_MODE`, else online). Needs `eqxppo[wandb]`.
    """

    def __init__(
        self,
        *,
        project: str | None = None,
        entity: str | None = None,
        dir: str | Path | None = None,
        mode: str | None = None,
    ) -> None:
        self.wandb = require("wandb", "wandb", what="the W&B logger")
        self.project = project or os.environ.get("WANDB_PROJECT") or "eqxppo"
        self.entity = entity
        self.dir = None if dir is None else Path(dir)
        self.mode = mode

    def start_run(
        self, name: str, *, config: Mapping[str, Any], group: str | None = None
    ) -> AbstractRun:
        if self.dir is not None:
            self.dir.mkdir(parents=True, exist_ok=True)
        run = self.wandb.init(
            project=self.project, entity=self.entity, name=name, group=group,
            config=plain_config(config), dir=None if self.dir is None else str(self.dir),
            mode=self.mode, reinit="create_new",
        )  # fmt: skip
        return _WandbRun(run)
