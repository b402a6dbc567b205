"""ARLBench experiment trees: composed by Hydra from files in ARLBench's layout and keys
(written here), run as a job, a seed multirun and an HPO study."""

import csv
import json
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from eqxppo.__main__ import main
from eqxppo.experiments import JobMismatch, Study, expand_sweeps, plan, run_jobs


pytest.importorskip("hydra", reason="the experiment trees need eqxppo[hydra]")

AUTORL = """\
autorl:
  seed: ${seed}
  env_framework: ${environment.framework}
  env_name: ${environment.name}
  env_kwargs: ${environment.kwargs}
  eval_env_kwargs: ${environment.eval_kwargs}
  n_envs: ${environment.n_envs}
  algorithm: ${algorithm}
  cnn_policy: ${environment.cnn_policy}
  deterministic_eval: ${environment.deterministic_eval}
  nas_config: ${nas_config}
  n_total_timesteps: ${environment.n_total_timesteps}
  checkpoint: []
  checkpoint_name: "default_checkpoint"
  checkpoint_dir: "/tmp"
  state_features: []
  objectives: ["reward_mean"]
  optimize_objectives: "upper"
  n_eval_steps: 2
  n_eval_episodes: 4
"""
FILES = {
    "base.yaml": textwrap.dedent("""\
        defaults:
          - _self_
          - /algorithm: ppo
          - /environment: cc_cartpole
          - search_space: ppo_cc
        hydra:
          run:
            dir: results/${algorithm}_${environment.name}/${autorl.seed}
          sweep:
            dir: results/${algorithm}_${environment.name}/${autorl.seed}
          job:
            chdir: true
        jax_enable_x64: ${environment.jax_enable_x64}
        load_checkpoint: ""
        seed: 42
        """)
    + AUTORL,
    "random_search.yaml": textwrap.dedent("""\
        defaults:
          - _self_
          - /algorithm: ppo
          - /environment: cc_cartpole
          - search_space: ppo_cc
          - override hydra/sweeper: HyperRS
        hydra:
          sweeper:
            n_trials: 4
            search_space: ${search_space}
            sweeper_kwargs:
              maximize: true
              max_parallelization: 1
              seeds: [0, 1]
          sweep:
            dir: results/sobol/${algorithm}_${autorl.env_name}/${autorl.seed}
        seed: 42
        """)
    + AUTORL,
    "smac.yaml": textwrap.dedent("""\
        defaults:
          - _self_
          - /algorithm: ppo
          - /environment: cc_cartpole
          - /search_space: ppo_cc
          - override hydra/sweeper: HyperSMAC
        hydra:
          sweeper:
            n_trials: 5
            budget_variable: autorl.n_total_timesteps
            search_space: ${search_space}
            sweeper_kwargs:
              maximize: true
              min_budget: 256
              max_budget: ${environment.n_total_timesteps}
              optimizer_kwargs:
                smac_facade:
                  _target_: smac.facade.multi_fidelity_facade.MultiFidelityFacade
                  _partial_: true
                intensifier:
                  _target_: smac.facade.multi_fidelity_facade.MultiFidelityFacade.get_intensifier
                  _partial_: true
                  eta: 2
                  n_seeds: 1
                scenario:
                  seed: ${smac_seed}
                  n_trials: ${hydra.sweeper.n_trials}
                  min_budget: ${hydra.sweeper.sweeper_kwargs.min_budget}
                  max_budget: ${environment.n_total_timesteps}
                  deterministic: false
                  n_workers: 1
                  output_directory: ${hydra.sweep.dir}
              seeds: [3]
          sweep:
            dir: results/smac/${algorithm}_${autorl.env_name}/${smac_seed}/${seed}
        smac_seed: 7
        seed: 42
        """)
    + AUTORL,
    "algorithm/ppo.yaml": """\
        # @package _global_
        algorithm: ppo
        hp_config:
          clip_eps: 0.2
          ent_coef: 0.0
          gae_lambda: 0.95
          gamma: 0.99
          learning_rate: 0.001
          max_grad_norm: 0.5
          minibatch_size: 64
          n_steps: 32
          normalize_advantage: true
          normalize_observations: false
          update_epochs: 2
          vf_clip_eps: 0.2
          vf_coef: 0.5
        nas_config:
          activation: tanh
          hidden_size: 16
        """,
    "algorithm/dqn.yaml": """\
        # @package _global_
        algorithm: dqn
        hp_config:
          learning_rate: 0.0003
        nas_config:
          activation: tanh
          hidden_size: 64
        """,
    "environment/cc_cartpole.yaml": """\
        name: "CartPole-v1"
        framework: "gymnax"
        n_total_timesteps: 1024
        kwargs: {}
        eval_kwargs: {}
        cnn_policy: False
        deterministic_eval: True
        jax_enable_x64: False
        n_envs: 4
        """,
    "environment/cc_acrobot.yaml": """\
        name: "Acrobot-v1"
        framework: "gymnax"
        n_total_timesteps: 1e3
        kwargs: {}
        eval_kwargs: {}
        cnn_policy: False
        deterministic_eval: True
        jax_enable_x64: False
        n_envs: 2
        """,
    "environment/box2d_lunar_lander.yaml": """\
        name: "LunarLander-v2"
        framework: "envpool"
        n_total_timesteps: 1e6
        kwargs: {}
        eval_kwargs: {}
        cnn_policy: False
        deterministic_eval: True
        jax_enable_x64: False
        n_envs: 8
        """,
    "search_space/ppo_cc.yaml": """\
        seed: 0
        hyperparameters:
          hp_config.learning_rate:
            type: uniform_float
            upper: 0.01
            lower: 1.0e-04
            log: true
          hp_config.ent_coef:
            type: uniform_float
            upper: 0.1
            lower: 0.0
            log: false
        """,
    "incumbent/ppo_cartpole_test.yaml": """\
        # @package _global_
        defaults:
          - override /environment: cc_acrobot
          - override /algorithm: ppo
        hpo_method: test
        hp_config:
          learning_rate: 0.003
          gamma: 0.98
        """,
}


