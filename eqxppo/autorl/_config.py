"""The AutoRL environment's configuration, objectives and state features, shared by the
single and the population environment.

The keys, defaults and meanings are ARLBench's (`DEFAULT_AUTO_RL_CONFIG`), with PPO the
only (and default) algorithm. Objectives: `reward_mean` and `reward_std` of the last
evaluation's returns (ARLBench's `reward_std` reports the mean by mistake; here it is
the standard deviation), `runtime` (seconds of the step's training, compilation
included), `emissions` (kg CO2 of the step's training, measured by codecarbon: the
`emissions` extra). With `optimize_objectives="upper"` every objective is to be
maximised, so the naturally minimised ones (`runtime`, `reward_std`, `emissions`) are
negated; with `"lower"` the naturally maximised `reward_mean` is negated, as ARLBench
does.
"""

import math
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np

from .._counts import as_count
from .._extras import require
from ..envs import AbstractEnvironment, make_env


DEFAULT_AUTO_RL_CONFIG: dict[str, Any] = {
    "seed": 42,
    "env_framework": "gymnax",
    "env_name": "CartPole-v1",
    "env_kwargs": {},
    "eval_env_kwargs": {},
    "n_envs": 10,
    "algorithm": "ppo",
    "cnn_policy": False,
    "deterministic_eval": True,
    "nas_config": {},
    "checkpoint": [],
    "checkpoint_name": "default_checkpoint",
    "checkpoint_dir": "/tmp",
    "objectives": ["reward_mean"],
    "optimize_objectives": "upper",
    "state_features": [],
    "n_steps": 10,
    "n_total_timesteps": 1e5,
    "n_eval_steps": 100,
    "n_eval_episodes": 10,
}
# Each objective's natural direction, in ARLBench's order of computation.
OBJECTIVES = {"runtime": "lower", "emissions": "lower", "reward_mean": "upper",
              "reward_std": "lower"}  # fmt: skip
STATE_FEATURES = ("grad_info",)
CHECKPOINT_PARTS = ("opt_state", "params", "loss", "trajectories", "all")


# The config's counts and their least values (`merge_config` makes them ints).
COUNT_KEYS = {"seed": 0, "n_envs": 1, "n_steps": 1, "n_total_timesteps": 0, "n_eval_steps": 1,
              "n_eval_episodes": 1}  # fmt: skip


def merge_config(config: Mapping[str, Any] | None) -> dict[str, Any]:
    """ARLBench's defaults updated by `config`; unknown keys warn and are ignored (as
    ARLBench does); values that make no sense raise `ValueError`."""
    merged = dict(DEFAULT_AUTO_RL_CONFIG)
    for key, value in (config or {}).items():
        if key in DEFAULT_AUTO_RL_CONFIG:
            merged[key] = value
        else:
            warnings.warn(f"Invalid config key {key!r}. This item will be ignored.", stacklevel=3)
    if merged["algorithm"] != "ppo":
        raise ValueError(
            f"eqxppo's AutoRL environment runs PPO, got algorithm={merged['algorithm']!r}."
        )
    objectives = list(dict.fromkeys(merged["objectives"]))
    if not objectives:
        raise ValueError("Please select at least one optimization objective.")
    for name in objectives:
        if name not in OBJECTIVES:
            raise ValueError(f"Invalid objective {name!r}; valid: {list(OBJECTIVES)}.")
    if "emissions" in objectives:
        require("codecarbon", "emissions", what="The 'emissions' objective")
    if merged["optimize_objectives"] not in ("upper", "lower"):
        raise ValueError(
            "optimize_objectives must be 'upper' or 'lower', got "
            f"{merged['optimize_objectives']!r}."
        )
    for name in merged["state_features"]:
        if name not in STATE_FEATURES:
            raise ValueError(f"Invalid state feature {name!r}; valid: {list(STATE_FEATURES)}.")
    for name in merged["checkpoint"]:
        if name not in CHECKPOINT_PARTS:
            raise ValueError(f"Invalid checkpoint part {name!r}; valid: {list(CHECKPOINT_PARTS)}.")
    merged["objectives"] = objectives
    # Counts through eqxppo's one parser: `1e5` is a count, `1.5` and `True` are not.
    for key, low in COUNT_KEYS.items():
        merged[key] = as_count(key, merged[key], low)
    return merged


def make_envs(config: Mapping[str, Any]) -> tuple[AbstractEnvironment, AbstractEnvironment]:
    """The training and evaluation environments, as ARLBench makes them (the evaluation
    environment with `eval_env_kwargs` and seed `seed + 1`)."""
    common = {"cnn_policy": config["cnn_policy"], "n_envs": config["n_envs"]}
    env = make_env(config["env_framework"], config["env_name"], seed=config["seed"],
                   env_kwargs=dict(config["env_kwargs"]), **common)  # fmt: skip
    eval_env = make_env(config["env_framework"], config["env_name"], seed=config["seed"] + 1,
                        env_kwargs=dict(config["eval_env_kwargs"]), **common)  # fmt: skip
    return env, eval_env


def agent_options(config: Mapping[str, Any]) -> dict[str, Any]:
    """`PPO`'s and `Population`'s architecture and evaluation options from the config."""
    return {"nas_config": config["nas_config"], "cnn_policy": config["cnn_policy"],
            "deterministic_eval": config["deterministic_eval"]}  # fmt: skip


def tracks_metrics(config: Mapping[str, Any]) -> bool:
    """Whether training must keep its metrics (gradient features, or loss checkpoints)."""
    parts = config["checkpoint"]
    return "grad_info" in config["state_features"] or "all" in parts or "loss" in parts


def tracks_trajectories(config: Mapping[str, Any]) -> bool:
    parts = config["checkpoint"]
    return "all" in parts or "trajectories" in parts


def worst(config: Mapping[str, Any]) -> dict[str, float]:
    """The worst value of every objective (what a diverged run reports)."""
    maximise = config["optimize_objectives"] == "upper"
    return {name: (-math.inf if maximise else math.inf) for name in config["objectives"]}


def objectives(
    config: Mapping[str, Any],
    last_returns: np.ndarray,
    runtime: float,
    emissions: float | None = None,
) -> dict[str, float]:
    """The configured objectives of one run from its last evaluation's returns."""
    natural = {
        "reward_mean": float(np.mean(last_returns)),
        "reward_std": float(np.std(last_returns)),
        "runtime": float(runtime),
        "emissions": math.nan if emissions is None else float(emissions),
    }
    goal = config["optimize_objectives"]
    return {
        name: natural[name] if OBJECTIVES[name] == goal else -natural[name]
        for name in config["objectives"]
    }


class EmissionsMeter:
    """codecarbon's tracker around one training call (the `emissions` objective)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled, self.kg = enabled, None

    def __enter__(self) -> "EmissionsMeter":
        if self.enabled:
            codecarbon = require("codecarbon", "emissions", what="The 'emissions' objective")
            self._tracker = codecarbon.OfflineEmissionsTracker(
                country_iso_code="USA", save_to_file=False, log_level="error"
            )
            self._tracker.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.enabled:
            self.kg = self._tracker.stop()
