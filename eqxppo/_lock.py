"""One live run per output folder: an exclusive lock held while a command writes there.

The lock is `fcntl.flock` on `FOLDER/.eqxppo.lock`, taken without waiting. The kernel
releases it when the process dies, however it dies (`kill -9` included), so a crashed
run never leaves a stale lock behind: the lock file may stay, the lock does not. A
second process that asks for a held folder gets `FolderInUse` at once, naming the
folder. Inside one process the lock is re-entrant (a command that locks its folder and
then calls a library function that locks it again); the folder is released when the
outermost holder leaves. Whoever takes a folder first removes the temporary files a
killed writer left there: no live writer can own them any more.

Where `fcntl` does not exist (Windows), folders are not locked.
"""

import contextlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path


try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

LOCK_NAME = ".eqxppo.lock"


class FolderInUse(RuntimeError):
    """Another live process is writing into the folder."""


# Folders this process holds: resolved path -> (open lock file, holders).
_held: dict[Path, tuple[int, int]] = {}
_guard = threading.Lock()


@contextlib.contextmanager
def folder_lock(folder: str | os.PathLike, *, what: str = "run") -> Iterator[Path]:
    """Create `folder` if needed and hold it for this process until the block ends.

    **Raises:**

    `FolderInUse` when another process holds it; `OSError` when the folder cannot be
    created or written (a read-only place, a path through a file).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    key = folder.resolve()
    with _guard:
        if key in _held:
            fd, holders = _held[key]
            _held[key] = (fd, holders + 1)
        else:
            _held[key] = (_acquire(key, what), 1)
            _remove_stale_temporaries(key)
    try:
        yield folder
    finally:
        with _guard:
            fd, holders = _held[key]
            if holders > 1:
                _held[key] = (fd, holders - 1)
            else:
                del _held[key]
                os.close(fd)  # closing the file releases the lock


def _acquire(folder: Path, what: str) -> int:
    fd = os.open(folder / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    if fcntl is None:  # pragma: no cover - Windows
        return fd
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise FolderInUse(
            f"{str(folder)!r} is in use by another eqxppo process (a {what} is writing "
            "there); wait for it to finish or choose another folder."
        ) from None
    return fd


def _remove_stale_temporaries(folder: Path) -> None:
    """Delete the temporary files a killed writer left in `folder` (`.NAME.tmp` and
    `.NAME.<pid>.tmp`, from eqxppo's atomic writes)."""
    for path in folder.glob(".*.tmp"):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
