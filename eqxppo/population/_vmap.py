"""Many PPO runs of one static structure as one program: `init` and `train` under `vmap`.

Members share the `PPOConfig`, the architecture and the environment; they differ in
their keys and their continuous hyperparameters. Every leaf
of the returned states carries a leading member axis.
"""

from typing import Any

import equinox as eqx
from beartype import beartype
from jaxtyping import Array, Key, jaxtyped

from ..configspaces import NetworkConfig, PPOConfig, PPOHyperparams
from ..envs import AbstractEnvironment
from ..ppo import (
    OptimizerFactory,
    PPORunnerState,
    PPOState,
    PPOTrainingResult,
    init,
    make_optimizer,
    train,
)


def init_population(
    keys: Key[Array, " n_members"],
    env: AbstractEnvironment,
    network_config: NetworkConfig,
    hparams: PPOHyperparams,
    *,
    optimizer: OptimizerFactory = make_optimizer,
) -> PPOState:
    """Initialise one member per key, each with its own row of `hparams`.

    **Arguments:**

    - `keys`: one root key per member (typed keys, `jax.random.key`).
    - `env`, `network_config`: shared by every member.
    - `hparams`: continuous hyperparameters with a leading member axis.

    **Returns:**

    A `PPOState` whose runner state has a leading member axis on every leaf; member `i`
    equals `init(keys[i], env, network_config, hparams[i], optimizer=optimizer)`.
    """
    # The kernels are chosen here, outside the trace (`init` would choose them inside).
    return _init_population(keys, env, network_config.resolved(), hparams, optimizer)


@eqx.filter_jit
@jaxtyped(typechecker=beartype)
def _init_population(
    keys: Key[Array, " n_members"],
    env: AbstractEnvironment,
    network_config: NetworkConfig,
    hparams: PPOHyperparams,
    optimizer: OptimizerFactory,
) -> PPOState:
    one = lambda key, h: init(key, env, network_config, h, optimizer=optimizer)
    return eqx.filter_vmap(one)(keys, hparams)


@eqx.filter_jit
def train_population(
    runner_states: PPORunnerState,
    env: AbstractEnvironment,
    config: PPOConfig,
    **options: Any,
) -> tuple[PPORunnerState, PPOTrainingResult]:
    """`train` for every member of a stacked runner state, in one compiled program.

    `options` are `train`'s keyword-only options (`n_total_timesteps`, `n_eval_steps`,
    ...). Each member trains for `n_total_timesteps` of its own steps with its own
    `runner_state.hparams`, so new hyperparameter values never recompile. The shapes are
    checked per member by `train`'s annotations.

    **Returns:**

    `(runner_states, PPOTrainingResult)` with a leading member axis on every array,
    e.g. `eval_rewards` of shape `(n_members, n_eval_steps, n_eval_episodes)`.
    """
    # Only the runner state has a member axis; `train` checks the budget and the shapes.
    train_member = lambda runner_state: train(runner_state, env, config, **options)
    return eqx.filter_vmap(train_member)(runner_states)
