"""Typed PPO configuration: static structure apart from traced continuous values.

A `ConfigSpace.Configuration` or a plain mapping becomes two objects:

- `PPOConfig`: the values that fix array shapes (`n_steps`, `minibatch_size`) and the
  number of epoch slots compiled (`update_epochs`). All fields are static, so two configs
  with equal fields hit the same compiled program.
- `PPOHyperparams`: everything else as array leaves: the continuous coefficients
  (float32), the epochs a run takes (int32, at most the compiled slots) and the two
  normalisation switches (bool). New values never recompile, and a stack of them
  (leading member axis) trains under one `vmap`. The switches are traced because both
  of their branches are cheap: a `where` over advantages or observations costs less
  than a second compiled program.
"""

import math
from collections.abc import Mapping
from typing import Any, Literal

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float, Int

from .._xla_cpu import Kernels, check_kernels, default_kernels
from ._hpo import get_default_hpo_config
from ._nas import get_default_nas_config


Activation = Literal["tanh", "relu"]
ACTIVATIONS: tuple[Activation, ...] = ("tanh", "relu")
# The recurrent core between the encoder and the heads; "none" is the feed-forward agent.
Recurrent = Literal["none", "gru", "lstm"]
RECURRENT_CORES: tuple[Recurrent, ...] = ("none", "gru", "lstm")


def _as_float32(x: Any) -> Array:
    return jnp.asarray(x, dtype=jnp.float32)


def _as_int32(x: Any) -> Array:
    return jnp.asarray(x, dtype=jnp.int32)


def _as_bool(x: Any) -> Array:
    return jnp.asarray(x, dtype=bool)


