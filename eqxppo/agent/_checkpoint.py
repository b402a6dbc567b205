"""Save an agent's whole state and load it back as a ready agent.

The file holds the complete `PPORunnerState` (parameters, optimizer state, observation
normaliser, environment state, last observation, PRNG key, step counter, continuous
hyperparameters) plus, as JSON, what `load` needs to rebuild the agent: the
hyperparameters, architecture, environment arguments and package versions.
"""

import os
from importlib.metadata import version
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
from jaxtyping import Array, PRNGKeyArray

from ..configspaces import PPOConfig, PPOHyperparams, get_default_nas_config, hpo_config_to_dict
from ..envs import AbstractEnvironment
from ..ppo import AgentSpec, PPOState
from ._checkpoint_file import CheckpointError, open_checkpoint, read_state, write_checkpoint
from ._ppo import PPO


@eqx.filter_jit
def _reset(env: AbstractEnvironment, key: PRNGKeyArray) -> tuple[Any, Array]:
    return env.reset(key)


def _agent_metadata(agent: PPO, hparams: PPOHyperparams) -> dict[str, Any]:
    return {
        "algorithm": "ppo",
        "hpo_config": hpo_config_to_dict(agent.config, hparams),
        **agent.spec.metadata(),
    }


_STRUCTURE_KEYS = ("algorithm", "nas_config", "cnn_policy", "env")
_STATIC_HPO = tuple(PPOConfig.__dataclass_fields__)


def save(path: str | os.PathLike, agent: PPO, state: PPOState) -> Path:
    """Write `state` and `agent`'s configuration to the file `path`, atomically.

    The continuous hyperparameters recorded are those `state` holds (the ones it last
    trained with, or a population member's current ones), not the agent's: `load` gives
    an agent that continues with them. A crash during the write leaves any earlier file
    at `path` intact. Returns the path.
    """
    runner_state = state.runner_state
    agent.spec.check_network(runner_state.train_state.network, "state's network")
    metadata = {
        **_agent_metadata(agent, runner_state.hparams),
        "global_step": int(state.runner_state.global_step),
        "prng_impl": str(jax.config.jax_default_prng_impl),  # pyright: ignore[reportAttributeAccessIssue]
        "versions": {p: version(p) for p in ("eqxppo", "jax", "equinox", "optax", "gymnax")},
    }
    return write_checkpoint(path, metadata, state.runner_state)


def _check_compatible(path: Path, meta: dict[str, Any], agent: PPO) -> None:
    mine = _agent_metadata(agent, agent.hparams)
    # A file written before the recurrent core existed names only ARLBench's two keys.
    nas = {**dict(get_default_nas_config()), **meta.get("nas_config", {})}
    meta = {**meta, "nas_config": nas}
    differ = [k for k in _STRUCTURE_KEYS if meta.get(k) != mine[k]]
    differ += [
        f"hpo_config.{k}" for k in _STATIC_HPO if meta["hpo_config"].get(k) != mine["hpo_config"][k]
    ]
    if differ:
        details = "; ".join(
            f"{k}: file {_lookup(meta, k)!r}, agent {_lookup(mine, k)!r}" for k in differ
        )
        raise CheckpointError(
            f"{str(path)!r} was saved with another configuration than this agent's ({details})."
        )


def _lookup(meta: dict[str, Any], dotted: str) -> Any:
    for part in dotted.split("."):
        meta = meta.get(part) if isinstance(meta, dict) else None  # type: ignore[assignment]
    return meta


def load(path: str | os.PathLike, agent: PPO | None = None) -> tuple[PPO, PPOState]:
    """Read a checkpoint written by `save`: `(agent, state)`, ready to `train` or `predict`.

    **Arguments:**

    - `path`: the checkpoint file.
    - `agent`: an agent to load into; its static configuration, architecture and
      environment must match the file's. By default the agent is rebuilt from the file,
      with the continuous hyperparameters the saved state held.

    **Raises:**

    `CheckpointError` (a `ValueError`) for a missing, truncated, corrupt or newer-format
    file, or one saved with another configuration than `agent`'s.
    """
    path = Path(path)
    checkpoint = open_checkpoint(path)  # read and checksummed once
    meta = checkpoint.metadata
    if meta.get("algorithm") != "ppo":
        raise CheckpointError(f"{str(path)!r} is not a PPO checkpoint.")
    if meta.get("prng_impl") != str(jax.config.jax_default_prng_impl):  # pyright: ignore[reportAttributeAccessIssue]
        raise CheckpointError(
            f"{str(path)!r} was saved with PRNG implementation {meta.get('prng_impl')!r}; set "
            "jax_default_prng_impl to it before loading."
        )
    if agent is None:
        try:
            agent = PPO.from_spec(AgentSpec.from_metadata(meta), meta["hpo_config"])
        except (KeyError, TypeError, ValueError) as error:  # a header eqxppo never wrote
            raise CheckpointError(
                f"{str(path)!r} records an agent this eqxppo cannot rebuild: {error!r}."
            ) from None
    else:
        _check_compatible(path, meta, agent)
    like = eqx.filter_eval_shape(agent.init, jr.key(0)).runner_state
    runner_state = read_state(checkpoint, like)
    if not agent.env.restorable:
        # The file holds everything but the environments (their state lives outside JAX):
        # fresh ones, reset with a key folded from the run's, so the run's own key and
        # everything else continue exactly.
        # New episodes: every environment's hidden state starts again from the network's
        # initial one (zeros for a recurrent core; `None`, no memory, stays `None`).
        env_state, obs = _reset(agent.env, jr.fold_in(runner_state.rng, 2))
        initial = runner_state.train_state.network.initial_hidden()
        fresh = lambda h, z: jnp.broadcast_to(z, h.shape)
        hidden = jax.tree.map(fresh, runner_state.hidden, initial)
        runner_state = runner_state._replace(env_state=env_state, obs=obs, hidden=hidden)
    return agent, PPOState(runner_state=runner_state, buffer_state=None)
