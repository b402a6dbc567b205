"""The `PPO` facade: ARLBench's class API over eqxppo's free functions."""

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import jax.tree_util as jtu
import optax
from ConfigSpace import Configuration, ConfigurationSpace
from jaxtyping import Array, PRNGKeyArray, Real

from .. import configspaces
from ..configspaces import parse_hpo_config, parse_nas_config
from ..envs import AbstractEnvironment
from ..networks import AbstractActorCritic, make_network
from ._init import init
from ._population_facade import Population
from ._predict import predict
from ._state import PPORunnerState, PPOState, PPOTrainingResult
from ._train import train


def _is_array_or_shape(x: Any) -> bool:
    return isinstance(x, jax.Array | jax.ShapeDtypeStruct)


def _shapes(tree: Any) -> tuple[Any, list[tuple[tuple[int, ...], Any]]]:
    """Tree structure and leaf shapes: what must match for a state to fit an agent."""
    arrays, static = eqx.partition(tree, _is_array_or_shape)
    leaves, treedef = jtu.tree_flatten(arrays)
    return (treedef, jtu.tree_structure(static)), [(x.shape, x.dtype) for x in leaves]


class PPO:
    """Proximal Policy Optimization with ARLBench's API, on eqxppo's compiled functions.

    The agent holds the environment and the configuration and delegates to the free
    functions `eqxppo.ppo.init`, `train` and `predict`. The continuous hyperparameters
    are traced values: `update_hpo_config` with new values takes effect at the next
    `train` and never recompiles; new static values (`n_steps`, `minibatch_size`, ...)
    compile the program they need.

    **Arguments:**

    - `hpo_config`: a `Configuration` of `PPO.get_hpo_config_space()` or a mapping of
      hyperparameters (missing ones take the defaults).
    - `env`: training environments (`make_env`).
    - `eval_env`: evaluation environments; default `env`.
    - `cnn_policy`: NatureCNN instead of the MLP (needs `make_env(..., cnn_policy=True)`).
    - `nas_config`: `activation` and `hidden_size`; default tanh, 64.
    - `deterministic_eval`: evaluate with the policy's mode.
    - `track_trajectories`, `track_metrics`: fill `PPOTrainingResult.trajectories` /
      `.metrics` (memory grows with the budget).
    """

    name: str = "ppo"

    def __init__(
        self,
        hpo_config: Configuration | Mapping[str, Any],
        env: AbstractEnvironment,
        eval_env: AbstractEnvironment | None = None,
        cnn_policy: bool = False,
        nas_config: Configuration | Mapping[str, Any] | None = None,
        deterministic_eval: bool = True,
        track_trajectories: bool = False,
        track_metrics: bool = False,
    ) -> None:
        self.env = env
        self.eval_env = env if eval_env is None else eval_env
        self.cnn_policy = cnn_policy
        self.nas_config = PPO.get_default_nas_config() if nas_config is None else nas_config
        self.network_config = parse_nas_config(self.nas_config, cnn_policy)
        self.deterministic_eval = deterministic_eval
        self.track_trajectories = track_trajectories
        self.track_metrics = track_metrics
        self.hpo_config = hpo_config
        self.config, self.hparams = parse_hpo_config(hpo_config)
        self._network_shapes = _shapes(
            eqx.filter_eval_shape(
                make_network,
                self.network_config,
                env.observation_shape,
                env.action_spec,
                key=jr.key(0),
            )
        )
        if self.eval_env.observation_shape != env.observation_shape:
            raise ValueError(
                f"eval_env observations {self.eval_env.observation_shape} differ from env "
                f"observations {env.observation_shape}."
            )

    # -- ARLBench's derived sizes ---------------------------------------------------------

    @property
    def rollout_size(self) -> int:
        """Transitions per update: `n_envs * n_steps`."""
        return self.config.batch_size(self.env.n_envs)

    @property
    def minibatch_size(self) -> int:
        """`minibatch_size` clamped to the rollout size."""
        return self.config.effective_minibatch_size(self.env.n_envs)

    @property
    def n_minibatches(self) -> int:
        """Minibatches per epoch (the remainder of each shuffle is dropped)."""
        return self.config.n_minibatches(self.env.n_envs)

    # -- configuration ------------------------------------------------------------------

    @staticmethod
    def get_hpo_config_space(seed: int | None = None) -> ConfigurationSpace:
        """ARLBench's PPO hyperparameter space (13 hyperparameters)."""
        return configspaces.get_hpo_config_space(seed)

    @staticmethod
    def get_default_hpo_config() -> Configuration:
        """ARLBench's default PPO hyperparameters."""
        return configspaces.get_default_hpo_config()

    @staticmethod
    def get_nas_config_space(seed: int | None = None) -> ConfigurationSpace:
        """ARLBench's PPO architecture space (`activation`, `hidden_size`)."""
        return configspaces.get_nas_config_space(seed)

    @staticmethod
    def get_default_nas_config() -> Configuration:
        """ARLBench's default architecture (tanh, 64 hidden units)."""
        return configspaces.get_default_nas_config()

    def update_hpo_config(self, hpo_config: Configuration | Mapping[str, Any]) -> None:
        """Replace the hyperparameters in place (ARLBench's signature; returns `None`).

        New continuous values take effect at the next `train` without recompiling.
        """
        self.config, self.hparams = parse_hpo_config(hpo_config)
        self.hpo_config = hpo_config

    # -- populations ----------------------------------------------------------------------

    @staticmethod
    def population(
        hpo_configs: Sequence[Configuration | Mapping[str, Any]],
        env: AbstractEnvironment,
        seeds: Iterable[int] = (0,),
        **kwargs: Any,
    ) -> Population:
        """Configurations x seeds trained together; see `Population` for the arguments."""
        return Population(hpo_configs, env, seeds, **kwargs)

    @classmethod
    def from_population(cls, population: Population, member: int) -> "PPO":
        """A single agent with member `member`'s configuration, for `population.member(...)`.

        The hyperparameters are those the population started with; a member's state carries
        the ones it trained with (`population.member_hpo_config(member, state)`).
        """
        return cls(
            population.member_hpo_config(member),
            population.env,
            eval_env=population.eval_env,
            cnn_policy=population.cnn_policy,
            nas_config=population.nas_config,
            deterministic_eval=population.deterministic_eval,
            track_trajectories=population.track_trajectories,
            track_metrics=population.track_metrics,
        )

    # -- the algorithm --------------------------------------------------------------------

    def _check_network(self, network: AbstractActorCritic, what: str) -> None:
        if _shapes(network) != self._network_shapes:
            raise ValueError(
                f"{what} does not match this agent's architecture "
                f"({self.network_config.activation}, hidden_size="
                f"{self.network_config.hidden_size}, cnn_policy={self.cnn_policy}) for "
                f"observations {self.env.observation_shape}; build the agent with the "
                "configuration the state was made with."
            )

    def init(
        self,
        rng: PRNGKeyArray,
        network_params: AbstractActorCritic | None = None,
        opt_state: optax.OptState | None = None,
    ) -> PPOState:
        """A fresh `PPOState`; `network_params` / `opt_state` replace the fresh ones."""
        if network_params is not None:
            self._check_network(network_params, "network_params")
        return init(rng, self.env, self.network_config, self.hparams, network_params, opt_state)

    def train(
        self,
        runner_state: PPORunnerState,
        buffer_state: None = None,
        n_total_timesteps: int = 1_000_000,
        n_eval_steps: int = 10,
        n_eval_episodes: int = 10,
    ) -> tuple[PPOState, PPOTrainingResult]:
        """Train with the agent's current hyperparameters; see `eqxppo.ppo.train`.

        The returned state records the hyperparameters it was trained with.
        """
        del buffer_state
        self._check_network(runner_state.train_state.network, "runner_state's network")
        runner_state = runner_state._replace(hparams=self.hparams)
        runner_state, result = train(
            runner_state,
            self.env,
            self.config,
            n_total_timesteps,
            n_eval_steps,
            n_eval_episodes,
            self.eval_env,
            self.deterministic_eval,
            self.track_metrics,
            self.track_trajectories,
        )
        return PPOState(runner_state=runner_state, buffer_state=None), result

    def predict(
        self,
        runner_state: PPORunnerState,
        obs: Real[Array, "..."],
        rng: PRNGKeyArray | None = None,
        deterministic: bool = True,
    ) -> Real[Array, "..."]:
        """Actions for one observation or a batch; `rng` is needed unless deterministic."""
        if rng is None:
            if not deterministic:
                raise ValueError("predict(deterministic=False) needs an `rng` key.")
            rng = jr.key(0)
        return predict(runner_state, jnp.asarray(obs), rng, self.env, self.config, deterministic)

    @staticmethod
    def get_checkpoint_factory(
        runner_state: PPORunnerState, train_result: PPOTrainingResult | None
    ) -> dict[str, Callable[[], Any]]:
        """Factories for what ARLBench checkpoints: `opt_state`, `params`, `loss`, `trajectories`.

        `trajectories` is a dict (`states`, `action`, `reward`, `dones`, `value`,
        `log_prob`) with the first two axes (chunk, update) merged, or `None` when not
        tracked; `loss` is `None` unless metrics were tracked.
        """
        train_state = runner_state.train_state

        def trajectories() -> dict[str, Array] | None:
            if train_result is None or train_result.trajectories is None:
                return None
            traj = train_result.trajectories
            merge = lambda x: x.reshape(-1, *x.shape[2:])
            return {
                "states": merge(traj.obs),
                "action": merge(traj.action),
                "reward": merge(traj.reward),
                "dones": merge(traj.done),
                "value": merge(traj.value),
                "log_prob": merge(traj.log_prob),
            }

        def loss() -> Any:
            if train_result is None or train_result.metrics is None:
                return None
            return train_result.metrics.loss

        return {
            "opt_state": lambda: train_state.opt_state,
            "params": lambda: train_state.params,
            "loss": loss,
            "trajectories": trajectories,
        }
