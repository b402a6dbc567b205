"""TensorBoard event files through tensorboardX (protobuf and NumPy: neither TensorFlow
nor PyTorch), with the hyperparameters in the HParams plugin's format."""

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .._extras import require
from ._logger import AbstractLogger, AbstractRun, Scalars, plain_config, run_folder


class _TensorBoardRun(AbstractRun):
    def __init__(self, tensorboardx: Any, folder: Path, config: Mapping[str, Any]) -> None:
        self.writer = tensorboardx.SummaryWriter(str(folder))
        self.config = plain_config(config)

    def log(self, step: int, scalars: Scalars) -> None:
        for tag, value in scalars.items():
            self.writer.add_scalar(tag, float(value), int(step))
        self.writer.flush()

    def finish(self, final: Scalars) -> None:
        # The HParams plugin's three summaries in this run's own file (tensorboardX's
        # `add_hparams` would open another run for them): the dashboard's table then has
        # one row per run, its hyperparameters beside its final metrics.
        from tensorboardX.summary import hparams

        metrics = {tag: float(v) for tag, v in final.items() if not math.isnan(v)}
        for summary in hparams(self.config, metrics):
            self.writer.file_writer.add_summary(summary)
        self.writer.close()


class TensorBoardLogger(AbstractLogger):
    """Each run in `root/[group/]name/` as TensorBoard event files: its scalars, and its
    hyperparameters with its final metrics in the HParams dashboard. Open with
    `tensorboard --logdir root`. Needs `eqxppo[tensorboard]`."""

    def __init__(self, root: str | Path) -> None:
        self.tensorboardx = require("tensorboardX", "tensorboard", what="the TensorBoard logger")
        self.root = Path(root)

    def start_run(
        self,
        name: str,
        *,
        config: Mapping[str, Any],
        group: str | None = None,
        resume: bool = False,
    ) -> AbstractRun:
        # A resumed run writes a new event file into the same folder: TensorBoard reads
        # the folder's files as one run, the earlier steps first.
        del resume
        return _TensorBoardRun(self.tensorboardx, run_folder(self.root, name, group), config)