class PPOConfig(eqx.Module):
    """The static structure of a PPO run; a change compiles a new program.

    `update_epochs` is the number of epoch slots the program holds; a run takes
    `hparams.update_epochs` of them (equal for a single agent; a population may run
    members with fewer epochs in one program, see `eqxppo.population.plan_groups`).
    `minibatch_size` is the requested size. The batch of one update is
    `n_envs * n_steps` transitions; `minibatches` says how it is cut (the request
    clamped to the batch, whole environment sequences for an agent with memory), and
    each epoch reshuffles it and drops what is left over after the full minibatches (a
    different remainder every epoch, so none is systematically ignored).
    """

    n_steps: int = eqx.field(static=True)
    minibatch_size: int = eqx.field(static=True)
    update_epochs: int = eqx.field(static=True)

    def __check_init__(self):
        for name in ("n_steps", "minibatch_size", "update_epochs"):
            value = getattr(self, name)
            if value < 1:
                raise ValueError(f"PPO hyperparameter `{name}` must be >= 1, got {value!r}.")

    def batch_size(self, n_envs: int) -> int:
        """Transitions collected per update: `n_envs * n_steps`."""
        return n_envs * self.n_steps

    def minibatches(self, n_envs: int, *, sequences: bool = False) -> tuple[int, int, int]:
        """How one update's batch is cut: `(units, per_minibatch, n_minibatches)`.

        A unit is one transition, or with `sequences` (an agent with memory) one
        environment's whole `n_steps` steps. A minibatch takes `minibatch_size`
        transitions' worth of units (at least one, at most all of them); each epoch
        reshuffles the units and trains on `n_minibatches` full minibatches, and the
        units left over sit that epoch out (a different set each epoch).
        """
        length = self.n_steps if sequences else 1
        units = self.batch_size(n_envs) // length
        per_minibatch = min(units, max(1, self.minibatch_size // length))
        return units, per_minibatch, units // per_minibatch


# (lower, upper, lower inclusive, upper inclusive) for each continuous hyperparameter.
_FLOAT_RULES: dict[str, tuple[float, float, bool, bool]] = {
    "learning_rate": (0.0, math.inf, False, False),
    "gamma": (0.0, 1.0, True, True),
    "gae_lambda": (0.0, 1.0, True, True),
    "clip_eps": (0.0, math.inf, True, False),
    "vf_clip_eps": (0.0, math.inf, True, False),
    "ent_coef": (0.0, math.inf, True, False),
    "vf_coef": (0.0, math.inf, True, False),
    "max_grad_norm": (0.0, math.inf, True, False),
}


# Beyond non-finite values, an update whose loss (total or any term) or gradient norm
# passes this is a blow-up: dropped and flagged like divergence. No healthy run of the
# test suite's learning runs comes within six orders of magnitude of it (their losses
# and gradient norms stay below 1e4); the runs it is for reach 1e12 and more
# (`learning_rate=1e8` with `max_grad_norm=0`: a loss of ~1e16 at an entropy of 0).
DEFAULT_DIVERGENCE_LIMIT = 1e10
# Accepted beside ARLBench's 13 hyperparameters (in a config, `--set`, a run's files),
# but no search space tunes it: a guard, not a hyperparameter of the algorithm.
GUARD_KEYS: tuple[str, ...] = ("divergence_limit",)


def _describe_rule(lo: float, hi: float, lo_in: bool, hi_in: bool) -> str:
    if math.isinf(hi):
        return f"{'>=' if lo_in else '>'} {lo:g} and finite"
    return f"in {'[' if lo_in else '('}{lo:g}, {hi:g}{']' if hi_in else ')'}"


def check_continuous(name: str, value: Any) -> None:
    """Raise `ValueError` unless every entry of `value` is in `name`'s range."""
    value = np.asarray(value)
    lo, hi, lo_in, hi_in = _FLOAT_RULES[name]
    ok = np.isfinite(value) & ((value >= lo) if lo_in else (value > lo))
    ok &= (value <= hi) if hi_in else (value < hi)
    if not np.all(ok):
        bad = value if value.ndim == 0 else value[~ok]
        raise ValueError(
            f"PPO hyperparameter `{name}` must be {_describe_rule(lo, hi, lo_in, hi_in)}, "
            f"got {bad.tolist()!r}."
        )


class PPOHyperparams(eqx.Module):
    """The traced PPO hyperparameters: vmappable, checkpointed, never recompiling.

    The continuous coefficients are float32, `update_epochs` int32 (the epochs this run
    takes; the program runs `min(update_epochs, PPOConfig.update_epochs)`), the two
    normalisation switches bool. Each field is a scalar for one agent, or carries a
    leading member axis in a population (build members one by one, then stack with
    `jax.tree.map`). `max_grad_norm = 0` disables gradient clipping; `clip_eps = 0` and
    `vf_clip_eps = 0` are valid. `divergence_limit` is the divergence guard's bound on
    an update's losses and gradient norm (`DEFAULT_DIVERGENCE_LIMIT`; `inf` turns the
    bound off, leaving the non-finite check).
    """

    learning_rate: Float[Array, "*member"] = eqx.field(converter=_as_float32)
    gamma: Float[Array, "*member"] = eqx.field(converter=_as_float32)
    gae_lambda: Float[Array, "*member"] = eqx.field(converter=_as_float32)
    clip_eps: Float[Array, "*member"] = eqx.field(converter=_as_float32)
    vf_clip_eps: Float[Array, "*member"] = eqx.field(converter=_as_float32)
    ent_coef: Float[Array, "*member"] = eqx.field(converter=_as_float32)
    vf_coef: Float[Array, "*member"] = eqx.field(converter=_as_float32)
    max_grad_norm: Float[Array, "*member"] = eqx.field(converter=_as_float32)
    # ARLBench's defaults, so the eight coefficients alone make a valid value.
    update_epochs: Int[Array, "*member"] = eqx.field(converter=_as_int32, default=10)
    normalize_advantage: Bool[Array, "*member"] = eqx.field(converter=_as_bool, default=True)
    normalize_observations: Bool[Array, "*member"] = eqx.field(converter=_as_bool, default=False)
    divergence_limit: Float[Array, "*member"] = eqx.field(
        converter=_as_float32, default=DEFAULT_DIVERGENCE_LIMIT
    )

    def __check_init__(self):
        for name in (*_FLOAT_RULES, "update_epochs", "divergence_limit"):
            try:
                value = np.asarray(getattr(self, name))
            except jax.errors.TracerArrayConversionError:
                continue  # traced (built under jit or vmap): checked where it is concrete
            if name == "divergence_limit":
                if not np.all(value > 0):
                    raise ValueError(
                        "PPO option `divergence_limit` must be > 0 (inf: no bound), got "
                        f"{value.tolist()!r}."
                    )
            elif name == "update_epochs":
                if not np.all(value >= 1):
                    raise ValueError(
                        f"PPO hyperparameter `update_epochs` must be >= 1, got {value.tolist()!r}."
                    )
            else:
                check_continuous(name, value)


def _check_choice(key: str, name: Any, choices: tuple[Any, ...]) -> Any:
    if not isinstance(name, str):
        raise TypeError(f"NAS hyperparameter `{key}` must be a string, got {name!r}.")
    for choice in choices:
        if name == choice:
            return choice
    raise ValueError(f"NAS hyperparameter `{key}` must be one of {list(choices)}, got {name!r}.")


def check_activation(name: Any) -> Activation:
    """`name` as an `Activation`; `TypeError` for a non-string, `ValueError` for an
    unknown name (listing the known ones)."""
    return _check_choice("activation", name, ACTIVATIONS)


def check_recurrent(name: Any) -> Recurrent:
    """`name` as a `Recurrent` core (`"none"`, `"gru"`, `"lstm"`); errors as
    `check_activation`'s."""
    return _check_choice("recurrent", name, RECURRENT_CORES)


class NetworkConfig(eqx.Module):
    """The actor-critic architecture (NAS config plus `cnn_policy`); all static.

    `recurrent` puts a GRU or LSTM core of `hidden_size` units between the encoder (the
    MLP's first layer, or the NatureCNN trunk) and the heads; `"none"` (the default) is
    ARLBench's feed-forward agent.

    `kernels` picks the forms the network computes with: `"cpu"` (XLA:CPU's fast forms,
    `eqxppo._xla_cpu`) or `"plain"` (plain Equinox, every other backend's). `None` means
    "not chosen yet": `resolved()` fills in `default_kernels()` (`EQXPPO_KERNELS`, else
    the CPU forms on the CPU) where an agent is made, outside any traced function, so
    the choice is part of every static key a program is cached under. The parameters do
    not depend on it.
    """

    activation: Activation = eqx.field(static=True)
    hidden_size: int = eqx.field(static=True)
    cnn_policy: bool = eqx.field(static=True, default=False)
    recurrent: Recurrent = eqx.field(static=True, default="none")
    kernels: Kernels | None = eqx.field(static=True, default=None)

    @property
    def is_recurrent(self) -> bool:
        return self.recurrent != "none"

    def resolved(self) -> "NetworkConfig":
        """This configuration with its kernels chosen (`default_kernels()` if unset)."""
        if self.kernels is not None:
            return self
        return NetworkConfig(
            self.activation, self.hidden_size, self.cnn_policy, self.recurrent,
            default_kernels(),
        )  # fmt: skip

    def __check_init__(self):
        check_activation(self.activation)
        check_recurrent(self.recurrent)
        if self.kernels is not None:
            check_kernels(self.kernels)
        if self.hidden_size < 1:
            raise ValueError(
                f"NAS hyperparameter `hidden_size` must be >= 1, got {self.hidden_size!r}."
            )


_INT_KEYS = ("n_steps", "minibatch_size", "update_epochs")
_BOOL_KEYS = ("normalize_advantage", "normalize_observations")
HPO_KEYS: tuple[str, ...] = (*_INT_KEYS, *_BOOL_KEYS, *_FLOAT_RULES)
# The continuous coefficients: what PBT perturbs and a population's members set freely.
CONTINUOUS_KEYS: tuple[str, ...] = tuple(_FLOAT_RULES)
NAS_KEYS: tuple[str, ...] = ("activation", "hidden_size", "recurrent")


def _merged(config: Mapping[str, Any], defaults: Mapping[str, Any], kind: str) -> dict:
    if not isinstance(config, Mapping):
        raise TypeError(
            f"A {kind} config must be a ConfigSpace Configuration or a mapping, "
            f"got {type(config).__name__}."
        )
    unknown = sorted(set(config) - set(defaults))
    if unknown:
        raise ValueError(
            f"Unknown {kind} hyperparameter(s) {unknown}; valid names are {sorted(defaults)}."
        )
    return {**dict(defaults), **dict(config)}


def _to_int(name: str, value: Any) -> int:
    if isinstance(value, bool | np.bool_) or not isinstance(value, int | np.integer):
        raise TypeError(
            f"PPO hyperparameter `{name}` must be an integer, "
            f"got {value!r} ({type(value).__name__})."
        )
    return int(value)


def _to_bool(name: str, value: Any) -> bool:
    if not isinstance(value, bool | np.bool_):
        raise TypeError(
            f"PPO hyperparameter `{name}` must be a bool, got {value!r} ({type(value).__name__})."
        )
    return bool(value)


def _to_float(name: str, value: Any) -> float:
    if isinstance(value, bool | np.bool_) or not isinstance(
        value, int | float | np.integer | np.floating
    ):
        raise TypeError(
            f"PPO hyperparameter `{name}` must be a real number, "
            f"got {value!r} ({type(value).__name__})."
        )
    return float(value)


def parse_hpo_config(config: Mapping[str, Any]) -> tuple[PPOConfig, PPOHyperparams]:
    """Validate a PPO hyperparameter config and split it into static and traced parts.

    **Arguments:**

    - `config`: a `Configuration` of `get_hpo_config_space()` or any mapping with a subset
      of its 13 names; missing names take ARLBench's defaults. A mapping may use any value
      that makes sense, inside the search space or not (`n_steps=100` is fine). It may
      also set the guard's `divergence_limit` (`GUARD_KEYS`).

    **Returns:**

    `(PPOConfig, PPOHyperparams)`.

    **Raises:**

    `ValueError` for an unknown name or a value that makes no sense (`learning_rate <= 0`,
    `gamma > 1`, `n_steps < 1`, ...); `TypeError` for a value of the wrong type. The
    message names the key, the value and what is allowed.
    """
    guard = {k: config[k] for k in GUARD_KEYS if isinstance(config, Mapping) and k in config}
    if guard:
        config = {k: v for k, v in config.items() if k not in GUARD_KEYS}
    values = _merged(config, get_default_hpo_config(), "PPO")
    limit = _to_float("divergence_limit", guard.get("divergence_limit", DEFAULT_DIVERGENCE_LIMIT))
    ints = {k: _to_int(k, values[k]) for k in _INT_KEYS}
    static = PPOConfig(**ints)
    floats = {k: _to_float(k, values[k]) for k in _FLOAT_RULES}
    switches = {k: _to_bool(k, values[k]) for k in _BOOL_KEYS}
    hparams = PPOHyperparams(**floats, update_epochs=ints["update_epochs"], **switches,
                             divergence_limit=limit)  # fmt: skip
    return static, hparams  # their __check_init__s check the ranges


def parse_nas_config(config: Mapping[str, Any] | None, cnn_policy: bool = False) -> NetworkConfig:
    """Validate an architecture config (`activation`, `hidden_size`, `recurrent`) into a
    `NetworkConfig`.

    `None` means the default (tanh, 64, feed-forward: ARLBench's); a mapping with only
    ARLBench's two keys is feed-forward. Unknown names, an unknown activation or
    recurrent core, or a `hidden_size` below 1 raise `ValueError`; a non-integer
    `hidden_size` raises `TypeError`.
    """
    values = _merged({} if config is None else config, get_default_nas_config(), "NAS")
    activation = check_activation(values["activation"])
    hidden_size = values["hidden_size"]
    if isinstance(hidden_size, bool | np.bool_) or not isinstance(hidden_size, int | np.integer):
        raise TypeError(
            f"NAS hyperparameter `hidden_size` must be an integer, got {hidden_size!r}."
        )
    recurrent = check_recurrent(values["recurrent"])
    return NetworkConfig(activation, int(hidden_size), bool(cnn_policy), recurrent)


def hpo_config_to_dict(config: PPOConfig, hparams: PPOHyperparams) -> dict[str, Any]:
    """The inverse of `parse_hpo_config` for one agent: plain Python values by name.

    `update_epochs` is the epochs the run takes (`hparams`'), not the compiled slots;
    the guard's `divergence_limit` comes last.
    """
    out: dict[str, Any] = {"n_steps": config.n_steps, "minibatch_size": config.minibatch_size}
    out["update_epochs"] = int(hparams.update_epochs)
    out.update({k: bool(getattr(hparams, k)) for k in _BOOL_KEYS})
    out.update({k: as_written(getattr(hparams, k)) for k in _FLOAT_RULES})
    return {**{k: out[k] for k in HPO_KEYS},
            "divergence_limit": as_written(hparams.divergence_limit)}  # fmt: skip


def as_written(value: Any) -> float:
    """A traced hyperparameter as the number a user types: the shortest decimal that
    reads back as the same value in its own dtype (`3e-4` held in float32 gives `0.0003`,
    not `0.0003000000142492354`), so a run's files record what was asked and read back
    exactly."""
    scalar = np.asarray(value)[()]
    if not isinstance(scalar, np.floating):
        return float(scalar)
    return float(np.format_float_scientific(scalar, unique=True))
