"""Create a fresh PPO state: environments reset, network and optimizer initialised."""

import equinox as eqx
import jax.numpy as jnp
import jax.random as jr
import optax
from beartype import beartype
from jaxtyping import PRNGKeyArray, jaxtyped

from ..configspaces import NetworkConfig, PPOHyperparams
from ..envs import AbstractEnvironment, init_normalizer
from ..networks import AbstractActorCritic, AbstractRecurrentActorCritic, make_network
from ._optimizer import OptimizerFactory, make_optimizer
from ._state import PPORunnerState, PPOState, PPOTrainState


@eqx.filter_jit
@jaxtyped(typechecker=beartype)
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
    - `network_config`: the architecture.
    - `hparams`: continuous hyperparameters the state will train with.
    - `network`: a network to start from instead of a fresh one (same architecture), or
      only its parameters (`PPOTrainState.params`: the network with `None` in place of
      everything but its trainable arrays).
    - `opt_state`: an optimizer state of those parameters to start from instead of a
      fresh one (`PPOTrainState.opt_state`).
    - `optimizer`: the optimizer factory `train` will use (`make_optimizer`, PPO's
      clipped Adam, by default); its state is initialised here.

    **Returns:**

    `PPOState(runner_state, None)` with `global_step = 0` (and zero hidden states for a
    recurrent network).
    """
    run_key, reset_key, network_key = jr.split(key, 3)
    env_state, obs = env.reset(reset_key)
    fresh = make_network(network_config, env.observation_shape, env.action_spec, key=network_key)
    if network is not None:  # the given trainable arrays, the fresh network's functions
        params = eqx.filter(network, eqx.is_inexact_array)
        fresh = eqx.combine(params, eqx.filter(fresh, eqx.is_inexact_array, inverse=True))
    train_state = PPOTrainState.create_with_opt_state(
        network=fresh, tx=optimizer(hparams), opt_state=opt_state
    )
    hidden = None
    if isinstance(fresh, AbstractRecurrentActorCritic):
        hidden = jnp.zeros((env.n_envs, *fresh.hidden_shape), jnp.float32)
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
