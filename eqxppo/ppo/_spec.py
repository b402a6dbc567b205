"""What an agent is besides its hyperparameters: environments, architecture, options.

`PPO`, `Population` and checkpoints all hold one `AgentSpec`, validated once, so the
single agent, the population and a loaded checkpoint cannot disagree about it.
"""

import dataclasses
import functools
from collections.abc import Mapping
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
from ConfigSpace import Configuration

from .._counts import check_budget
from ..configspaces import NetworkConfig, parse_nas_config
from ..envs import AbstractEnvironment, make_env
from ..networks import AbstractActorCritic, make_network
from ._loss import LossFn, ppo_loss
from ._optimizer import OptimizerFactory, make_optimizer
from ._state import tree_layout


def _is_param(x: Any) -> bool:
    return isinstance(x, jax.Array | np.ndarray | jax.ShapeDtypeStruct) and jnp.issubdtype(
        x.dtype, jnp.inexact
    )


def _param_layout(network: Any) -> tuple[Any, list[tuple[tuple[int, ...], Any]]]:
    """The layout of the trainable arrays: what must match for a network (or its
    `params`) to fit an agent; `network` may hold `jax.ShapeDtypeStruct`s."""
    return tree_layout(eqx.filter(network, _is_param))


@dataclasses.dataclass(frozen=True)
class AgentSpec:
    """The environments, the architecture and the options of a PPO agent or population.

    Build it with `AgentSpec.create`, which checks that the pieces fit together.
    """

    env: AbstractEnvironment
    eval_env: AbstractEnvironment
    network_config: NetworkConfig
    deterministic_eval: bool
    track_metrics: bool
    track_trajectories: bool
    loss: LossFn = ppo_loss
    optimizer: OptimizerFactory = make_optimizer

    @classmethod
    def create(
        cls,
        env: AbstractEnvironment,
        *,
        eval_env: AbstractEnvironment | None = None,
        cnn_policy: bool = False,
        nas_config: Configuration | Mapping[str, Any] | None = None,
        deterministic_eval: bool = True,
        track_metrics: bool = False,
        track_trajectories: bool = False,
        loss: LossFn = ppo_loss,
        optimizer: OptimizerFactory = make_optimizer,
    ) -> "AgentSpec":
        """Validate and combine the agent's settings (the arguments of `PPO`).

        The network's kernels are chosen here (`NetworkConfig.resolved`), once, so
        every program the agent compiles is keyed by them.

        **Raises:**

        `ValueError` when `eval_env` has other observations or actions than `env`, when
        the architecture does not fit the observations (`cnn_policy` without images),
        or for an invalid `nas_config`.
        """
        eval_env = env if eval_env is None else eval_env
        if eval_env.observation_shape != env.observation_shape:
            raise ValueError(
                f"eval_env observations {eval_env.observation_shape} differ from env "
                f"observations {env.observation_shape}."
            )
        if eval_env.action_spec != env.action_spec:
            raise ValueError(
                f"eval_env actions {eval_env.action_spec} differ from env actions "
                f"{env.action_spec}."
            )
        spec = cls(
            env=env,
            eval_env=eval_env,
            network_config=parse_nas_config(nas_config, cnn_policy).resolved(),
            deterministic_eval=bool(deterministic_eval),
            track_metrics=bool(track_metrics),
            track_trajectories=bool(track_trajectories),
            loss=loss,
            optimizer=optimizer,
        )
        spec.network_layout  # builds the network's shapes: raises if it does not fit
        return spec

    @property
    def cnn_policy(self) -> bool:
        return self.network_config.cnn_policy

    @property
    def nas_config(self) -> dict[str, Any]:
        """The architecture as a NAS mapping: ARLBench's `activation` and `hidden_size`,
        and the `recurrent` core."""
        return {
            "activation": self.network_config.activation,
            "hidden_size": self.network_config.hidden_size,
            "recurrent": self.network_config.recurrent,
        }

    @functools.cached_property
    def abstract_network(self) -> AbstractActorCritic:
        """This agent's network built abstractly (shapes only, nothing run): its
        structure, parameter layout and, for a recurrent one, `hidden_shape`."""
        return eqx.filter_eval_shape(
            make_network,
            self.network_config,
            self.env.observation_shape,
            self.env.action_spec,
            key=jr.key(0),
        )

    @functools.cached_property
    def network_layout(self) -> tuple[Any, list[tuple[tuple[int, ...], Any]]]:
        """The parameter layout of this agent's network (built abstractly, not run)."""
        return _param_layout(self.abstract_network)

    def check_network(self, network: AbstractActorCritic, what: str) -> None:
        """Raise `ValueError` unless `network` (or its `params`) fits this architecture."""
        if _param_layout(network) != self.network_layout:
            config = self.network_config
            raise ValueError(
                f"{what} does not match this agent's architecture ({config.activation}, "
                f"hidden_size={config.hidden_size}, cnn_policy={config.cnn_policy}, "
                f"recurrent={config.recurrent}) for "
                f"observations {self.env.observation_shape}; build the agent with the "
                "configuration the state was made with."
            )

    def train_options(
        self, n_total_timesteps: Any, n_eval_steps: Any, n_eval_episodes: Any
    ) -> dict[str, Any]:
        """`train`'s keyword-only options for this spec and a budget (counts made ints)."""
        n_total_timesteps, n_eval_steps, n_eval_episodes = check_budget(
            n_total_timesteps, n_eval_steps, n_eval_episodes
        )
        return {
            "n_total_timesteps": n_total_timesteps,
            "n_eval_steps": n_eval_steps,
            "n_eval_episodes": n_eval_episodes,
            "eval_env": self.eval_env,
            "deterministic_eval": self.deterministic_eval,
            "track_metrics": self.track_metrics,
            "track_trajectories": self.track_trajectories,
            "loss": self.loss,
            "optimizer": self.optimizer,
        }

    def metadata(self) -> dict[str, Any]:
        """JSON-able settings from which `from_metadata` rebuilds this spec (all but
        the loss and the optimizer, which are code: a loaded agent takes them again)."""
        return {
            "nas_config": self.nas_config,
            "cnn_policy": self.cnn_policy,
            "env": self.env.make_env_args(),
            "eval_env": self.eval_env.make_env_args(),
            "deterministic_eval": self.deterministic_eval,
            "track_metrics": self.track_metrics,
            "track_trajectories": self.track_trajectories,
        }

    @classmethod
    def from_metadata(cls, meta: Mapping[str, Any]) -> "AgentSpec":
        """The spec `metadata()` describes, with its environments made anew."""
        env_args, eval_args = meta["env"], meta["eval_env"]
        env = make_env(**env_args)
        eval_env = env if eval_args == env_args else make_env(**eval_args)
        return cls.create(
            env,
            eval_env=eval_env,
            cnn_policy=meta["cnn_policy"],
            nas_config=meta["nas_config"],
            deterministic_eval=meta["deterministic_eval"],
            track_metrics=meta["track_metrics"],
            track_trajectories=meta["track_trajectories"],
        )
