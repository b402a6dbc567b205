"""A rerun's settings against those its folder recorded: which keys differ.

Every command that refuses a rerun with other settings (`train`, `sweep`, `tune`, a
study, a tree job) compares the same way: both sides as JSON would hold them, nested
mappings as dotted keys, each difference named with both values.
"""

import json
from collections.abc import Collection, Mapping
from typing import Any


def _flat(tree: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(tree, Mapping) or not tree:
        return {prefix.rstrip("."): tree}
    return {k: v for key, value in tree.items() for k, v in _flat(value, f"{prefix}{key}.").items()}


def as_recorded(settings: Mapping[str, Any]) -> Any:
    """`settings` as a JSON file records them (tuples as lists, other objects as text)."""
    return json.loads(json.dumps(settings, default=str))


def differences(
    now: Mapping[str, Any], recorded: Any, *, held_by: str, ignore: Collection[str] = ()
) -> list[str]:
    """`key=new (HELD_BY has old)` for every key, nested ones dotted, whose value differs
    between `now` and `recorded` (but the top-level keys in `ignore`)."""
    new, old = _flat(as_recorded(now)), _flat(recorded)
    return [f"{k}={new.get(k)!r} ({held_by} has {old.get(k)!r})"
            for k in sorted(set(new) | set(old))
            if k.split(".")[0] not in ignore and new.get(k) != old.get(k)]  # fmt: skip
