"""Hypersweeper's PBT as one population (`eqxppo/autorl/_pbt.py`): who loads from whom,
how a configuration is perturbed, what a loaded member carries, and a study end to end."""

import json

import jax.random as jr
import numpy as np
import pytest
from ConfigSpace import (
    CategoricalHyperparameter,
    ConfigurationSpace,
    UniformFloatHyperparameter,
    UniformIntegerHyperparameter,
)
from conftest import assert_bitwise_equal

from eqxppo import Population, make_env
from eqxppo.autorl import StudyMismatch, pbt
from eqxppo.autorl._pbt import loaded, perturb, sources


def _space():
    space = ConfigurationSpace(seed=0)
    space.add([
        UniformFloatHyperparameter("learning_rate", 1e-4, 1e-2, log=True),
        UniformIntegerHyperparameter("update_epochs", 1, 10),
        CategoricalHyperparameter("minibatch_size", [64, 128]),
    ])  # fmt: skip
    return space


def test_the_worst_fifth_loads_from_the_best_fifth_and_the_rest_from_themselves():
    rng = np.random.RandomState(0)
    assert sources([1.0, 2.0, 3.0, 4.0, 5.0], rng, (0.2, 0.8)) == [4, 1, 2, 3, 4]
    # A diverged member (None) is the worst; two best ones are drawn from.
    draws = {tuple(sources([None, 9.0, 1.0, 2.0, 3.0, 8.0, 5.0, 4.0, 6.0, 7.0], rng, (0.2, 0.8)))
             for _ in range(50)}  # fmt: skip
    assert {d[0] for d in draws} == {1, 5} and {d[2] for d in draws} == {1, 5}
    assert all(d[1:2] + d[3:] == (1, 3, 4, 5, 6, 7, 8, 9) for d in draws)
    # Ties leave nobody below the lower quantile: the best member is the source.
    assert sources([1.0, 1.0, 2.0], rng, (0.0, 0.0)) == [2, 2, 2]


def test_a_configuration_is_perturbed_within_its_bounds_as_hypersweeper_does():
    space, rng = _space(), np.random.RandomState(0)
    config = {"learning_rate": 6e-3, "update_epochs": 7, "minibatch_size": 64}
    up = perturb(config, space, rng, resample_probability=0.0, perturbation_factors=(2.0,),
                 categorical_fixed=True)  # fmt: skip
    assert up == {"learning_rate": 1e-2, "update_epochs": 10, "minibatch_size": 64}  # clipped
    down = perturb(config, space, rng, resample_probability=0.0, perturbation_factors=(0.3,),
                   categorical_prob=0.0)  # fmt: skip
    assert down["update_epochs"] == 2 and isinstance(down["update_epochs"], int)  # 2.1 -> 2
    assert down["learning_rate"] == pytest.approx(1.8e-3)
    seen = {perturb(config, space, rng, resample_probability=1.0, categorical_prob=1.0)[
        "minibatch_size"] for _ in range(30)}  # fmt: skip
    assert seen == {64, 128}
    resampled = [perturb(config, space, rng, resample_probability=1.0)["learning_rate"]
                 for _ in range(30)]  # fmt: skip
    assert len(set(resampled)) == 30 and all(1e-4 <= v <= 1e-2 for v in resampled)


def test_a_loaded_member_takes_what_its_source_learned_and_keeps_its_own_environments():
    env = make_env("gymnax", "CartPole-v1", n_envs=2)
    hpo = {"n_steps": 8, "minibatch_size": 16, "update_epochs": 1}
    pop = Population([hpo, {**hpo, "learning_rate": 1e-3}], env, (0, 1),
                     nas_config={"hidden_size": 8})  # fmt: skip
    state = pop.init(jr.key(0))  # every member's network, key and environments differ
    old = [pop.member(state, m).runner_state for m in range(4)]
    new = loaded(old, [1, 1], n_seeds=2)
    for j in range(2):  # configuration 0, seed j: configuration 1's learning, seed j's own
        assert_bitwise_equal(new[j].train_state, old[2 + j].train_state)
        assert_bitwise_equal(new[j].env_state, old[j].env_state)
        assert_bitwise_equal(jr.key_data(new[j].rng), jr.key_data(old[j].rng))
    assert_bitwise_equal(new[2:], old[2:])


def test_a_pbt_study_regroups_its_members_logs_every_iteration_and_reads_back(tmp_path):
    env_config = {"env_framework": "gymnax", "env_name": "CartPole-v1", "n_envs": 4,
                  "n_eval_episodes": 2, "nas_config": {"hidden_size": 8}}  # fmt: skip
    settings = dict(space=_space(), env_config=env_config, population_size=3,
                    config_interval=256, iterations=2, seeds=(0, 1), out=tmp_path,
                    categorical_prob=1.0, base_config={"n_steps": 16})  # fmt: skip
    batches = []
    trials = pbt(**settings, on_batch=batches.append)
    assert [len(b) for b in batches] == [3, 3] and [t.number for t in trials] == list(range(6))
    assert all(t.status == "complete" and t.budget == 256 for t in trials)
    assert [t.steps for t in trials] == [256] * 3 + [512] * 3
    lineage = (tmp_path / "pbt.csv").read_text().splitlines()
    assert lineage[0] == "iteration,member,loaded_from,objective" and len(lineage) == 7
    worst = min(range(3), key=lambda i: trials[i].objective)
    best = max(range(3), key=lambda i: trials[i].objective)
    assert lineage[1 + 3 + worst].split(",")[:3] == ["1", str(worst), str(best)]
    final = json.loads((tmp_path / "pbt.json").read_text())["final_configs"]
    assert final == [t.config for t in trials[3:]]
    # A rerun reads the finished study back; other settings are refused by name.
    assert pbt(**settings) == trials
    with pytest.raises(StudyMismatch, match="config_interval"):
        pbt(**{**settings, "config_interval": 512})
    # Stopped after its first iteration (and a torn line appended, as a kill in the
    # middle of the log's write leaves it), a study resumes from its checkpoint and ends
    # with the uninterrupted study's table, bit for bit.
    other = {**settings, "out": tmp_path / "resumed"}
    assert len(pbt(**{**other, "iterations": 1})) == 3
    with open(tmp_path / "resumed" / "trials.jsonl", "a") as log:
        log.write('{"number": 3, "config": {"learn')
    resumed = pbt(**other)
    assert [t._replace(seconds=0) for t in resumed] == [t._replace(seconds=0) for t in trials]
    assert (tmp_path / "resumed" / "pbt.csv").read_text() == "\n".join(lineage) + "\n"
