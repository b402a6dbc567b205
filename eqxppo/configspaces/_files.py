"""Search spaces in files: ARLBench's YAML form, read into (and written from) ConfigSpace.

ARLBench's experiments keep their search spaces as YAML (`search_space/*.yaml`):

```yaml
seed: 0
hyperparameters:
  hp_config.learning_rate: {type: uniform_float, lower: 1.0e-06, upper: 0.1, log: true}
  hp_config.minibatch_size: {type: categorical, choices: [128, 256, 512], default: 128}
  hp_config.update_epochs: {type: uniform_int, lower: 1, upper: 20}
```

Names may carry ARLBench's `hp_config.` prefix or not; each must be one of PPO's 13
hyperparameters. Types: `uniform_float`, `uniform_int` (`lower`, `upper`, optional `log`
and `default`), `categorical` (`choices`, optional `default`), `ordinal` (`sequence`,
optional `default`) and `constant` (`value`). Anything else is refused with a message
naming the key.
"""

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ConfigSpace import (
    Categorical,
    ConfigurationSpace,
    Constant,
    Float,
    Integer,
    OrdinalHyperparameter,
)
from ConfigSpace.hyperparameters import (
    CategoricalHyperparameter,
    Hyperparameter,
    NumericalHyperparameter,
    UniformFloatHyperparameter,
)

from .._extras import require
from ._config import HPO_KEYS, parse_hpo_config
from ._hpo import SEARCH_SPACES


PREFIX = "hp_config."
TYPES = ("uniform_float", "uniform_int", "categorical", "ordinal", "constant")
_OPTIONS = {
    "uniform_float": {"lower", "upper", "log", "default"},
    "uniform_int": {"lower", "upper", "log", "default"},
    "categorical": {"choices", "default"},
    "ordinal": {"sequence", "default"},
    "constant": {"value"},
}


def _hyperparameter(name: str, spec: Any, where: str) -> Hyperparameter:
    if not isinstance(spec, Mapping) or "type" not in spec:
        raise ValueError(f"{where}: `{name}` needs a mapping with a `type`, got {spec!r}.")
    kind = spec["type"]
    if kind not in TYPES:
        raise ValueError(f"{where}: `{name}` has unknown type {kind!r}; known: {list(TYPES)}.")
    unknown = sorted(set(spec) - {"type"} - _OPTIONS[kind])
    if unknown:
        raise ValueError(
            f"{where}: `{name}` ({kind}) has unknown option(s) {unknown}; "
            f"known: {sorted(_OPTIONS[kind])}."
        )
    default = {"default": spec["default"]} if "default" in spec else {}
    try:
        if kind in ("uniform_float", "uniform_int"):
            make = Float if kind == "uniform_float" else Integer
            bounds = (spec["lower"], spec["upper"])
            return make(name, bounds, log=bool(spec.get("log", False)), **default)
        if kind == "categorical":
            return Categorical(name, list(spec["choices"]), **default)
        if kind == "ordinal":
            sequence = list(spec["sequence"])
            first = spec.get("default", sequence[0])
            return OrdinalHyperparameter(name, sequence, default_value=first)
        return Constant(name, spec["value"])
    except KeyError as missing:
        raise ValueError(f"{where}: `{name}` ({kind}) needs {missing}.") from None


def read_search_space(path: str | os.PathLike, seed: int | None = None) -> ConfigurationSpace:
    """The search space a YAML file in ARLBench's form describes (see the module's text).

    `seed` overrides the file's `seed`. Raises `ValueError` for a file that is not YAML
    and naming an unknown hyperparameter, type or option, and `FileNotFoundError` for a
    missing file.
    """
    yaml = require("yaml", "cli", what="a search space file")
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        message = " ".join(str(error).split())
        raise ValueError(f"search space {str(path)!r} is not readable YAML: {message}") from None
    return parse_search_space(data, name=path.stem, seed=seed,
                              where=f"search space {str(path)!r}")  # fmt: skip


