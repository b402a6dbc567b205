import jax.random as jr
import pytest
from conftest import count_compiles

from eqxppo import PPO, PopulationTooLarge, make_env
from eqxppo.population._memory import tree_bytes
from eqxppo.population._programs import PROGRAMS


BUDGET = dict(n_total_timesteps=1024, n_eval_steps=2, n_eval_episodes=4)


def _population(n_members: int, **options):
    env = make_env("gymnax", "CartPole-v1", n_envs=8)
    configs = [{"n_steps": 64, "minibatch_size": 64, "learning_rate": 1e-3 * (1 + i)}
               for i in range(n_members)]  # fmt: skip
    return PPO.population(configs, env, seeds=(0,), **options)


@pytest.mark.parametrize(
    "name, cnn, n_envs, nas",
    [("CartPole-v1", False, 8, None),
     ("Breakout-MinAtar", True, 16, {"activation": "relu", "hidden_size": 256}),
     ("CartPole-v1", False, 8, {"hidden_size": 256, "recurrent": "lstm"})],
)  # fmt: skip
def test_the_memory_model_bounds_xlas_accounting_of_the_compiled_program(name, cnn, n_envs, nas):
    env = make_env("gymnax", name, cnn_policy=cnn, n_envs=n_envs)
    configs = [{"n_steps": 64, "minibatch_size": 128, "learning_rate": lr} for lr in (1e-3, 3e-3)]
    pop = PPO.population(configs, env, seeds=(0,), cnn_policy=cnn, nas_config=nas)
    state = pop.init(jr.key(0))
    PROGRAMS.clear()
    pop.compile(state, **BUDGET)
    ((program, _),) = PROGRAMS._programs.values()
    analysis = program.compiled.memory_analysis()
    measured = (analysis.argument_size_in_bytes + analysis.output_size_in_bytes
                + analysis.temp_size_in_bytes - analysis.alias_size_in_bytes)  # fmt: skip
    (per_member,) = pop.memory_estimate(state)
    estimate = per_member * pop.groups[0].n_padded
    # An upper bound (a population the model admits fits), and not a wild one (a
    # population that would fit is not refused for a tenfold overestimate).
    assert measured <= estimate <= 4 * measured, (measured, estimate)
    assert per_member > tree_bytes(state.groups[0]) // pop.groups[0].n_padded


def test_a_population_too_large_for_its_device_is_refused_before_it_compiles():
    pop = _population(64, device_memory=8 * 2**20)
    state = pop.init(jr.key(0))
    (per_member,) = pop.memory_estimate(state)
    fits = 8 * 2**20 // per_member
    n_programs = len(PROGRAMS)
    with count_compiles() as compiles, pytest.raises(PopulationTooLarge) as error:
        pop.train(state, **BUDGET)
    assert not any("train_population" in name for name in compiles.names), compiles.names
    assert len(PROGRAMS) == n_programs
    message = str(error.value)
    assert "64 members in the host's memory" in message and f"at most {fits} members" in message
    assert 0 < fits < 64

    # The same population with the memory it needs trains.
    enough = _population(64, device_memory=per_member * 64)
    trained, _ = enough.train(enough.init(jr.key(0)), **BUDGET)
    assert not enough.diverged(trained).any()
