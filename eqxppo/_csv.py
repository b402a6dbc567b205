"""The one CSV writer: the command line's tables, the CSV logger's runs and an
experiment tree's files all go through it."""

import csv
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ._atomic import temporary


def write_csv(path: Path, rows: Sequence[Mapping[str, Any]]) -> None:
    """Rewrite `path` with `rows` (atomically: a crash leaves the previous file); the
    columns are all the rows' keys, first seen first (a row without one leaves it empty)."""
    tmp = temporary(path)
    with open(tmp, "w", newline="") as f:
        columns = list(dict.fromkeys(key for row in rows for key in row))
        writer = csv.DictWriter(f, fieldnames=columns, restval="")
        writer.writeheader()
        writer.writerows(rows)
    tmp.replace(path)
