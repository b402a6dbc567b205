"""The checkpoint file: a JSON header and the state's array leaves, written atomically.

Layout: the line `EQXPPO-CHECKPOINT`, the line `sha256 <hex>`, one line of JSON (format
version, metadata, the payload's length), then the leaves as `eqx.tree_serialise_leaves`
writes them. The checksum covers every byte after its own line, the header included:
`load` rebuilds the agent from the header, so an edited hyperparameter must be caught
as surely as a flipped bit in the parameters. PRNG keys are stored as their key data. A
write goes to a temporary file in the same folder, is flushed to disk and renamed over
the target, so a crash never leaves a half-written file under the checkpoint's name.
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
# 4: the checksum covers the header; the hyperparameters hold `divergence_limit`.
FORMAT_VERSION = 4
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
    header = {"format_version": FORMAT_VERSION, "metadata": metadata, "payload_bytes": len(payload)}
    body = json.dumps(header).encode() + b"\n" + payload
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(_MAGIC)
            f.write(b"sha256 " + hashlib.sha256(body).hexdigest().encode() + b"\n")
            f.write(body)
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
    corrupt = CheckpointError(f"{str(path)!r} is corrupt: its checksum does not match.")
    checksum, newline, body = data[len(_MAGIC) :].partition(b"\n")
    if checksum.startswith(b"{"):  # formats before 4: a header line and no checksum line
        version = _old_version(checksum)
        raise CheckpointError(
            f"{str(path)!r} has checkpoint format {version}, written by an older eqxppo whose "
            f"state layout this version ({FORMAT_VERSION}) does not read; retrain, or load it "
            "with the eqxppo that wrote it."
        )
    if not newline:
        raise CheckpointError(f"{str(path)!r}: the file is truncated.")
    if not checksum.startswith(b"sha256 ") or len(checksum) != len("sha256 ") + 64:
        raise corrupt
    if hashlib.sha256(body).hexdigest().encode() != checksum[len("sha256 ") :]:
        line, newline, payload = body.partition(b"\n")
        expected = _payload_bytes(line)
        if newline and expected is not None and len(payload) < expected:
            raise CheckpointError(
                f"{str(path)!r} is truncated: {len(payload)} of {expected} bytes of state."
            )
        raise corrupt
    # Every byte below was checked: what fails now was written so by an eqxppo.
    line, _, payload = body.partition(b"\n")
    header = json.loads(line)
    version = header["format_version"]
    if version != FORMAT_VERSION:
        raise CheckpointError(
            f"{str(path)!r} has checkpoint format {version!r}; this eqxppo reads format "
            f"{FORMAT_VERSION}. Upgrade eqxppo to load it."
        )
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


def _old_version(line: bytes) -> Any:
    try:
        return json.loads(line).get("format_version")
    except (ValueError, AttributeError):
        return "unknown"


def _payload_bytes(line: bytes) -> int | None:
    """The payload length a (not yet trusted) header claims, to tell truncation from
    corruption in the error."""
    try:
        value = json.loads(line).get("payload_bytes")
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, int) else None
