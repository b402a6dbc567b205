"""The public API as a user's IDE sees it; `nox -s typecheck` runs pyright on this file."""

from collections.abc import Hashable

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array, Float

import eqxppo
from eqxppo import (
    PPO,
    Population,
    PopulationState,
    PPORunnerState,
    PPOState,
    PPOTrainingResult,
    make_env,
)
from eqxppo.autorl import Trial
from eqxppo.configspaces import PPOHyperparams, parse_hpo_config, parse_nas_config
from eqxppo.experiments import Job, Study, plan, run_jobs, run_study
from eqxppo.networks import AbstractActorCritic
from eqxppo.ppo import (
    Batch,
    LossFn,
    OptimizerFactory,
    compute_gae,
    init,
    make_optimizer,
    policy_and_value,
    ppo_loss,
    predict,
    predict_recurrent,
    train,
)
from eqxppo.tracking import (
    AbstractLogger,
    CSVLogger,
    Row,
    TensorBoardLogger,
    evaluation_rows,
    evaluation_steps,
    log_population,
    member_result,
)


def quick_start() -> Float[Array, "n_eval_steps n_eval_episodes"]:
    env = make_env("gymnax", "CartPole-v1", n_envs=8, seed=0)
    agent = PPO(PPO.get_default_hpo_config(), env)
    state: PPOState = agent.init(jax.random.key(0))
    state, result = agent.train(*state, n_total_timesteps=10_000, n_eval_steps=2)
    runner_state: PPORunnerState = state.runner_state
    agent.update_hpo_config({**PPO.get_default_hpo_config(), "learning_rate": 1e-4})
    action = agent.predict(runner_state, runner_state.obs[0], jax.random.key(1))
    del action
    return result.eval_rewards


def free_functions() -> PPOTrainingResult:
    env = make_env("gymnax", "Pendulum-v1", n_envs=4)
    config, hparams = parse_hpo_config({"n_steps": 64})
    network_config = parse_nas_config({"hidden_size": 32})
    runner_state, _ = init(jax.random.key(0), env, network_config, hparams)
    runner_state, result = train(
        runner_state, env, config, n_total_timesteps=5_000, n_eval_steps=1, n_eval_episodes=2
    )
    actions = predict(runner_state, runner_state.obs, jax.random.key(1), env)
    del actions
    return result


def a_custom_loss() -> PPORunnerState:
    """`train(loss=...)`: PPO's objective with an extra penalty on the value scale."""

    def loss(network: AbstractActorCritic, batch: Batch, hparams: PPOHyperparams):
        total, terms = ppo_loss(network, batch, hparams)
        _, values = policy_and_value(network, batch)  # any network, recurrent too
        return total + 1e-3 * jnp.mean(values**2), terms

    custom: LossFn = loss
    env = make_env("gymnax", "CartPole-v1", n_envs=4)
    config, hparams = parse_hpo_config({"n_steps": 16})
    runner_state, _ = init(jax.random.key(0), env, parse_nas_config(None), hparams)
    runner_state, _ = train(runner_state, env, config, n_total_timesteps=1_000, loss=custom)
    return runner_state


def an_optimizer_on_the_parameter_tree() -> PPOState:
    """`PPO(optimizer=...)`: optax sees the network's parameter tree, so a
    `multi_transform` can freeze the critic while PPO's optimizer trains the actor."""

    def labels(params: AbstractActorCritic) -> AbstractActorCritic:
        train_all = jax.tree.map(lambda _: "train", params)
        return eqx.tree_at(
            lambda p: p.critic,  # pyright: ignore[reportAttributeAccessIssue]
            train_all,
            replace_fn=lambda critic: jax.tree.map(lambda _: "freeze", critic),
        )

    def actor_only(hparams: PPOHyperparams) -> optax.GradientTransformation:
        transforms: dict[Hashable, optax.GradientTransformation] = {
            "train": make_optimizer(hparams),
            "freeze": optax.set_to_zero(),
        }
        return optax.multi_transform(transforms, labels)

    factory: OptimizerFactory = actor_only
    env = make_env("gymnax", "CartPole-v1", n_envs=4)
    agent = PPO({"n_steps": 16}, env, optimizer=factory)
    state, _ = agent.train(*agent.init(jax.random.key(0)), n_total_timesteps=1_000)
    return state


