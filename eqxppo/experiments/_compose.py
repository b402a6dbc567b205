"""An ARLBench experiment tree composed by Hydra, as ARLBench's `run_arlbench.py` composes
it: a config folder (`base.yaml`, `smac.yaml`, `random_search.yaml`, groups
`algorithm/`, `environment/`, `search_space/`, `incumbent/`) and Hydra's override
syntax (`environment=box2d_lunar_lander`, `hp_config.gamma=0.9`, `seed=0,1,2`)."""

import itertools
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .._extras import MissingExtraError, require
from ..configspaces import SEARCH_SPACES, search_space_to_dict


# Hypersweeper's sweepers, as ARLBench's trees name them (`override hydra/sweeper: ...`),
# and the `eqxppo.autorl.tune` optimiser each maps onto.
SWEEPERS = {"HyperRS": "random", "HyperSMAC": "smac", "HyperPBT": "pbt"}
# The fields those sweepers read (`hydra.sweeper.*`): registered under their names so a
# tree composes without the Hypersweeper plugin installed.
_SWEEPER_NODE: dict[str, Any] = {
    "n_trials": None,
    "budget": None,
    "budget_variable": None,
    "loading_variable": None,
    "saving_variable": None,
    "resume": False,
    "search_space": {},
    "sweeper_kwargs": {},
}


# The launchers (`hydra/launcher`) Hydra's plugins provide, and the package of each.
LAUNCHER_PLUGINS = {
    "joblib": "hydra-joblib-launcher",
    "submitit_local": "hydra-submitit-launcher",
    "submitit_slurm": "hydra-submitit-launcher",
    "ray": "hydra-ray-launcher",
}


def _divide(x: int | float, y: int | float) -> int | float:
    """`${divide:a,b}`: a / b, a whole number where it is one (budgets are counts)."""
    quotient = x / y
    return int(quotient) if float(quotient).is_integer() else quotient


def _hydra(folder: Path | None = None) -> Any:
    """Hydra, with what ARLBench's trees expect beside it: Hypersweeper's sweepers as
    plain nodes, the OmegaConf resolvers `multiply` and `divide` its run script
    registers (budgets such as `${divide:${max_budget},9}`), and, for the tree in
    `folder`, ARLBench's PPO search spaces as `search_space` options where the tree has
    no file of that name (a tree's own file is never merged with a built-in one: Hydra
    would match it against a stored node of the same name)."""
    hydra = require("hydra", "hydra", what="running an ARLBench experiment tree")
    from hydra.core.config_store import ConfigStore
    from omegaconf import OmegaConf

    store = ConfigStore.instance()
    for name in SWEEPERS:
        store.store(group="hydra/sweeper", name=name, node=dict(_SWEEPER_NODE))
    if folder is not None:
        stored = store.repo.setdefault("search_space", {})
        for name, make in SEARCH_SPACES.items():
            own = any((folder / "search_space" / f"{name}{ext}").exists()
                      for ext in (".yaml", ".yml"))  # fmt: skip
            if own:
                stored.pop(f"{name}.yaml", None)
            elif name != "full":
                node = search_space_to_dict(make(0))
                store.store(group="search_space", name=name, node=node)
    OmegaConf.register_new_resolver("multiply", lambda x, y: x * y, replace=True)
    OmegaConf.register_new_resolver("divide", _divide, replace=True)
    return hydra


def compose_tree(config_dir: str | os.PathLike, config_name: str, overrides: Sequence[str]) -> Any:
    """The composed configuration (an OmegaConf `DictConfig`, Hydra's own node included)."""
    folder = Path(config_dir).resolve()
    if not folder.is_dir():
        raise ValueError(f"no config folder {str(config_dir)!r}.")
    hydra = _hydra(folder)
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    try:
        with hydra.initialize_config_dir(config_dir=str(folder), version_base=None,
                                         job_name="eqxppo"):  # fmt: skip
            return hydra.compose(config_name, overrides=list(overrides), return_hydra_config=True)
    except (HydraException, OmegaConfBaseException) as error:
        for name, package in LAUNCHER_PLUGINS.items():
            if f"hydra/launcher/{name}" in str(error):
                extra = " (or pip install 'eqxppo[cluster]')" if "submitit" in package else ""
                raise MissingExtraError(
                    f"the tree's hydra/launcher {name!r} needs Hydra's plugin: pip install "
                    f"{package}{extra}."
                ) from None
        raise ValueError(
            f"Hydra could not compose {config_name!r} from {folder}: {error}"
        ) from None


def _parse(overrides: Sequence[str]) -> list[Any]:
    _hydra()
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    try:
        return OverridesParser.create().parse_overrides(list(overrides))
    except HydraException as error:
        raise ValueError(f"an override Hydra cannot parse: {error}") from None


def fixed_overrides(overrides: Sequence[str]) -> list[str]:
    """The overrides that sweep over nothing: what Hydra composes a multirun's own
    settings (its sweeper, `hydra.sweep.dir`) from."""
    return [o.input_line for o in _parse(overrides) if not o.is_sweep_override()]


def expand_sweeps(overrides: Sequence[str]) -> list[list[str]]:
    """The jobs of a Hydra multirun: the cartesian product of the sweep overrides
    (`seed=0,1,2`, `range(0,3)`, `choice(...)`), in Hydra's basic sweeper's order (the
    last override varies fastest); overrides without a sweep appear in every job."""
    options = []
    for override in _parse(overrides):
        if override.is_sweep_override():
            key = override.get_key_element()
            options.append([f"{key}={value}" for value in override.sweep_string_iterator()])
        else:
            options.append([override.input_line])
    return [list(job) for job in itertools.product(*options)]
