"""Whole-file writes a crash cannot tear: the new content goes to `.NAME.tmp` beside the
file, then is renamed over it (a rename is atomic within a filesystem), so a reader sees
the old file or the new one, never a part. `_lock.folder_lock` removes the `.*.tmp` a
killed writer leaves behind."""

from pathlib import Path


def temporary(path: Path) -> Path:
    """Where the next content of `path` is written before it replaces `path`."""
    return path.with_name(f".{path.name}.tmp")


def write_text(path: Path, text: str) -> None:
    """Replace `path`'s content with `text`, atomically."""
    tmp = temporary(path)
    tmp.write_text(text)
    tmp.replace(path)