def recurrent_agent() -> tuple[Array, Float[Array, "n_envs hidden"]]:
    env = make_env("gymnax", "MemoryChain-bsuite", n_envs=4)
    agent = PPO({"n_steps": 32}, env, nas_config={"recurrent": "gru", "hidden_size": 16})
    state, _ = agent.train(*agent.init(jax.random.key(0)), n_total_timesteps=2_000)
    hidden = agent.initial_hidden((4,))
    actions, hidden = agent.predict(state.runner_state, state.runner_state.obs, hidden=hidden)
    more, hidden = predict_recurrent(
        state.runner_state, state.runner_state.obs, hidden, jax.random.key(1), env
    )
    del more
    return actions, hidden


def gae_by_hand() -> Float[Array, "n_steps n_envs"]:
    zeros = jnp.zeros((3, 2))
    no = jnp.zeros((3, 2), bool)
    advantages, _ = compute_gae(zeros, zeros, zeros, no, no, jnp.float32(0.99), jnp.float32(0.95))
    return advantages


def populations_on_every_core() -> int:
    """First thing in a script, before any JAX computation."""
    n_devices: int = eqxppo.use_cpu_cores()
    assert n_devices <= eqxppo.cpu_cores()
    return n_devices


def population_and_checkpoint(path: str) -> Float[Array, "n_members n_eval_steps n_eval_episodes"]:
    env = make_env("gymnax", "CartPole-v1", n_envs=4)
    configs = PPO.get_hpo_config_space(seed=0).sample_configuration(2)
    pop: Population = PPO.population(configs, env, seeds=range(2), device_memory=2**30)
    state: PopulationState = pop.init(jax.random.key(0))
    per_member: list[int] = pop.memory_estimate(state)
    del per_member
    state, result = pop.train(state, n_total_timesteps=2_000, n_eval_steps=1)
    state = pop.update_hparams(state, learning_rate=pop.get_hparams(state)["learning_rate"] / 2)
    member: PPOState = pop.member(state, 3)
    eqxppo.save(path, PPO.from_population(pop, 3, state), member)
    agent, restored = eqxppo.load(path)
    agent.train(*restored, n_total_timesteps=1_000, n_eval_steps=1)
    return result.eval_rewards


def logged_population(folder: str) -> list[Row]:
    """A population's members as runs in CSV and TensorBoard; the rows themselves."""
    env = make_env("gymnax", "CartPole-v1", n_envs=4)
    pop = PPO.population([{"learning_rate": 1e-3}], env, seeds=(0, 1), track_metrics=True)
    state, result = pop.train(pop.init(jax.random.key(0)), n_total_timesteps=2_048)
    loggers: list[AbstractLogger] = [CSVLogger(folder), TensorBoardLogger(folder)]
    end = int(pop.member(state, 0).runner_state.global_step)
    log_population(loggers, pop, state, result, start_step=0, end_step=end, group="typed")
    steps = evaluation_steps(start_step=0, end_step=end, n_evaluations=10)
    return evaluation_rows(member_result(result, 0), steps=steps)


def experiment_tree(folder: str) -> list[float] | list[Trial]:
    """ARLBench's tree: jobs, a study when the tree's sweeper is Hypersweeper's, or one
    study per value of an override swept beside it (the landscape's seeds)."""
    planned: list[Job] | Study | list[Study] = plan(
        folder, config_name="random_search", multirun=True, overrides=["autorl.seed=0,1"]
    )
    if isinstance(planned, Study):
        return run_study(planned, batch=4)
    studies = [p for p in planned if isinstance(p, Study)]
    if studies:
        return [trial for study in studies for trial in run_study(study, batch=4)]
    return run_jobs([p for p in planned if isinstance(p, Job)])


print(eqxppo.__version__)
