"""The `PPO` facade: ARLBench's class API over eqxppo's free functions."""

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Literal, overload

import equinox as eqx
import jax.numpy as jnp
import jax.random as jr
import optax
from ConfigSpace import Configuration, ConfigurationSpace
from jaxtyping import Array, Float, PRNGKeyArray, Real

from .. import configspaces
from .._counts import Count, as_count
from ..configspaces import NetworkConfig, parse_hpo_config
from ..envs import AbstractEnvironment
from ..networks import AbstractActorCritic, make_network
from ..population import Population, PopulationState
from ..ppo import (
    AgentSpec,
    LossFn,
    OptimizerFactory,
    PPORunnerState,
    PPOState,
    PPOTrainingResult,
    evaluate,
    init,
    make_optimizer,
    ppo_loss,
    predict,
    predict_recurrent,
    train,
)


_evaluate = eqx.filter_jit(evaluate)


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
    - `nas_config`: `activation` and `hidden_size`; default tanh, 64; and `recurrent`
      (`"gru"` or `"lstm"`: a recurrent core after the encoder; default `"none"`).
    - `deterministic_eval`: evaluate with the policy's mode.
    - `track_trajectories`, `track_metrics`: fill `PPOTrainingResult.trajectories` /
      `.metrics` (memory grows with the budget).
    - `loss`: the minibatch objective (`ppo_loss` by default; any `LossFn`: the loss and
      a pytree of extras, reported as `metrics.loss`).
    - `optimizer`: the optimizer factory (`make_optimizer`, PPO's clipped Adam, by
      default; any `OptimizerFactory`, which sees the parameter tree as optax does:
      `optax.multi_transform` / `optax.masked` work per leaf).
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
        *,
        loss: LossFn = ppo_loss,
        optimizer: OptimizerFactory = make_optimizer,
    ) -> None:
        spec = AgentSpec.create(
            env,
            eval_env=eval_env,
            cnn_policy=cnn_policy,
            nas_config=nas_config,
            deterministic_eval=deterministic_eval,
            track_metrics=track_metrics,
            track_trajectories=track_trajectories,
            loss=loss,
            optimizer=optimizer,
        )
        self._set(spec, hpo_config)

    def _set(self, spec: AgentSpec, hpo_config: Configuration | Mapping[str, Any]) -> None:
        self.spec = spec
        self.update_hpo_config(hpo_config)

    @classmethod
    def from_spec(cls, spec: AgentSpec, hpo_config: Configuration | Mapping[str, Any]) -> "PPO":
        """An agent of `spec` (environments, architecture, options) with `hpo_config`."""
        agent = cls.__new__(cls)
        agent._set(spec, hpo_config)
        return agent

    # -- the settings, as ARLBench names them ---------------------------------------------

    @property
    def env(self) -> AbstractEnvironment:
        return self.spec.env

    @property
    def eval_env(self) -> AbstractEnvironment:
        return self.spec.eval_env

    @property
    def cnn_policy(self) -> bool:
        return self.spec.cnn_policy

    @property
    def nas_config(self) -> dict[str, Any]:
        return self.spec.nas_config

    @property
    def network_config(self) -> NetworkConfig:
        return self.spec.network_config

    @property
    def deterministic_eval(self) -> bool:
        return self.spec.deterministic_eval

    @property
    def track_metrics(self) -> bool:
        return self.spec.track_metrics

    @property
    def track_trajectories(self) -> bool:
        return self.spec.track_trajectories

    @property
    def action_type(self) -> Literal["discrete", "continuous"]:
        """`"discrete"` or `"continuous"`, the environment's action space."""
        return "discrete" if self.env.action_spec.discrete else "continuous"

    @property
    def network(self) -> AbstractActorCritic:
        """A freshly initialised network of this agent's architecture (key 0); the
        trained one is `runner_state.train_state.network`."""
        return make_network(
            self.network_config, self.env.observation_shape, self.env.action_spec, key=jr.key(0)
        )

    # -- ARLBench's derived sizes ---------------------------------------------------------

    @property
    def rollout_size(self) -> int:
        """Transitions per update: `n_envs * n_steps`."""
        return self.config.batch_size(self.env.n_envs)

    @property
    def minibatch_size(self) -> int:
        """Transitions per minibatch: `minibatch_size` clamped to the rollout size, or for
        a recurrent agent whole sequences of `n_steps` (`PPOConfig.minibatches`)."""
        sequences = self.hidden_shape is not None
        per_minibatch = self.config.minibatches(self.env.n_envs, sequences=sequences)[1]
        return per_minibatch * (self.config.n_steps if sequences else 1)

    @property
    def n_minibatches(self) -> int:
        """Minibatches per epoch (the remainder of each shuffle is dropped)."""
        sequences = self.hidden_shape is not None
        return self.config.minibatches(self.env.n_envs, sequences=sequences)[2]

    @property
    def hidden_shape(self) -> tuple[int, ...] | None:
        """One environment's hidden state shape for a recurrent agent, else `None`."""
        hidden = self.spec.abstract_network.initial_hidden()
        return None if hidden is None else tuple(hidden.shape)

    def initial_hidden(self, batch_shape: tuple[int, ...] = ()) -> Float[Array, "..."]:
        """Zero hidden states `(*batch_shape, *hidden_shape)`: what a recurrent agent
        starts an episode from (`predict(..., hidden=...)`)."""
        shape = self.hidden_shape
        if shape is None:
            raise ValueError("This agent is feed-forward; it has no hidden state.")
        return jnp.zeros((*batch_shape, *shape), jnp.float32)

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
    def from_population(cls, population: Population, member: int, state: PopulationState) -> "PPO":
        """A single agent for member `member` of `population`, with the continuous
        hyperparameters that member's state holds now (`pop.member(state, member)`)."""
        return cls.from_spec(population.spec, population.member_hpo_config(member, state))

    # -- the algorithm --------------------------------------------------------------------

    def init(
        self,
        rng: PRNGKeyArray,
        network_params: AbstractActorCritic | None = None,
        opt_state: optax.OptState | None = None,
    ) -> PPOState:
        """A fresh `PPOState`; `network_params` / `opt_state` replace the fresh ones.

        `network_params` is a network of this agent's architecture or its trainable
        arrays (`PPOTrainState.params`); `opt_state` an optimizer state of those
        (`PPOTrainState.opt_state`), as `get_checkpoint_factory` returns them.
        """
        if network_params is not None:
            self.spec.check_network(network_params, "network_params")
        return init(
            rng,
            self.env,
            self.network_config,
            self.hparams,
            network=network_params,
            opt_state=opt_state,
            optimizer=self.spec.optimizer,
        )

    def train(
        self,
        runner_state: PPORunnerState,
        buffer_state: None = None,
        n_total_timesteps: Count = 1_000_000,
        n_eval_steps: Count = 10,
        n_eval_episodes: Count = 10,
    ) -> tuple[PPOState, PPOTrainingResult]:
        """Train with the agent's current hyperparameters; see `eqxppo.ppo.train`.

        The returned state records the hyperparameters it was trained with.
        """
        del buffer_state
        self.spec.check_network(runner_state.train_state.network, "runner_state's network")
        runner_state = runner_state._replace(hparams=self.hparams)
        runner_state, result = train(
            runner_state,
            self.env,
            self.config,
            **self.spec.train_options(n_total_timesteps, n_eval_steps, n_eval_episodes),
        )
        return PPOState(runner_state=runner_state, buffer_state=None), result

    def eval(
        self,
        runner_state: PPORunnerState,
        num_eval_episodes: Count,
        rng: PRNGKeyArray | None = None,
    ) -> Float[Array, " num_eval_episodes"]:
        """Returns of `num_eval_episodes` episodes on `eval_env` (ARLBench's `eval`).

        The episodes use `rng`, by default a key derived from `runner_state.rng`
        without consuming it (training continues exactly as without this call).
        """
        n_episodes = as_count("num_eval_episodes", num_eval_episodes, 1)
        key = jr.fold_in(runner_state.rng, 1) if rng is None else rng
        return _evaluate(
            runner_state.train_state.network,
            runner_state.normalizer_state,
            self.eval_env,
            key,
            n_episodes,
            deterministic=self.deterministic_eval,
            normalize_observations=runner_state.hparams.normalize_observations,
        )

    @overload
    def predict(
        self,
        runner_state: PPORunnerState,
        obs: Real[Array, "..."],
        rng: PRNGKeyArray | None = None,
        deterministic: bool = True,
        *,
        hidden: None = None,
    ) -> Real[Array, "..."]: ...

    @overload
    def predict(
        self,
        runner_state: PPORunnerState,
        obs: Real[Array, "..."],
        rng: PRNGKeyArray | None = None,
        deterministic: bool = True,
        *,
        hidden: Float[Array, "..."],
    ) -> tuple[Real[Array, "..."], Float[Array, "..."]]: ...

    def predict(
        self,
        runner_state: PPORunnerState,
        obs: Real[Array, "..."],
        rng: PRNGKeyArray | None = None,
        deterministic: bool = True,
        *,
        hidden: Float[Array, "..."] | None = None,
    ) -> Real[Array, "..."] | tuple[Real[Array, "..."], Float[Array, "..."]]:
        """Actions for one observation or a batch; `rng` is needed unless deterministic.

        A recurrent agent takes the hidden state before `obs` (`(*batch, *hidden_shape)`;
        `initial_hidden` at an episode's start) and returns `(actions, hidden)`, the
        hidden state to pass with the next observations.
        """
        if rng is None:
            if not deterministic:
                raise ValueError("predict(deterministic=False) needs an `rng` key.")
            rng = jr.key(0)
        obs = jnp.asarray(obs)
        if hidden is None:
            return predict(runner_state, obs, rng, self.env, deterministic=deterministic)
        return predict_recurrent(
            runner_state, obs, jnp.asarray(hidden), rng, self.env, deterministic=deterministic
        )

    @staticmethod
    def get_checkpoint_factory(
        runner_state: PPORunnerState, train_result: PPOTrainingResult | None
    ) -> dict[str, Callable[[], Any]]:
        """Factories for what ARLBench checkpoints: `opt_state`, `params`, `loss`, `trajectories`.

        `params` and `opt_state` go back into `init(rng, network_params=...,
        opt_state=...)` to continue training.

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
