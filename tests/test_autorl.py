"""The AutoRL environments and the HPO loop: ARLBench's interface, traced changes that
compile nothing, population steps equal to single steps, real Optuna and SMAC runs,
failed trials, and a killed `tune` that resumes."""

import json
import math
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
from conftest import count_compiles

from eqxppo.autorl import (
    AutoRLEnv,
    AutoRLPopulationEnv,
    StudyMismatch,
    incumbent,
    read_trials,
    tune,
)
from eqxppo.autorl._tune import _in_turn


SMALL = {"n_steps": 16, "minibatch_size": 32, "update_epochs": 2}
CONFIG = {
    "n_envs": 2, "n_steps": 2, "n_total_timesteps": 128, "n_eval_steps": 2,
    "n_eval_episodes": 2, "nas_config": {"hidden_size": 8}, "seed": 3,
}  # fmt: skip


def _weight(state):
    return np.asarray(state.runner_state.train_state.network.actor.layers[0].weight)


def test_the_arlbench_interface(tmp_path):
    env = AutoRLEnv({**CONFIG, "state_features": ["grad_info"], "checkpoint": ["params"],
                     "objectives": ["reward_mean", "reward_std", "runtime"],
                     "checkpoint_dir": str(tmp_path), "checkpoint_name": "run"})  # fmt: skip
    with pytest.raises(ValueError, match="before reset"):
        env.step(SMALL)
    assert env.reset() == ({}, {})
    obs, objectives, terminated, truncated, info = env.step(SMALL)
    assert set(obs) == {"steps", "grad_info"} and obs["grad_info"].shape == (2,)
    np.testing.assert_array_equal(obs["steps"], [1, 0])
    assert set(objectives) == {"reward_mean", "reward_std", "runtime"}
    assert objectives["runtime"] < 0  # maximising everything: runtime is negated
    assert objectives["reward_std"] <= 0 and objectives["reward_mean"] > 0
    assert (terminated, truncated) == (False, False)
    df = info["train_info_df"]
    assert isinstance(df, pd.DataFrame) and list(df.columns) == ["steps", "returns"]
    assert list(df["steps"]) == [64, 128] and len(df) == CONFIG["n_eval_steps"]
    assert env.observation_space.contains(obs)
    assert set(env.action_space.keys()) == set(env.config_space.keys())

    obs, _, _, truncated, info = env.step(SMALL)  # the episode's second and last step
    np.testing.assert_array_equal(obs["steps"], [2, 128])
    assert truncated and len(env.checkpoints) == 2
    with pytest.raises(ValueError, match="before reset"):
        env.step(SMALL)

    # A checkpoint path continues that state in a fresh episode.
    other = AutoRLEnv(CONFIG)
    other.reset()
    other.step(SMALL, checkpoint_path=env.checkpoints[0], n_total_timesteps=64)
    assert int(other.algorithm_state.runner_state.global_step) == 128 + 64
    assert len(env.eval(3)) == 3


def test_a_learning_rate_change_takes_effect_and_compiles_nothing():
    def run(second_lr):
        env = AutoRLEnv(CONFIG)
        env.reset()
        env.step({**SMALL, "learning_rate": 1e-3})
        with count_compiles() as compiles:
            env.step({"learning_rate": second_lr, "normalize_advantage": False})
        return compiles, env

    compiles, changed = run(1e-2)
    assert compiles.count == 0, compiles.names
    _, same = run(1e-3)
    assert not np.allclose(_weight(changed.algorithm_state), _weight(same.algorithm_state))
    assert changed.hpo_config["learning_rate"] == 1e-2


def test_a_static_change_compiles_once_and_keeps_the_learned_state():
    env = AutoRLEnv(CONFIG)
    env.reset()
    env.step(SMALL)
    before = _weight(env.algorithm_state)
    with count_compiles() as compiles:
        env.step({"n_steps": 8})
    assert any("train" in name for name in compiles.names)
    state = env.algorithm_state.runner_state
    assert int(state.global_step) == 256  # continued, not restarted
    assert not np.allclose(before, _weight(env.algorithm_state))


