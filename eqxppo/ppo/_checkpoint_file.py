"""The checkpoint file: a JSON header and the state's array leaves, written atomically.

Layout: the line `EQXPPO-CHECKPOINT`, one line of JSON (format version, metadata, the
payload's length and SHA-256), then the leaves as `eqx.tree_serialise_leaves` writes
them. PRNG keys are stored as their key data. A write goes to a temporary file in the
same folder, is flushed to disk and renamed over the target, so a crash never leaves a
half-written file under the checkpoint's name.
"""

import hashlib
import io
import json
import os
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr


T = TypeVar("T")
# 2: the optimizer state is over the parameter tree; the runner state has `diverged`.
FORMAT_VERSION = 3
_MAGIC = b"EQXPPO-CHECKPOINT\n"


class CheckpointError(ValueError):
    """A checkpoint that cannot be read: not one, truncated, corrupt, too new, or foreign."""


def _is_key(x: Any) -> bool:
    return isinstance(x, jax.Array | jax.ShapeDtypeStruct) and jnp.issubdtype(
        x.dtype, jax.dtypes.prng_key
    )


def _key_data(tree: Any) -> Any:
    return jax.tree.map(lambda x: jr.key_data(x) if _is_key(x) else x, tree)


def write_checkpoint(path: str | os.PathLike, metadata: dict[str, Any], tree: Any) -> Path:
    """Write `tree`'s array leaves and `metadata` (JSON-able) to `path`, atomically."""
    path = Path(path)
    buffer = io.BytesIO()
    eqx.tree_serialise_leaves(buffer, _key_data(eqx.filter(tree, eqx.is_array)))
    payload = buffer.getvalue()
    header = {
        "format_version": FORMAT_VERSION,
        "metadata": metadata,
        "payload_bytes": len(payload),
        "payload_sha256": hashlib.sha256(payload).hexdigest(),
    }
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(_MAGIC)
            f.write(json.dumps(header).encode() + b"\n")
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


class CheckpointFile(NamedTuple):
    """A checkpoint read whole and checked: its metadata and the serialised leaves."""

    path: Path
    metadata: dict[str, Any]
    payload: bytes


def open_checkpoint(path: str | os.PathLike) -> CheckpointFile:
    """Read `path` once and check it is a whole checkpoint this version can read."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"No checkpoint at {str(path)!r}.")
    data = path.read_bytes()
    if not data.startswith(_MAGIC):
        raise CheckpointError(f"{str(path)!r} is not an eqxppo checkpoint.")
    line, newline, payload = data[len(_MAGIC) :].partition(b"\n")
    try:
        if not newline:
            raise ValueError
        header = json.loads(line)
    except ValueError:
        raise CheckpointError(f"{str(path)!r}: the header is truncated or corrupt.") from None
    version = header.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(
            f"{str(path)!r} has checkpoint format {version!r}; this eqxppo reads formats up to "
            f"{FORMAT_VERSION}. Upgrade eqxppo to load it."
        )
    if version < FORMAT_VERSION:
        raise CheckpointError(
            f"{str(path)!r} has checkpoint format {version}, written by an older eqxppo whose "
            f"state layout this version ({FORMAT_VERSION}) does not read; retrain, or load it "
            "with the eqxppo that wrote it."
        )
    if len(payload) != header["payload_bytes"]:
        raise CheckpointError(
            f"{str(path)!r} is truncated: {len(payload)} of {header['payload_bytes']} bytes "
            "of state."
        )
    if hashlib.sha256(payload).hexdigest() != header["payload_sha256"]:
        raise CheckpointError(f"{str(path)!r} is corrupt: the state's checksum does not match.")
    return CheckpointFile(path, header["metadata"], payload)


def read_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The metadata `write_checkpoint` stored, after checking the file is whole."""
    return open_checkpoint(path).metadata


def read_state(checkpoint: CheckpointFile, like: T) -> T:
    """Load the leaves into the structure of `like` (arrays or `jax.ShapeDtypeStruct`s).

    Raises `CheckpointError` when the file's leaves do not have `like`'s shapes and dtypes
    (a checkpoint of another configuration or environment).
    """
    path, payload = checkpoint.path, checkpoint.payload
    arrays, static = eqx.partition(like, lambda x: isinstance(x, jax.Array | jax.ShapeDtypeStruct))
    keys = jax.tree.map(_is_key, arrays)
    template = jax.eval_shape(_key_data, arrays)
    buffer = io.BytesIO(payload)
    mismatch = CheckpointError(
        f"{str(path)!r} holds a state of another shape: it was saved with another "
        "configuration, architecture or environment."
    )
    try:
        loaded = eqx.tree_deserialise_leaves(buffer, template)
    except Exception as error:  # noqa: BLE001 - any failure here means a foreign layout
        raise mismatch from error
    if buffer.tell() != len(payload):
        raise mismatch
    for got, want in zip(jax.tree.leaves(loaded), jax.tree.leaves(template)):
        if got.shape != want.shape or got.dtype != want.dtype:
            raise mismatch
    loaded = jax.tree.map(lambda x, k: jr.wrap_key_data(x) if k else x, loaded, keys)
    return eqx.combine(loaded, static)
