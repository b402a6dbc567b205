"""A ConfigSpace search space as a gymnasium space (the AutoRL environment's action
space) or as Optuna distributions (for `study.ask`)."""

from typing import Any

import numpy as np
from ConfigSpace import (
    CategoricalHyperparameter,
    ConfigurationSpace,
    OrdinalHyperparameter,
    UniformFloatHyperparameter,
    UniformIntegerHyperparameter,
)

from .._extras import require


def to_gymnasium(space: ConfigurationSpace, seed: int | None = None) -> Any:
    """`gymnasium.spaces.Dict`: a `Box` per float or integer, a `Discrete` per categorical
    (the index of the choice), as ARLBench converts its spaces."""
    import gymnasium

    spaces: dict[str, Any] = {}
    for name, hp in space.items():
        if isinstance(hp, UniformFloatHyperparameter):
            spaces[name] = gymnasium.spaces.Box(hp.lower, hp.upper, seed=seed, dtype=np.float32)
        elif isinstance(hp, UniformIntegerHyperparameter):
            spaces[name] = gymnasium.spaces.Box(hp.lower, hp.upper, seed=seed, dtype=np.int32)
        elif isinstance(hp, CategoricalHyperparameter | OrdinalHyperparameter):
            n = len(hp.choices) if isinstance(hp, CategoricalHyperparameter) else len(hp.sequence)
            spaces[name] = gymnasium.spaces.Discrete(n, seed=seed)
        else:
            raise ValueError(f"Cannot convert hyperparameter {name!r} ({type(hp).__name__}).")
    return gymnasium.spaces.Dict(spaces, seed=seed)


def to_optuna(space: ConfigurationSpace) -> dict[str, Any]:
    """Optuna distributions by name: floats and integers keep their bounds and log
    scale, categoricals and ordinals their choices. Conditions and forbidden clauses
    are not converted (PPO's spaces have none); a space that has them raises."""
    optuna = require("optuna", "autorl", what="The Optuna search space")
    if space.conditions or space.forbidden_clauses:
        raise ValueError("Spaces with conditions or forbidden clauses cannot become Optuna's.")
    dists = optuna.distributions
    out: dict[str, Any] = {}
    for name, hp in space.items():
        if isinstance(hp, UniformFloatHyperparameter):
            out[name] = dists.FloatDistribution(hp.lower, hp.upper, log=hp.log)
        elif isinstance(hp, UniformIntegerHyperparameter):
            out[name] = dists.IntDistribution(hp.lower, hp.upper, log=hp.log)
        elif isinstance(hp, CategoricalHyperparameter):
            out[name] = dists.CategoricalDistribution(list(hp.choices))
        elif isinstance(hp, OrdinalHyperparameter):
            out[name] = dists.CategoricalDistribution(list(hp.sequence))
        else:
            raise ValueError(f"Cannot convert hyperparameter {name!r} ({type(hp).__name__}).")
    return out