def test_a_population_step_equals_its_members_stepped_one_by_one():
    actions = [{**SMALL, "learning_rate": 1e-3}, {**SMALL, "learning_rate": 5e-3, "n_steps": 8}]
    later = [{"learning_rate": 2e-3}, {"ent_coef": 0.05}]
    pop_env = AutoRLPopulationEnv({**CONFIG, "n_steps": 3})
    pop_env.reset()
    pop_env.step(actions, seeds=(3, 4))
    with count_compiles() as compiles:
        pop_env.step([{}, {}], seeds=(3, 4))  # the members regroup (small eager helpers)
    assert not any("train" in name for name in compiles.names), compiles.names
    with count_compiles() as compiles:
        _, objectives, _, truncated, info = pop_env.step(later, seeds=(3, 4))
    assert compiles.count == 0, compiles.names  # same structures: nothing compiles
    assert truncated and info["programs"] == 2 and len(objectives) == 4
    pop, state = pop_env.population, pop_env.state
    for member in (0, 3):
        i, seed = member // 2, (3, 4)[member % 2]
        single = AutoRLEnv({**CONFIG, "seed": seed, "n_steps": 3})
        single.reset()
        single.step(actions[i])
        single.step({})
        _, single_objectives, _, _, _ = single.step(later[i])
        np.testing.assert_allclose(
            np.asarray(pop.member(state, member).runner_state.train_state.network.actor
                       .layers[0].weight),
            _weight(single.algorithm_state), rtol=1e-4, atol=1e-6,
        )  # fmt: skip
        assert objectives[member]["reward_mean"] == pytest.approx(
            single_objectives["reward_mean"], rel=1e-5
        )


def test_a_diverging_member_reports_the_worst_objective_and_the_others_go_on():
    from test_train import DIVERGES

    sane = {**DIVERGES, "learning_rate": 3e-4, "ent_coef": 0.0, "max_grad_norm": 0.5}
    env = AutoRLPopulationEnv({**CONFIG, "env_name": "Pendulum-v1", "n_envs": 4,
                               "n_total_timesteps": 30_000, "n_steps": 1})  # fmt: skip
    env.reset()
    _, objectives, _, _, info = env.step([DIVERGES, sane])
    np.testing.assert_array_equal(info["diverged"], [True, False])
    assert objectives[0]["reward_mean"] == -math.inf
    assert math.isfinite(objectives[1]["reward_mean"])


def test_a_schedule_runs_with_one_compilation():
    env = AutoRLEnv({**CONFIG, "n_steps": 4})
    env.reset()
    env.step({**SMALL, "learning_rate": 1e-2, "ent_coef": 0.1})
    with count_compiles() as compiles:
        for lr, ent in ((3e-3, 0.05), (1e-3, 0.02), (3e-4, 0.0)):
            env.step({"learning_rate": lr, "ent_coef": ent})
    assert compiles.count == 0, compiles.names
    assert float(env.algorithm_state.runner_state.hparams.learning_rate) == pytest.approx(3e-4)


def test_unknown_keys_warn_and_emissions_name_their_extra(monkeypatch):
    with pytest.warns(UserWarning, match="nonsense"):
        AutoRLEnv({**CONFIG, "nonsense": 1})
    monkeypatch.setitem(sys.modules, "codecarbon", None)
    with pytest.raises(ImportError, match=r"eqxppo\[emissions\]"):
        AutoRLEnv({**CONFIG, "objectives": ["emissions"]})
    with pytest.raises(ValueError, match="algorithm"):
        AutoRLEnv({**CONFIG, "algorithm": "dqn"})


def _small_space():
    """Two continuous hyperparameters: one static structure, so one program for all."""
    from ConfigSpace import ConfigurationSpace, Float

    space = ConfigurationSpace(seed=0)
    space.add([Float("learning_rate", (1e-4, 1e-2), log=True), Float("ent_coef", (0.0, 0.1))])
    return space


TUNE = {
    "space": _small_space(),
    "env_config": {"n_envs": 2, "n_eval_episodes": 2, "nas_config": {"hidden_size": 8}},
    "timesteps": 512,
}


