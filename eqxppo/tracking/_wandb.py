"""Weights & Biases runs: online, or offline (`mode="offline"` or `WANDB_MODE=offline`)
for `wandb sync` later."""

import json
import math
import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .._atomic import write_text
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

    W&B prints a dozen lines per run; they stay out of the terminal unless `verbose`
    (or `$WANDB_SILENT` is set: the user's choice wins). With `dir`, each run's W&B id
    is recorded in `dir/wandb/eqxppo_run_ids.json`, so a resumed run
    (`start_run(..., resume=True)`) continues the same W&B run (its id, `resume="allow"`)
    instead of starting another of the same name.
    """

    def __init__(
        self,
        *,
        project: str | None = None,
        entity: str | None = None,
        dir: str | Path | None = None,
        mode: str | None = None,
        verbose: bool = False,
    ) -> None:
        self.wandb = require("wandb", "wandb", what="the W&B logger")
        self.project = project or os.environ.get("WANDB_PROJECT") or "eqxppo"
        self.entity = entity
        self.dir = None if dir is None else Path(dir)
        self.mode = mode
        self.verbose = verbose

    def _ids(self) -> Path | None:
        return None if self.dir is None else self.dir / "wandb" / "eqxppo_run_ids.json"

    def _run_id(self, key: str, resume: bool) -> str:
        """The W&B id of the run `key`: the recorded one when resuming, else a new one
        (recorded)."""
        path = self._ids()
        ids: dict[str, str] = {}
        if path is not None and path.exists():
            try:
                ids = dict(json.loads(path.read_text()))
            except ValueError:
                ids = {}  # a damaged record: the run starts afresh under a new id
        if resume and key in ids:
            return ids[key]
        ids[key] = secrets.token_hex(6)  # W&B ids: lowercase letters and digits
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_text(path, json.dumps(ids, indent=2, sort_keys=True))
        return ids[key]

    def start_run(
        self,
        name: str,
        *,
        config: Mapping[str, Any],
        group: str | None = None,
        resume: bool = False,
    ) -> AbstractRun:
        if self.dir is not None:
            self.dir.mkdir(parents=True, exist_ok=True)
        quiet = not self.verbose and "WANDB_SILENT" not in os.environ
        run = self.wandb.init(
            project=self.project, entity=self.entity, name=name, group=group,
            config=plain_config(config), dir=None if self.dir is None else str(self.dir),
            mode=self.mode, reinit="create_new",
            id=self._run_id(f"{group or ''}/{name}", resume), resume="allow",
            settings=self.wandb.Settings(silent=True) if quiet else None,
        )  # fmt: skip
        return _WandbRun(run)
