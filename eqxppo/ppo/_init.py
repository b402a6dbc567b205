"""Create a fresh PPO state: environments reset, network and optimizer initialised."""

import dataclasses

import equinox as eqx
import jax.numpy as jnp
import jax.random as jr
import optax
from beartype import beartype
from jaxtyping import PRNGKeyArray, jaxtyped

from ..configspaces import NetworkConfig, PPOHyperparams
from ..envs import AbstractEnvironment, init_normalizer
from ..networks import AbstractActorCritic, kernels_of, make_network
from ._optimizer import OptimizerFactory, make_optimizer
from ._rollout import per_env
from ._state import PPORunnerState, PPOState, PPOTrainState


def init(
    key: PRNGKeyArray,
    env: AbstractEnvironment,
    network_config: NetworkConfig,
    hparams: PPOHyperparams,
    *,
    network: AbstractActorCritic | None = None,
    opt_state: optax.OptState | None = None,
    optimizer: OptimizerFactory = make_optimizer,
) -> PPOState:
    """Initialise a PPO state, as ARLBench's `PPO.init` does.

    **Arguments:**

    - `key`: the run's root key; it is split for the environment reset, the network
      initialisation and the run's own key.
    - `env`: the training environments.
    - `network_config`: the architecture; unresolved kernels (`kernels=None`) are
      resolved here, before anything is traced (`NetworkConfig.resolved`).
    - `hparams`: continuous hyperparameters the state will train with.
    - `network`: a network to start from instead of a fresh one (same architecture), or
      only its parameters (`PPOTrainState.params`: the network with `None` in place of
      everything but its trainable arrays). Its kernels are kept.
    - `opt_state`: an optimizer state of those parameters to start from instead of a
      fresh one (`PPOTrainState.opt_state`).
    - `optimizer`: the optimizer factory `train` will use (`make_optimizer`, PPO's
      clipped Adam, by default); its state is initialised here.

    **Returns:**

    `PPOState(runner_state, None)` with `global_step = 0` and each environment's
    hidden state at its start (`network.initial_hidden()`; `None` for a network without
    memory).
    """
    network_config = resolve_kernels(network_config, network)
    return _init(key, env, network_config, hparams, network=network, opt_state=opt_state,
                 optimizer=optimizer)  # fmt: skip


def resolve_kernels(
    network_config: NetworkConfig, network: AbstractActorCritic | None = None
) -> NetworkConfig:
    """`network_config` with its kernels chosen: a given network's (a network, or its
    parameters, built with either kernels keeps them), else the configuration's, else
    `default_kernels()`. Called outside traced code, so the choice is a static input of
    every program and cache key."""
    if network is not None:
        return dataclasses.replace(network_config, kernels=kernels_of(network))
    return network_config.resolved()


@eqx.filter_jit
@jaxtyped(typechecker=beartype)
def _init(
    key: PRNGKeyArray,
    env: AbstractEnvironment,
    network_config: NetworkConfig,
    hparams: PPOHyperparams,
    *,
    network: AbstractActorCritic | None,
    opt_state: optax.OptState | None,
    optimizer: OptimizerFactory,
) -> PPOState:
    run_key, reset_key, network_key = jr.split(key, 3)
    env_state, obs = env.reset(reset_key)
    fresh = make_network(network_config, env.observation_shape, env.action_spec, key=network_key)
    if network is not None:  # the given trainable arrays, the fresh network's functions
        params = eqx.filter(network, eqx.is_inexact_array)
        fresh = eqx.combine(params, eqx.filter(fresh, eqx.is_inexact_array, inverse=True))
    train_state = PPOTrainState.create_with_opt_state(
        network=fresh, tx=optimizer(hparams), opt_state=opt_state
    )
    hidden = per_env(fresh.initial_hidden(), env.n_envs)
    runner_state = PPORunnerState(
        rng=run_key,
        train_state=train_state,
        normalizer_state=init_normalizer(env.observation_shape),
        env_state=env_state,
        obs=obs,
        global_step=jnp.zeros((), jnp.int32),
        hparams=hparams,
        diverged=jnp.zeros((), bool),
        hidden=hidden,
    )
    return PPOState(runner_state=runner_state, buffer_state=None)