@pytest.mark.e2e
@pytest.mark.parametrize("optimizer", ["optuna", "smac"])
def test_an_optimizer_run_tells_every_trial_and_its_best_was_evaluated(tmp_path, optimizer):
    pytest.importorskip(optimizer, reason="needs the autorl extra: pip install 'eqxppo[autorl]'")
    trials = tune(optimizer, **TUNE, n_trials=4, batch=2, out=tmp_path, reports=2)
    assert [t.number for t in trials] == [0, 1, 2, 3]
    assert all(t.status in ("complete", "pruned", "failed", "diverged") for t in trials)
    assert all(1 <= t.budget <= 512 for t in trials)
    best = incumbent(trials)
    assert best is not None and best.config in [t.config for t in trials]
    assert read_trials(tmp_path / "trials.jsonl") == trials


@pytest.mark.e2e
def test_populations_trained_as_units_tell_the_optimiser_what_it_hears_in_process(tmp_path):
    # A population trained as a unit (a launcher's job) is heard once it has trained, in
    # the order the optimiser hears a population of this process report by report; so
    # its decisions (Optuna's pruning, from the second batch on) and the log agree.
    pytest.importorskip("optuna", reason="needs the autorl extra: pip install 'eqxppo[autorl]'")
    from ConfigSpace import ConfigurationSpace, Float

    space = ConfigurationSpace(seed=0)
    space.add([Float("learning_rate", (1e-6, 1e-2), log=True)])
    settings = {**TUNE, "space": space, "timesteps": 1024, "n_trials": 8, "batch": 4,
                "reports": 4}  # fmt: skip
    here = tune("optuna", **settings, out=tmp_path / "here")
    # A launcher's `map` in this process: each unit in turn.
    units = tune("optuna", **settings, out=tmp_path / "units", map_units=_in_turn)
    assert any(t.status == "pruned" for t in here), [t.status for t in here]

    def table(trials):
        return [{**t._asdict(), "seconds": None} for t in trials]

    assert table(units) == table(here)
    # The round is part of the study: asking more before telling is another study.
    with pytest.raises(StudyMismatch, match="parallel"):
        tune("optuna", **settings, parallel=8, out=tmp_path / "here")


@pytest.mark.e2e
def test_a_killed_tune_resumes_without_losing_a_finished_trial(tmp_path):
    out = tmp_path / "tune"
    cmd = [sys.executable, "-m", "eqxppo", "tune", "--optimizer", "random", "--trials", "6",
           "--batch", "2", "--timesteps", "256", "--n-envs", "2", "--eval-episodes", "1",
           "--out", str(out)]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while len(read_trials(out / "trials.jsonl")) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.kill()
    proc.communicate(timeout=60)
    first = read_trials(out / "trials.jsonl")
    assert 2 <= len(first) < 6
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    trials = read_trials(out / "trials.jsonl")
    assert [t.number for t in trials] == list(range(6)) and trials[: len(first)] == first
    # Random search replays its sequence: the resumed trials are the ones it would have drawn.
    assert len({json.dumps(t.config, sort_keys=True) for t in trials}) == 6
    assert "incumbent" in done.stdout and (out / "objective.png").exists()


def test_a_diverging_trial_is_told_as_failed_and_the_loop_goes_on(tmp_path):
    from ConfigSpace import Categorical, ConfigurationSpace, Constant

    space = ConfigurationSpace(seed=0)
    # A rate of 1e30 without clipping: after one update the squared value error overflows.
    space.add([Categorical("learning_rate", [1e30, 1e-3]), Constant("max_grad_norm", 0.0)])
    trials = tune("random", **{**TUNE, "space": space}, n_trials=4, batch=4, out=tmp_path)
    by_rate = {t.config["learning_rate"]: t for t in trials}
    assert by_rate[1e30].status == "diverged" and by_rate[1e30].objective is None
    assert by_rate[1e-3].status == "complete" and by_rate[1e-3].objective is not None
    assert incumbent(trials).config["learning_rate"] == 1e-3


