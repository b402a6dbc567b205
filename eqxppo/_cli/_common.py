"""What the subcommands share: parsing overrides and config files, progress, CSV, plots."""

import contextlib
import csv
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from .._csv import write_csv as write_csv
from .._extras import MissingExtraError
from .._settings import differences
from ..configspaces import GUARD_KEYS, HPO_KEYS, NAS_KEYS
from ..tracking import AbstractLogger, make_loggers, parse_loggers


CHECKPOINT = "checkpoint.eqx"
# What a diverged run is, for every subcommand that meets one.
DIVERGED = (
    "this run diverged: an update produced a non-finite loss, parameter, optimizer or "
    "observation statistic, or a loss or gradient norm past divergence_limit, and was "
    "dropped; the checkpoint holds the network of the last healthy update, which no "
    "longer learns"
)
# `eqxppo train`'s exit status when the run diverged (its outputs are still written).
EXIT_DIVERGED = 3


# The file that marks each command's folder: a command refuses a folder marked by another.
MARKERS = {"train": "config.json", "sweep": "sweep.json", "tune": "tune.json",
           "arlbench": "config.yaml"}  # fmt: skip


class UserError(Exception):
    """A mistake in what the user asked for: the command line prints it as one line and
    exits with status 2. Any other exception is a bug and shows its traceback."""


@contextlib.contextmanager
def user_input(what: str = "") -> Iterator[None]:
    """Treat the library's `ValueError`/`TypeError` raised inside as the user's mistake.

    Wrap only code that checks what the user typed (hyperparameters, environment names,
    files); an error from training itself is not the user's and must keep its traceback.
    """
    try:
        yield
    except (ValueError, TypeError) as error:
        message = " ".join(str(error).split())
        raise UserError(f"{what}{message}") from error


def refuse_other_commands(out: Path, command: str) -> None:
    """A `UserError` if `out` holds another command's run (its marker file)."""
    for other, marker in MARKERS.items():
        if other != command and (out / marker).exists():
            raise UserError(
                f"{str(out)!r} holds an `eqxppo {other}` run ({marker}); choose another folder."
            )


def check_settings(out: Path, name: str, settings: dict[str, Any], *, may_change=()) -> None:
    """Compare `settings` with those recorded in `out/name` by an earlier run of the same
    command: a `UserError` naming every key that differs (but `may_change`)."""
    saved = out / name
    if not saved.exists():
        return
    try:
        before = json.loads(saved.read_text())
    except (ValueError, UnicodeDecodeError) as error:
        raise UserError(f"{str(saved)!r} is unreadable ({error}).") from None
    differ = differences(settings, before, held_by="the folder's run", ignore=may_change)
    if differ:
        raise UserError(
            f"{str(out)!r} holds a run with other settings: {'; '.join(differ)}. Choose another "
            "folder for a new run."
        )


def parse_value(text: str) -> Any:
    """`true`/`false`, an int, a float, or the text itself."""
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    return text


def split_hpo_nas(values: dict[str, Any], where: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Sort a flat mapping into HPO and NAS hyperparameters; unknown names raise."""
    known = (*HPO_KEYS, *GUARD_KEYS, *NAS_KEYS)
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise UserError(f"Unknown hyperparameter(s) {unknown} in {where}; valid: {sorted(known)}.")
    hpo = {k: v for k, v in values.items() if k in HPO_KEYS or k in GUARD_KEYS}
    nas = {k: v for k, v in values.items() if k in NAS_KEYS}
    return hpo, nas


def parse_sets(items: Sequence[str]) -> dict[str, Any]:
    """`--set KEY=VALUE` items as a mapping."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UserError(f"--set expects KEY=VALUE, got {item!r}.")
        out[key] = parse_value(value)
    return out


def load_config_file(path: str) -> dict[str, Any]:
    """Hyperparameters from JSON or YAML: a flat mapping, or `{"hpo": {...}, "nas": {...}}`
    (the `config.json` a run writes)."""
    file = Path(path)
    if not file.is_file():
        raise UserError(f"--config: no such file {path!r}.")
    if file.suffix not in (".json", ".yaml", ".yml"):
        raise UserError(f"--config {path!r}: expected a .json, .yaml or .yml file.")
    try:
        text = file.read_text()
    except (OSError, UnicodeDecodeError) as error:
        raise UserError(f"--config {path!r} is unreadable: {error}.") from None
    if file.suffix in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:
            message = "--config with YAML needs PyYAML: pip install 'eqxppo[cli]'."
            raise UserError(message) from None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as error:
            message = " ".join(str(error).split())
            raise UserError(f"--config {path!r} is not valid YAML: {message}.") from None
    elif file.suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise UserError(f"--config {path!r} is not valid JSON: {error}.") from None
    else:
        raise UserError(f"--config {path!r}: expected a .json, .yaml or .yml file.")
    if not isinstance(data, dict):
        raise UserError(f"--config {path!r} must hold a mapping of hyperparameters.")
    if "hpo" in data or "nas" in data:
        data = {**data.get("hpo", {}), **data.get("nas", {})}
    return data


def progress(total: int, initial: int = 0, *, unit: str = "step"):
    """A tqdm bar on stderr counting `unit`s (environment steps, scaled as 1.2M; or
    trials, jobs, one by one), or `None` without the `cli` extra (plain lines instead)."""
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, initial=initial, unit=unit, unit_scale=unit == "step",
                dynamic_ncols=True)  # fmt: skip


def written_folders(out: Path, logger: str) -> list[str]:
    """The loggers' folders under `out` that exist, for a command's last line (each
    logger writes into the folder of its name: `tracking.make_loggers`)."""
    with user_input("--logger: "):
        names = parse_loggers(logger)
    return [f"{name}/" for name in names if (out / name).is_dir()]


def open_loggers(text: str, out: Path | None) -> list[AbstractLogger]:
    """`--logger`'s backends beyond the command's own CSV files (always written: a resumed
    run reads them), writing under `out`."""
    with user_input("--logger: "):
        names = [name for name in parse_loggers(text) if name != "csv"]
    if names and out is None:
        raise UserError(f"--logger {','.join(names)} writes into the run's folder: add --out DIR.")
    try:
        return make_loggers(names, out) if names and out is not None else []
    except MissingExtraError as error:
        raise UserError(str(error)) from None


def read_csv(path: Path) -> list[dict[str, Any]]:
    """Rows of a CSV this command line wrote, with numbers parsed."""
    with open(path, newline="") as f:
        return [{k: parse_value(v) for k, v in row.items()} for row in csv.DictReader(f)]


def pyplot():
    """matplotlib's pyplot on the Agg backend (no screen needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