def parse_search_space(
    data: Any, *, name: str, seed: int | None = None, where: str = "search space"
) -> ConfigurationSpace:
    """The search space of a mapping in ARLBench's form (a YAML file's content, or an
    experiment tree's composed `search_space`), as `read_search_space`; `where` names it
    in errors."""
    if not isinstance(data, Mapping) or not isinstance(data.get("hyperparameters"), Mapping):
        raise ValueError(f"{where} must hold a mapping with `hyperparameters`.")
    extra = sorted(set(data) - {"seed", "hyperparameters"})
    if extra:
        raise ValueError(
            f"{where}: unsupported key(s) {extra} (conditions and forbidden clauses are "
            "not supported; PPO's hyperparameters have none)."
        )
    space = ConfigurationSpace(name=name, seed=data.get("seed") if seed is None else seed)
    for key, spec in data["hyperparameters"].items():
        hp_name = key.removeprefix(PREFIX)
        if hp_name not in HPO_KEYS:
            raise ValueError(
                f"{where}: unknown hyperparameter {key!r}; PPO's are "
                f"{sorted(PREFIX + k for k in HPO_KEYS)} (the prefix is optional)."
            )
        hp = _hyperparameter(hp_name, spec, where)
        _check_values(hp, where)
        space.add(hp)
    return space


def _check_values(hp: Hyperparameter, where: str) -> None:
    """Every value `hp` can take (its bounds, choices, sequence or constant) must be one
    PPO accepts: a space is checked when it is read, not when a trial draws the value."""
    if isinstance(hp, NumericalHyperparameter):
        values = [hp.lower, hp.upper]
    elif isinstance(hp, CategoricalHyperparameter):
        values = list(hp.choices)
    elif isinstance(hp, OrdinalHyperparameter):
        values = list(hp.sequence)
    else:
        values = [hp.value]  # type: ignore[attr-defined]
    for value in values:
        try:
            parse_hpo_config({hp.name: _plain(value)})
        except (ValueError, TypeError) as error:
            raise ValueError(f"{where}: `{hp.name}` can take {_plain(value)!r}: {error}") from None


def search_space_to_yaml(space: ConfigurationSpace, seed: int = 0) -> str:
    """`space` in ARLBench's YAML form, with the `hp_config.` prefix; `read_search_space`
    reads it back into an equal space."""
    yaml = require("yaml", "cli", what="a search space file")
    return yaml.safe_dump(search_space_to_dict(space, seed), sort_keys=False)


def search_space_to_dict(space: ConfigurationSpace, seed: int = 0) -> dict[str, Any]:
    """`space` as the mapping ARLBench's YAML form holds (`parse_search_space` reads it
    back into an equal space)."""
    out: dict[str, Any] = {}
    for hp in space.values():
        spec: dict[str, Any]
        if isinstance(hp, NumericalHyperparameter):
            kind = "uniform_float" if isinstance(hp, UniformFloatHyperparameter) else "uniform_int"
            spec = {"type": kind, "lower": _plain(hp.lower), "upper": _plain(hp.upper),
                    "log": bool(hp.log), "default": _plain(hp.default_value)}  # fmt: skip
        elif isinstance(hp, CategoricalHyperparameter):
            spec = {"type": "categorical", "choices": [_plain(c) for c in hp.choices],
                    "default": _plain(hp.default_value)}  # fmt: skip
        elif isinstance(hp, OrdinalHyperparameter):
            spec = {"type": "ordinal", "sequence": [_plain(c) for c in hp.sequence],
                    "default": _plain(hp.default_value)}  # fmt: skip
        elif isinstance(hp, Constant):
            spec = {"type": "constant", "value": _plain(hp.value)}
        else:
            raise ValueError(f"{hp.name}: {type(hp).__name__} has no ARLBench YAML form.")
        out[PREFIX + hp.name] = spec
    return {"seed": seed, "hyperparameters": out}


def _plain(value: Any) -> Any:
    """A NumPy scalar as the Python value YAML writes."""
    return value.item() if hasattr(value, "item") else value


def get_search_space(name: str | os.PathLike, seed: int | None = None) -> ConfigurationSpace:
    """A PPO search space: a named one, `"full"` (all 13) or one of ARLBench's
    (`"ppo_cc"`, `"ppo_minigrid"`, `"ppo_atari"`, `"ppo_mujoco"`), or a YAML file in
    ARLBench's form (a path ending in `.yaml` or `.yml`: `read_search_space`). Raises
    `ValueError` for another name, listing these."""
    if str(name).endswith((".yaml", ".yml")):
        return read_search_space(name, seed)
    if name not in SEARCH_SPACES:
        raise ValueError(
            f"Unknown search space {str(name)!r}; known: {sorted(SEARCH_SPACES)}, or a "
            ".yaml file in ARLBench's form."
        )
    return SEARCH_SPACES[str(name)](seed)