def test_every_budget_goes_through_one_parser(tmp_path):
    """`1e2` is a count; `1.5` is an error, never truncated; `0` is zero steps, never
    "the default"; alike in the config, in either environment's `step` and in `tune`."""
    with pytest.raises(ValueError, match=r"n_total_timesteps.*whole number.*1\.5"):
        AutoRLEnv({**CONFIG, "n_total_timesteps": 1.5})
    with pytest.raises(TypeError, match="n_eval_steps.*integer"):
        AutoRLPopulationEnv({**CONFIG, "n_eval_steps": True})
    for make in (AutoRLEnv, AutoRLPopulationEnv):
        env = make({**CONFIG, "n_total_timesteps": 1e2})
        env.reset()
        action = SMALL if make is AutoRLEnv else [SMALL]
        with pytest.raises(ValueError, match=r"n_total_timesteps.*whole number.*1\.5"):
            env.step(action, n_total_timesteps=1.5)
    pop_env = AutoRLPopulationEnv(CONFIG)
    pop_env.reset()
    obs, _, _, _, _ = pop_env.step([SMALL], n_total_timesteps=0)
    np.testing.assert_array_equal(obs[0]["steps"], [1, 0])
    assert int(pop_env.population.member(pop_env.state, 0).runner_state.global_step) == 0
    single = AutoRLEnv(CONFIG)
    single.reset()
    obs, _, _, _, _ = single.step(SMALL, n_total_timesteps=0)
    np.testing.assert_array_equal(obs["steps"], [1, 0])
    with pytest.raises(ValueError, match=r"timesteps.*whole number"):
        tune(optimizer="random", n_trials=1, batch=1, timesteps=100.5, out=tmp_path, **{
            k: v for k, v in TUNE.items() if k != "timesteps"})  # fmt: skip


@pytest.mark.e2e
def test_tune_takes_a_search_space_file_in_arlbench_s_form(tmp_path, capsys):
    from eqxppo.__main__ import main

    space = tmp_path / "space.yaml"
    space.write_text(
        "seed: 0\nhyperparameters:\n"
        "  hp_config.learning_rate: {type: uniform_float, lower: 1.0e-4, upper: 0.01, log: true}\n"
        "  hp_config.n_steps: {type: constant, value: 16}\n"
        "  hp_config.minibatch_size: {type: categorical, choices: [32]}\n"
        "  hp_config.update_epochs: {type: uniform_int, lower: 1, upper: 2}\n"
    )
    out = tmp_path / "tune"
    args = ["tune", "--trials", "4", "--batch", "4", "--timesteps", "256", "--n-envs", "2",
            "--eval-episodes", "1", "--space", str(space), "--out", str(out)]  # fmt: skip
    assert main(args) == 0
    trials = read_trials(out / "trials.jsonl")
    assert len(trials) == 4 and all(t.config["n_steps"] == 16 for t in trials)
    assert all(1e-4 <= t.config["learning_rate"] <= 1e-2 for t in trials)
    capsys.readouterr()
    space.write_text(
        "hyperparameters:\n  hp_config.lr: {type: uniform_float, lower: 0, upper: 1}\n"
    )
    assert main([*args[:-1], str(tmp_path / "other")]) == 2
    assert "unknown hyperparameter 'hp_config.lr'" in capsys.readouterr().err


@pytest.mark.e2e
def test_a_pruned_trial_stands_at_the_report_it_was_pruned_at(tmp_path):
    """Optuna's median pruner stops the trials below the finished ones' median at an
    early report: the log says where, with that report's value, never the budget."""
    pytest.importorskip("optuna", reason="needs the autorl extra: pip install 'eqxppo[autorl]'")
    from ConfigSpace import ConfigurationSpace, Float

    space = ConfigurationSpace(seed=0)
    space.add([Float("learning_rate", (1e-6, 1e-2), log=True)])
    trials = tune("optuna", **{**TUNE, "space": space, "timesteps": 1024}, n_trials=8,
                  batch=4, out=tmp_path, reports=4)  # fmt: skip
    assert read_trials(tmp_path / "trials.jsonl") == trials
    pruned = [t for t in trials if t.status == "pruned"]
    assert pruned, [(t.status, t.reports) for t in trials]
    for t in pruned:
        assert len(t.reports) < 4 and t.steps == t.report_steps[-1] < t.budget
        assert t.objective == t.reports[-1]
    for t in trials:
        if t.status == "complete":
            assert t.steps == t.budget == t.report_steps[-1] and len(t.reports) == 4
            assert t.report_steps == [256, 512, 768, 1024] and t.objective == t.reports[-1]
