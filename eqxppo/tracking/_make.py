"""Loggers by name, as the command line's `--logger` lists them."""

from collections.abc import Sequence
from pathlib import Path

from ._logger import AbstractLogger, CSVLogger
from ._tensorboard import TensorBoardLogger
from ._wandb import WandbLogger


LOGGERS = ("csv", "tensorboard", "wandb")


def parse_loggers(text: str) -> tuple[str, ...]:
    """`"csv,tensorboard"` as `("csv", "tensorboard")`; an unknown name raises."""
    names = tuple(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
    unknown = [name for name in names if name not in LOGGERS]
    if unknown or not names:
        raise ValueError(f"Unknown logger(s) {unknown or [text]}; choose from {list(LOGGERS)}.")
    return names


def make_loggers(names: Sequence[str], root: str | Path) -> list[AbstractLogger]:
    """One logger per name, writing under `root`: CSV files in `root/csv/`, TensorBoard
    event files in `root/tensorboard/`, W&B's local files in `root/` (its `wandb/`)."""
    root = Path(root)
    loggers: list[AbstractLogger] = []
    for name in names:
        if name == "csv":
            loggers.append(CSVLogger(root / "csv"))
        elif name == "tensorboard":
            loggers.append(TensorBoardLogger(root / "tensorboard"))
        elif name == "wandb":
            loggers.append(WandbLogger(dir=root))
        else:
            raise ValueError(f"Unknown logger {name!r}; choose from {list(LOGGERS)}.")
    return loggers