def write_tree(folder):
    """An experiment tree in ARLBench's layout (examples/configs), small budgets."""
    for name, text in FILES.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))  # (the top files are dedented already)
    return folder


@pytest.fixture
def tree(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # Hydra's relative folders land here
    return write_tree(tmp_path / "configs")


def _csv(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def test_a_job_composes_groups_incumbents_and_overrides(tree, tmp_path):
    (job,) = plan(tree)
    assert job.config["hp_config"]["n_steps"] == 32 and job.autorl["env_name"] == "CartPole-v1"
    assert job.autorl["n_total_timesteps"] == 1024 and job.autorl["seed"] == 42
    assert job.out == tmp_path / "results" / "ppo_CartPole-v1" / "42"
    assert job.autorl["nas_config"] == {"activation": "tanh", "hidden_size": 16}
    (job,) = plan(tree, overrides=["+incumbent=ppo_cartpole_test", "seed=5",
                                   "hp_config.clip_eps=0.3"])  # fmt: skip
    # The incumbent switches the environment and replaces two hyperparameters.
    assert job.autorl["env_name"] == "Acrobot-v1" and job.autorl["n_total_timesteps"] == 1000
    assert job.config["hp_config"]["learning_rate"] == 0.003
    assert job.config["hp_config"]["clip_eps"] == 0.3 and job.autorl["seed"] == 5
    assert job.out == tmp_path / "results" / "ppo_Acrobot-v1" / "5"


@pytest.mark.parametrize(("overrides", "match"), [
    (["environment=nope"], "Could not find 'environment/nope'"),
    (["algorithm=dqn"], "eqxppo runs PPO"),
    (["hp_config.not_a_key=1"], "hp_config.not_a_key"),
    (["seed=0,1"], "add -m"),
    (["+hp_config.not_ppos=1"], "not_ppos"),
    (["hp_config.gamma=2"], "gamma"),
])  # fmt: skip
def test_what_the_tree_cannot_run_is_named(tree, overrides, match):
    with pytest.raises(ValueError, match=match):
        plan(tree, overrides=overrides)


def test_a_study_with_a_search_space_ppo_lacks_is_named_when_planned(tree):
    text = (tree / "search_space" / "ppo_cc.yaml").read_text()
    (tree / "search_space" / "ppo_cc.yaml").write_text(text.replace("ent_coef", "eps_greedy"))
    with pytest.raises(ValueError, match="the tree's search_space: unknown hyperparameter"):
        plan(tree, config_name="random_search", multirun=True)


def test_sweeps_expand_in_hydras_order():
    assert expand_sweeps(["a=1,2", "b=x", "c=range(0,2)"]) == [
        ["a=1", "b=x", "c=0"], ["a=1", "b=x", "c=1"], ["a=2", "b=x", "c=0"], ["a=2", "b=x", "c=1"],
    ]  # fmt: skip


def test_a_study_maps_hypersweepers_settings_onto_tune(tree, tmp_path):
    study = plan(tree, config_name="smac", multirun=True, overrides=["seed=1"])
    assert isinstance(study, Study)
    assert (study.optimizer, study.n_trials, study.min_budget, study.max_budget, study.eta,
            study.seeds, study.seed) == ("smac", 5, 256, 1024, 2, (3,), 7)  # fmt: skip
    assert study.job.out == tmp_path / "results" / "smac" / "ppo_CartPole-v1" / "7" / "1"
    assert set(study.search_space["hyperparameters"]) == {"hp_config.learning_rate",
                                                          "hp_config.ent_coef"}  # fmt: skip
    study = plan(tree, config_name="random_search", multirun=True)
    assert (study.optimizer, study.n_trials, study.min_budget, study.seeds) == (
        "random", 4, None, (0, 1))  # fmt: skip


def test_a_seed_multirun_is_one_population_whose_jobs_match_single_runs(tree, tmp_path):
    jobs = plan(tree, multirun=True, overrides=["seed=0,1", "hp_config.clip_eps=0.3"])
    assert [j.out for j in jobs] == [tmp_path / "results" / "ppo_CartPole-v1" / "42" / str(n)
                                     for n in (0, 1)]  # fmt: skip
    values = run_jobs(jobs)
    (alone,) = plan(tree, overrides=["seed=1", "hp_config.clip_eps=0.3"], out=tmp_path / "alone")
    (value,) = run_jobs([alone])
    np.testing.assert_allclose(values[1], value, rtol=1e-5)
    for job, v in zip(jobs, values):
        rows = _csv(job.out / "metrics.csv")
        assert [int(r["step"]) for r in rows] == [512, 1024]
        assert float(rows[-1]["mean_return"]) == pytest.approx(v, abs=1e-3)
        assert float((job.out / "performance.csv").read_text()) == v
        assert (job.out / "done.txt").read_text() == "yes" and (job.out / "checkpoint.eqx").exists()
        log = (job.out / "job.log").read_text().splitlines()  # run_arlbench.py's job.log
        assert "population of the 2 seeds" in log[0] and len(log) == 2
        assert log[1].endswith(f"Returned objectives: {{'reward_mean': {v}}}")
    # Rerunning reads the finished jobs back (ARLBench's done.txt) instead of training.
    (jobs[0].out / "performance.csv").write_text("12.5")
    (jobs[1].out / "performance.csv").write_text("{'reward_mean': 7.0, 'reward_std': -1.0}")
    assert run_jobs(jobs) == [12.5, 7.0]


def test_missing_hydra_is_one_line(tree, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "hydra", None)
    assert main(["arlbench", str(tree)]) == 2
    err = capsys.readouterr().err.strip()
    assert "pip install 'eqxppo[hydra]'" in err and len(err.splitlines()) == 1


@pytest.mark.e2e
def test_random_study_runs_from_the_tree_with_one_command(tree, tmp_path, capsys):
    assert main(["arlbench", str(tree), "--config-name=random_search", "-m", "--batch", "4",
                 "hp_config.gamma=0.95"]) == 0  # fmt: skip
    out = tmp_path / "results" / "sobol" / "ppo_CartPole-v1" / "42"
    history = _csv(out / "runhistory.csv")
    assert len(history) == 4 and all(r["seeds"] == "0 1" for r in history)
    assert {"hp_config.learning_rate", "hp_config.ent_coef"} <= set(history[0])
    best = max(history, key=lambda r: float(r["performance"]))
    last = json.loads((out / "incumbent.json").read_text().splitlines()[-1])
    assert last["config_id"] == int(best["config_id"])
    assert last["score"] == pytest.approx(float(best["performance"]))
    trials = [json.loads(line) for line in (out / "trials.jsonl").read_text().splitlines()]
    assert [t["objective"] for t in trials] == [float(r["performance"]) for r in history]
    assert "incumbent: trial" in capsys.readouterr().out


@pytest.mark.e2e
def test_smac_study_asks_budgets_between_the_trees_bounds(tree, tmp_path):
    assert main(["arlbench", str(tree), "--config-name=smac", "-m", "--batch", "5"]) == 0
    out = tmp_path / "results" / "smac" / "ppo_CartPole-v1" / "7" / "42"
    budgets = {int(r["budget"]) for r in _csv(out / "runhistory.csv")}
    assert min(budgets) >= 256 and max(budgets) <= 1024 and len(budgets) > 1, budgets


@pytest.mark.e2e
def test_a_seed_multirun_from_the_command_line_logs_each_job(tree, tmp_path):
    pytest.importorskip("tensorboardX")
    assert main(["arlbench", str(tree), "-m", "autorl.seed=0,1", "--logger",
                 "csv,tensorboard"]) == 0  # fmt: skip
    out = tmp_path / "results" / "ppo_CartPole-v1" / "42"
    rows = _csv(out / "results.csv")
    assert [r["seed"] for r in rows] == ["0", "1"]
    assert sorted(p.name for p in (out / "tensorboard").iterdir()) == ["job_0", "job_1"]


def test_the_example_tree_composes(monkeypatch, tmp_path):
    # examples/arlbench_configs, which the README runs: every top file and the incumbent.
    monkeypatch.chdir(tmp_path)
    tree = Path(__file__).parent.parent / "examples" / "arlbench_configs"
    (job,) = plan(tree, overrides=["+incumbent=ppo_cartpole_example"])
    assert job.config["hp_config"]["learning_rate"] == 0.001 and job.autorl["n_envs"] == 8
    assert len(plan(tree, multirun=True, overrides=["seed=0,1,2"])) == 3
    for name, optimizer in (("random_search", "random"), ("smac", "smac")):
        study = plan(tree, config_name=name, multirun=True)
        assert isinstance(study, Study) and study.optimizer == optimizer
        assert len(study.search_space["hyperparameters"]) == 9  # ARLBench's ppo_cc


def test_a_rerun_with_other_settings_never_reports_the_old_result(tree, tmp_path, capsys):
    (job,) = plan(tree, overrides=["seed=3"])
    (value,) = run_jobs([job])
    # ARLBench's folder does not depend on the hyperparameters: the same folder, new rate.
    (changed,) = plan(tree, overrides=["seed=3", "hp_config.learning_rate=0.01"])
    assert changed.out == job.out
    with pytest.raises(JobMismatch, match=r"hp_config\.learning_rate=0\.01"):
        run_jobs([changed])
    assert main(["arlbench", str(tree), "seed=3", "hp_config.learning_rate=0.01"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "another configuration" in err
    assert run_jobs([job]) == [value]  # the same job is read back, not retrained
    # A finished job without the record of its configuration is not trusted either.
    (job.out / "config.yaml").unlink()
    with pytest.raises(JobMismatch, match="without the config.yaml"):
        run_jobs([job])


@pytest.mark.e2e
def test_a_study_rerun_with_another_budget_is_refused(tree, tmp_path, capsys):
    args = ["arlbench", str(tree), "--config-name=random_search", "-m", "--batch", "4",
            "hydra.sweeper.n_trials=2", "hydra.sweeper.sweeper_kwargs.seeds=[0]"]  # fmt: skip
    assert main(args) == 0
    capsys.readouterr()
    assert main([*args, "environment.n_total_timesteps=2048"]) == 2
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and "timesteps=2048 (the study has 1024)" in err, err
    assert err.splitlines()[-1].startswith("eqxppo: error:")


def test_a_job_without_a_budget_is_one_line(tree, capsys):
    assert main(["arlbench", str(tree), "environment.n_total_timesteps=0"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "n_total_timesteps" in err, err


def _variant(tree, name, text, *replacements):
    """A top file of the tree's `smac.yaml` with `replacements` made."""
    for old, new in replacements:
        assert old in text, old
        text = text.replace(old, new)
    (tree / f"{name}.yaml").write_text(text)


BLACK_BOX = [  # ARLBench's tune_smac: no budget variable, every trial at the full budget
    ("\n    budget_variable: autorl.n_total_timesteps\n", "\n"),
    ("\n      min_budget: 256\n", "\n"),
    ("\n          min_budget: ${hydra.sweeper.sweeper_kwargs.min_budget}\n", "\n"),
]


def test_smac_settings_are_honoured_black_box_and_multi_fidelity(tree):
    text = (tree / "smac.yaml").read_text()
    _variant(tree, "smac_bb", text, *BLACK_BOX)
    study = plan(tree, config_name="smac_bb", multirun=True)
    assert (study.optimizer, study.min_budget, study.max_budget) == ("smac", 1024, 1024)
    # Multi-fidelity budgets through the resolvers ARLBench's run script registers.
    _variant(tree, "smac_mf", text,
             ("min_budget: 256\n", "min_budget: ${divide:${environment.n_total_timesteps},4}\n"),
             ("n_trials: 5\n", "n_trials: ${multiply:2,3}\n"))  # fmt: skip
    study = plan(tree, config_name="smac_mf", multirun=True)
    assert (study.min_budget, study.max_budget, study.n_trials, study.eta) == (256, 1024, 6, 2)
    # Random search has no fidelities: a min_budget is named, never ignored.
    rs = (tree / "random_search.yaml").read_text()
    _variant(tree, "rs_mf", rs,
             ("      seeds: [0, 1]\n", "      seeds: [0, 1]\n      min_budget: 8\n"),
             ("    search_space: ${search_space}\n", "    search_space: ${search_space}\n"
              "    budget_variable: autorl.n_total_timesteps\n"))  # fmt: skip
    with pytest.raises(ValueError, match="min_budget"):
        plan(tree, config_name="rs_mf", multirun=True)


def test_arlbench_s_ppo_spaces_compose_by_name_and_a_tree_s_own_file_wins(tree):
    (job,) = plan(tree, overrides=["search_space=ppo_mujoco"])
    space = job.config["search_space"]["hyperparameters"]
    assert len(space) == 9 and space["hp_config.minibatch_size"]["choices"] == [32, 64, 128]
    (job,) = plan(tree, overrides=["search_space=ppo_minigrid"])
    assert job.config["search_space"]["hyperparameters"]["hp_config.vf_coef"]["default"] == 0.5
    (job,) = plan(tree)  # the tree's own ppo_cc.yaml (two hyperparameters), not the built-in
    assert len(job.config["search_space"]["hyperparameters"]) == 2


@pytest.mark.e2e
def test_a_black_box_smac_study_trains_every_trial_at_the_full_budget(tree, tmp_path):
    _variant(tree, "smac_bb", (tree / "smac.yaml").read_text(), *BLACK_BOX)
    assert main(["arlbench", str(tree), "--config-name=smac_bb", "-m", "--batch", "5"]) == 0
    out = tmp_path / "results" / "smac" / "ppo_CartPole-v1" / "7" / "42"
    rows = _csv(out / "runhistory.csv")
    assert len(rows) == 5 and {int(r["budget"]) for r in rows} == {1024}
    best = json.loads((out / "incumbent.json").read_text().splitlines()[-1])
    assert best["budget"] == 1024


ARLBENCH_TREE = Path(__file__).parent / "data" / "arlbench_tree"  # as ARLBench ships it


def test_arlbench_s_own_tree_plans_with_ppo_and_names_what_to_add(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match=r"algorithm is 'dqn'.*algorithm=ppo"):
        plan(ARLBENCH_TREE, config_name="random_search", multirun=True)
    # Its sweeps default to DQN's space: the error says which override to add.
    with pytest.raises(ValueError, match=r"conditions.*add search_space=ppo_cc"):
        plan(ARLBENCH_TREE, config_name="random_search", multirun=True,
             overrides=["algorithm=ppo"])  # fmt: skip
    for name, optimizer, low in (("random_search", "random", None), ("smac", "smac", 10_000)):
        for space, sizes in (("ppo_cc", [128, 256, 512]), ("ppo_minigrid", [32, 64, 128])):
            study = plan(ARLBENCH_TREE, config_name=name, multirun=True,
                         overrides=["algorithm=ppo", f"search_space={space}"])  # fmt: skip
            assert isinstance(study, Study) and study.optimizer == optimizer
            hps = study.search_space["hyperparameters"]
            assert len(hps) == 9 and hps["hp_config.minibatch_size"]["choices"] == sizes
            assert (study.min_budget, study.max_budget, study.n_trials) == (low, 100_000, 16)


@pytest.mark.e2e
def test_arlbench_s_own_random_search_runs_as_shipped_with_ppo(monkeypatch, tmp_path, capsys):
    monkeypatch.chdir(tmp_path)
    small = ["environment.n_total_timesteps=256", "environment.n_envs=2",
             "autorl.n_eval_steps=1", "autorl.n_eval_episodes=2", "hydra.sweeper.n_trials=2",
             "algorithm=ppo", "search_space=ppo_cc", "hp_config.n_steps=32"]  # fmt: skip
    assert main(["arlbench", str(ARLBENCH_TREE), "--config-name=random_search", "-m",
                 *small]) == 0  # fmt: skip
    out = tmp_path / "results" / "sobol" / "ppo_CartPole-v1" / "42"
    rows = _csv(out / "runhistory.csv")
    assert len(rows) == 2 and all(r["seeds"] == "42 43 44" for r in rows)
    assert all(r["status"] == "complete" for r in rows)
    assert "incumbent: trial" in capsys.readouterr().out


def test_an_override_swept_beside_a_study_is_one_study_per_value(tree, tmp_path):
    studies = plan(tree, config_name="smac", multirun=True, overrides=["smac_seed=0,1"])
    assert isinstance(studies, list) and [s.seed for s in studies] == [0, 1]
    assert [s.job.out for s in studies] == [
        tmp_path / "results" / "smac" / "ppo_CartPole-v1" / str(seed) / "42" for seed in (0, 1)
    ]
    # The landscape protocol: the same configurations (one space seed) under each seed.
    rs = (tree / "random_search.yaml").read_text()
    _variant(tree, "random_runs", rs, ("      seeds: [0, 1]\n", ""))
    studies = plan(tree, config_name="random_runs", multirun=True,
                   overrides=["autorl.seed=range(3)"])  # fmt: skip
    assert [s.seeds for s in studies] == [(0,), (1,), (2,)]
    assert len({s.job.out for s in studies}) == 3 and {s.seed for s in studies} == {0}
    # Two studies that would write one folder are refused, naming it.
    with pytest.raises(ValueError, match="share a folder"):
        plan(tree, config_name="smac", multirun=True, overrides=["hp_config.gamma=0.9,0.95"])
    assert len(plan(tree, config_name="smac", multirun=True, out=tmp_path / "o",
                    overrides=["hp_config.gamma=0.9,0.95"])) == 2  # fmt: skip


@pytest.mark.e2e
def test_the_landscape_protocol_trains_every_configuration_under_every_seed(tree, tmp_path):
    rs = (tree / "random_search.yaml").read_text()
    _variant(tree, "random_runs", rs, ("      seeds: [0, 1]\n", ""))
    assert main(["arlbench", str(tree), "--config-name=random_runs", "-m",
                 "autorl.seed=range(2)"]) == 0  # fmt: skip
    tables = [_csv(tmp_path / "results" / "sobol" / "ppo_CartPole-v1" / str(seed) /
                   "runhistory.csv") for seed in (0, 1)]  # fmt: skip
    assert [len(t) for t in tables] == [4, 4]
    configs = [[{k: v for k, v in r.items() if k.startswith("hp_config.")} for r in t]
               for t in tables]  # fmt: skip
    assert configs[0] == configs[1]  # one result per configuration and seed
    assert [r["seeds"] for r in tables[1]] == ["1"] * 4


PBT = (
    textwrap.dedent("""\
    defaults:
      - _self_
      - /algorithm: ppo
      - /environment: cc_cartpole
      - search_space: ppo_cc
      - override hydra/sweeper: HyperPBT
    hydra:
      sweeper:
        budget: ${multiply:${autorl.n_total_timesteps},${pbt_population}}
        budget_variable: autorl.n_total_timesteps
        loading_variable: load
        saving_variable: save
        search_space: ${search_space}
        sweeper_kwargs:
          optimizer_kwargs:
            population_size: ${pbt_population}
            config_interval: ${divide:${autorl.n_total_timesteps},2}
            seed: ${pbt_seed}
          checkpoint_tf: true
          load_tf: true
          maximize: true
          seeds: [0, 1]
      sweep:
        dir: results/pbt/${algorithm}_${autorl.env_name}/${pbt_seed}
    pbt_seed: 5
    pbt_population: 3
    seed: 42
    """)
    + AUTORL
)


def test_hyperpbt_s_settings_become_one_pbt_study(tree):
    (tree / "pbt.yaml").write_text(PBT)
    study = plan(tree, config_name="pbt", multirun=True)
    assert (study.optimizer, study.seed, study.seeds, study.n_trials) == ("pbt", 5, (0, 1), 6)
    # Hypersweeper's budget (steps x members) over config_interval x members: 2 iterations.
    assert study.pbt == {"population_size": 3, "config_interval": 512, "iterations": 2,
                         "seed": 5}  # fmt: skip
    assert plan(tree, config_name="pbt", multirun=True,
                overrides=["hydra.sweeper.n_trials=3"]).pbt["iterations"] == 1  # fmt: skip
    for override, match in [
        ("hydra.sweeper.n_trials=4", "whole number of iterations"),
        ("hydra.sweeper.sweeper_kwargs.load_tf=false", "load_tf"),
        ("+hydra.sweeper.sweeper_kwargs.optimizer_kwargs.model=1", "model"),
    ]:
        with pytest.raises(ValueError, match=match):
            plan(tree, config_name="pbt", multirun=True, overrides=[override])


@pytest.mark.e2e
def test_a_pbt_tree_runs_as_one_population_with_hypersweeper_s_files(tree, tmp_path, capsys):
    (tree / "pbt.yaml").write_text(PBT)
    assert main(["arlbench", str(tree), "--config-name=pbt", "-m"]) == 0
    out = tmp_path / "results" / "pbt" / "ppo_CartPole-v1" / "5"
    rows = _csv(out / "runhistory.csv")
    assert len(rows) == 6 and {r["budget"] for r in rows} == {"512"}
    assert {r["seeds"] for r in rows} == {"0 1"}
    assert len(_csv(out / "pbt.csv")) == 6
    assert "(pbt) on CartPole-v1: 3 members x 2 iterations of 512 steps" in capsys.readouterr().out
    best = json.loads((out / "incumbent.json").read_text().splitlines()[-1])
    assert best["score"] == max(float(r["performance"]) for r in rows)


CLUSTER = """\
# @package _global_
defaults:
  - override /hydra/launcher: {launcher}
hydra:
  launcher:
    timeout_min: 10
    cpus_per_task: 1
"""


@pytest.mark.e2e
def test_a_tree_s_submitit_launcher_trains_each_population_as_one_launched_job(tree, tmp_path):
    # ARLBench's cluster configs set hydra/launcher; submitit's local executor runs each
    # population (here the two seeds' jobs) as a job of its own process, and the jobs'
    # files and results are those of the run in this process.
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    (tree / "cluster").mkdir()
    (tree / "cluster" / "local.yaml").write_text(CLUSTER.format(launcher="submitit_local"))
    sweep = ["-m", "seed=0,1", "environment.n_total_timesteps=512"]
    args = ["arlbench", str(tree), "--out"]
    assert main([*args, str(tmp_path / "launched"), "+cluster=local", *sweep]) == 0
    assert main([*args, str(tmp_path / "here"), *sweep]) == 0
    launched = tmp_path / "launched"
    (unit,) = (launched / ".submitit").glob("[0-9]*")  # one launched job: one population
    assert any(unit.glob("*_result.pkl"))
    overrides = (launched / ".launched" / "0" / ".hydra" / "overrides.yaml").read_text()
    assert "+eqxppo_unit=0" in overrides
    for n in (0, 1):
        log = (launched / str(n) / "job.log").read_text()
        assert f"member {n} of a population of the 2 seeds" in log
        mine, theirs = (float((folder / str(n) / "performance.csv").read_text())
                        for folder in (launched, tmp_path / "here"))  # fmt: skip
        assert mine == theirs


@pytest.mark.e2e
def test_a_study_s_rounds_train_as_launched_jobs_with_this_process_s_results(tree, tmp_path):
    # 4 trials x 2 seeds with max_parallelization 1: Hypersweeper's rounds of two
    # configurations; with --batch 1 each round is two populations, two launched jobs.
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    (tree / "cluster").mkdir()
    (tree / "cluster" / "local.yaml").write_text(CLUSTER.format(launcher="submitit_local"))
    study = ["--config-name=random_search", "-m", "--batch", "1",
             "environment.n_total_timesteps=512"]  # fmt: skip
    args = ["arlbench", str(tree), "--out"]
    assert main([*args, str(tmp_path / "launched"), "+cluster=local", *study]) == 0
    assert main([*args, str(tmp_path / "here"), *study]) == 0
    assert len(list((tmp_path / "launched" / ".submitit").glob("[0-9]*"))) == 4
    launched, here = (
        [(t["config"], t["objective"], t["status"], t["steps"]) for t in map(json.loads, (
            folder / "trials.jsonl").read_text().splitlines())]
        for folder in (tmp_path / "launched", tmp_path / "here")
    )  # fmt: skip
    assert len(launched) == 4 and launched == here


def test_a_launcher_whose_plugin_is_missing_is_named_in_one_line(tree, capsys):
    (tree / "cluster").mkdir()
    (tree / "cluster" / "ray.yaml").write_text(CLUSTER.format(launcher="ray"))
    assert main(["arlbench", str(tree), "+cluster=ray", "-m", "seed=0,1"]) == 2
    err = capsys.readouterr().err.strip()
    assert "hydra/launcher 'ray'" in err and "pip install hydra-ray-launcher" in err
    assert len(err.splitlines()) == 1


@pytest.mark.e2e
def test_launched_units_return_in_order_and_a_failed_one_raises_here(tree, tmp_path):
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    import functools
    import operator

    from eqxppo.experiments import tree_launcher

    (tree / "cluster").mkdir()
    (tree / "cluster" / "local.yaml").write_text(CLUSTER.format(launcher="submitit_local"))
    launcher = tree_launcher(tree, overrides=["+cluster=local"], out=tmp_path / "units")
    assert launcher is not None and launcher.name == "submitit_local"
    assert tree_launcher(tree) is None  # Hydra's basic launcher: this process
    units = [functools.partial(operator.mul, n, 10) for n in range(3)]
    assert launcher.map(units) == [0, 10, 20]
    with pytest.raises(ZeroDivisionError):
        launcher.map([functools.partial(operator.truediv, 1, 0)])
