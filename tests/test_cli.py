"""The command line: train / resume / Ctrl-C, evaluate, sweep, and one-line user errors."""

import csv
import json
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import yaml
from conftest import assert_bitwise_equal

import eqxppo
from eqxppo.__main__ import main


SMALL = ["--set", "n_steps=32", "--set", "minibatch_size=64", "--set", "update_epochs=2",
         "--set", "hidden_size=8"]  # fmt: skip


def _rows(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def test_train_writes_config_metrics_plot_and_checkpoint(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["train", "--timesteps", "1024", "--n-envs", "2", "--chunks", "2",
                 "--eval-episodes", "2", *SMALL, "--out", str(out)])  # fmt: skip
    assert code == 0
    config = json.loads((out / "config.json").read_text())
    assert config["hpo"]["n_steps"] == 32 and config["nas"]["hidden_size"] == 8
    rows = _rows(out / "metrics.csv")
    assert [int(r["step"]) for r in rows] == [512, 1024]
    assert {"mean_return", "min_return", "max_return", "loss", "value_loss", "actor_loss",
            "entropy", "steps_per_s"} <= set(rows[0])  # fmt: skip
    assert all(float(r["min_return"]) <= float(r["mean_return"]) <= float(r["max_return"])
               for r in rows)  # fmt: skip
    assert (out / "learning_curve.png").read_bytes()[:4] == b"\x89PNG"
    agent, state = eqxppo.load(out / "checkpoint.eqx")
    assert int(state.runner_state.global_step) == 1024 and agent.config.n_steps == 32
    assert "final eval return" in capsys.readouterr().out

    assert main(["evaluate", str(out), "--episodes", "3"]) == 0
    assert "+-" in capsys.readouterr().out and main(["evaluate", str(out), "--stochastic"]) == 0


@pytest.mark.parametrize("name", ["c.json", "c.yaml"])
def test_config_file_then_set_overrides(tmp_path, name):
    values = {"n_steps": 16, "learning_rate": 1e-3, "hidden_size": 8}
    text = json.dumps(values) if name.endswith("json") else yaml.safe_dump(values)
    (tmp_path / name).write_text(text)
    out = tmp_path / "run"
    code = main(["train", "--timesteps", "64", "--n-envs", "2", "--chunks", "1",
                 "--eval-episodes", "1", "--config", str(tmp_path / name),
                 "--set", "learning_rate=3e-4", "--out", str(out)])  # fmt: skip
    assert code == 0
    config = json.loads((out / "config.json").read_text())
    assert config["hpo"]["n_steps"] == 16 and config["nas"]["hidden_size"] == 8
    assert config["hpo"]["learning_rate"] == pytest.approx(3e-4)


_RUN = [sys.executable, "-m", "eqxppo", "train", "--timesteps", "19200", "--n-envs", "4",
        "--chunks", "150", "--eval-episodes", "1", "--set", "n_steps=32", "--set",
        "minibatch_size=64", "--set", "update_epochs=1", "--set", "hidden_size=8"]  # fmt: skip


@pytest.mark.e2e
def test_ctrl_c_saves_and_resume_matches_an_uninterrupted_run(tmp_path):
    interrupted = tmp_path / "interrupted"
    proc = subprocess.Popen([*_RUN, "--out", str(interrupted)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    deadline = time.monotonic() + 300
    while not (interrupted / "checkpoint.eqx").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 130, (stdout[-500:], stderr[-1000:])
    assert "interrupted; checkpoint at step" in stdout and "Traceback" not in stderr
    stopped_at = len(_rows(interrupted / "metrics.csv"))
    assert 1 <= stopped_at < 150

    resume = [sys.executable, "-m", "eqxppo", "train", "--resume", str(interrupted)]
    resumed = subprocess.run(resume, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    straight = tmp_path / "straight"
    subprocess.run([*_RUN, "--out", str(straight)], check=True, capture_output=True, timeout=600)

    _, a = eqxppo.load(interrupted / "checkpoint.eqx")
    _, b = eqxppo.load(straight / "checkpoint.eqx")
    assert int(a.runner_state.global_step) == 19200
    assert_bitwise_equal(a.runner_state, b.runner_state)
    rows_a, rows_b = _rows(interrupted / "metrics.csv"), _rows(straight / "metrics.csv")
    key = lambda rows: [(r["step"], r["mean_return"], r["loss"]) for r in rows]
    assert len(rows_a) >= 149 and set(key(rows_a)) <= set(key(rows_b))


def test_sweep_ranks_configurations(tmp_path, capsys):
    out = tmp_path / "sweep"
    code = main(["sweep", "--n-configs", "3", "--seeds", "2", "--timesteps", "512",
                 "--n-envs", "2", "--chunks", "2", "--eval-episodes", "2",
                 "--set", "n_steps=16", "--set", "minibatch_size=32",
                 "--set", "update_epochs=1", "--set", "normalize_observations=false",
                 "--set", "normalize_advantage=true", "--set", "hidden_size=8",
                 "--out", str(out)])  # fmt: skip
    assert code == 0
    rows = _rows(out / "results.csv")
    assert [int(r["config"]) for r in rows] == [0, 1, 2]
    assert sorted(int(r["rank"]) for r in rows) == [1, 2, 3]
    best = min(rows, key=lambda r: int(r["rank"]))
    assert float(best["mean_final_return"]) == max(float(r["mean_final_return"]) for r in rows)
    assert len({r["learning_rate"] for r in rows}) == 3  # sampled, not fixed
    assert {r["n_steps"] for r in rows} == {"16"}  # fixed by --set
    assert (out / "learning_curves.png").read_bytes()[:4] == b"\x89PNG"
    printed = capsys.readouterr().out
    assert "1 compiled group" in printed and f"best configuration {best['config']}" in printed


@pytest.mark.parametrize(
    "args, needle",
    [
        (["train", "--set", "learnin_rate=1"], "learnin_rate"),
        (["train", "--set", "gamma=2"], "gamma"),
        (["train", "--env", "NoSuchEnv-v0"], "NoSuchEnv-v0"),
        (["train", "--config", "missing.yaml"], "missing.yaml"),
        (["train", "--resume", "no/such/dir"], "no/such/dir"),
        (["evaluate", "no/such/dir"], "no/such/dir"),
        (["sweep", "--n-configs", "0", "--out", "x"], "--n-configs"),
        (["train", "stray"], "unrecognized arguments: stray"),
        (["arlbench", "configs", "seed=1", "--no-such-flag"], "--no-such-flag"),
    ],
)
def test_user_errors_exit_2_with_one_line(args, needle, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main([*args, *(["--timesteps", "64"] if args[0] == "train" else [])]) == 2
    err = capsys.readouterr().err
    assert needle in err and len(err.strip().splitlines()) == 1


@pytest.mark.e2e
def test_the_console_entry_point_prints_no_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "eqxppo", "train", "--set", "gamma=2"],
                          capture_output=True, text=True, cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip() == (
        "eqxppo: error: PPO hyperparameter `gamma` must be in [0, 1], got 2.0."
    )


def test_out_refuses_to_overwrite_a_run(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train", "--timesteps", "64", "--n-envs", "2", "--chunks", "1", "--eval-episodes",
            "1", *SMALL, "--out", str(out)]  # fmt: skip
    assert main(args) == 0
    assert main(args) == 2
    assert "--resume" in capsys.readouterr().err


def test_resume_accepts_the_runs_own_flags_and_names_conflicting_ones(tmp_path, capsys):
    out = tmp_path / "run"
    first = ["train", "--env", "CartPole-v1", "--timesteps", "128", "--n-envs", "2",
             "--chunks", "1", "--eval-episodes", "1", *SMALL, "--out", str(out)]  # fmt: skip
    assert main(first) == 0
    # The original command with --resume added (and a longer budget) just continues.
    again = [*first[:3], "--timesteps", "256", *first[5:], "--resume", str(out)]
    assert main(again) == 0
    assert int(eqxppo.load(out / "checkpoint.eqx")[1].runner_state.global_step) == 256
    capsys.readouterr()
    conflicting = ["train", "--resume", str(out), "--env", "Acrobot-v1", "--n-envs", "2",
                   "--set", "n_steps=64", "--set", "update_epochs=2"]  # fmt: skip
    assert main(conflicting) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "--env Acrobot-v1 (the run has CartPole-v1)" in err
    assert "n_steps=64 (the run has 32)" in err
    assert "n-envs" not in err and "update_epochs" not in err  # those agree

    # A run recorded before the `recurrent` key existed is a feed-forward run.
    config = json.loads((out / "config.json").read_text())
    del config["nas"]["recurrent"]
    (out / "config.json").write_text(json.dumps(config))
    assert main(["train", "--resume", str(out), "--set", "recurrent=gru"]) == 2
    assert "recurrent=gru (the run has none)" in capsys.readouterr().err


@pytest.mark.e2e
def test_an_internal_error_keeps_its_traceback_and_is_not_status_2(tmp_path):
    # A ValueError from inside training is a bug, not a user mistake.
    code = textwrap.dedent("""
        import sys
        import eqxppo.agent._ppo as facade
        def broken_train(self, *args, **kwargs):
            raise ValueError("internal shape mismatch")
        facade.PPO.train = broken_train
        from eqxppo.__main__ import main
        sys.exit(main(["train", "--timesteps", "64", "--n-envs", "2", "--chunks", "1"]))
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 1
    assert "Traceback" in proc.stderr and "internal shape mismatch" in proc.stderr


def test_train_on_another_framework(tmp_path, capsys):
    pytest.importorskip("xminigrid", reason="xminigrid not installed: pip install 'eqxppo[xland]'")
    out = tmp_path / "xland"
    assert main(["train", "--framework", "xland", "--env", "MiniGrid-Empty-5x5",
                 "--env-kwarg", "max_steps=20", "--cnn-policy", "--timesteps", "512",
                 "--n-envs", "4", "--chunks", "1", "--eval-episodes", "2", *SMALL,
                 "--out", str(out)]) == 0  # fmt: skip
    agent, state = eqxppo.load(out / "checkpoint.eqx")
    assert agent.env.make_env_args()["env_framework"] == "xland"
    assert agent.env.max_episode_steps == 20 and agent.cnn_policy
    assert json.loads((out / "config.json").read_text())["env_kwargs"] == {"max_steps": 20}
    assert "MiniGrid-Empty-5x5: final eval return" in capsys.readouterr().out


@pytest.mark.e2e
def test_counts_parse_alike_everywhere(tmp_path, capsys):
    """`1e3` is a count on the command line as in a config; `1.5` is an error."""
    out = tmp_path / "run"
    assert main(["train", "--timesteps", "1e2", "--n-envs", "2", "--chunks", "1",
                 "--eval-episodes", "1", *SMALL, "--out", str(out)]) == 0  # fmt: skip
    assert json.loads((out / "config.json").read_text())["timesteps"] == 100
    capsys.readouterr()
    assert main(["train", "--timesteps", "1.5"]) == 2
    err = capsys.readouterr().err
    assert "--timesteps" in err and "1.5" in err and len(err.strip().splitlines()) == 1


# What a new user tries on Pendulum: no clipping, a large learning rate and entropy bonus.
DIVERGING = ["--env", "Pendulum-v1", "--n-envs", "4", "--set", "learning_rate=0.1",
             "--set", "max_grad_norm=0", "--set", "ent_coef=0.5", "--set", "vf_coef=1.0",
             "--set", "clip_eps=0.5", "--set", "minibatch_size=16", "--set", "update_epochs=20",
             "--set", "n_steps=64", "--set", "hidden_size=8"]  # fmt: skip


@pytest.mark.e2e
def test_a_diverging_run_is_reported_recorded_and_exits_3(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["train", "--timesteps", "40000", "--chunks", "8", "--eval-episodes", "1",
                 *DIVERGING, "--out", str(out)])  # fmt: skip
    assert code == 3
    captured = capsys.readouterr()
    rows = _rows(out / "metrics.csv")
    flagged = [i for i, r in enumerate(rows) if r["diverged"] == "1"]
    assert flagged == [len(rows) - 1] and len(rows) < 8  # stopped at the diverging chunk
    assert f"diverged in chunk {len(rows)}" in captured.err
    assert f"to {int(rows[-1]['step']):,}" in captured.err
    assert "last finite network" in captured.out
    status = json.loads((out / "status.json").read_text())
    assert status["status"] == "diverged"
    assert status["diverged_in_chunk_ending_at_step"] == int(rows[-1]["step"])

    assert main(["train", "--resume", str(out), "--timesteps", "80000"]) == 3
    assert "nothing to resume" in capsys.readouterr().err
    assert main(["evaluate", str(out), "--episodes", "2"]) == 0
    assert "diverged" in capsys.readouterr().err


def test_a_sweep_ranks_diverged_configurations_last():
    from eqxppo._cli._sweep import rank_order

    final = np.asarray([10.0, 50.0, 30.0])
    assert rank_order([0, 1, 2], final, {0: 0, 1: 0, 2: 0}) == [1, 2, 0]
    assert rank_order([0, 1, 2], final, {0: 0, 1: 2, 2: 0}) == [2, 0, 1]


@pytest.mark.e2e
def test_a_sweep_marks_its_diverged_configurations(tmp_path, capsys):
    out = tmp_path / "sweep"
    code = main(["sweep", "--n-configs", "2", "--seeds", "2", "--timesteps", "30000",
                 "--chunks", "1", "--eval-episodes", "1", *DIVERGING[:2], *DIVERGING[4:],
                 "--out", str(out)])  # fmt: skip
    assert code == 0
    rows = _rows(out / "results.csv")
    assert [int(r["diverged_seeds"]) for r in rows] == [2, 2]
    assert "2 configuration(s) diverged" in capsys.readouterr().err


@pytest.mark.e2e
def test_version_and_help_show_defaults_keys_and_true_choices(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"eqxppo {eqxppo.__version__} (JAX ") and eqxppo.__version__ != ""
    helps = {}
    for command in ("train", "evaluate", "sweep", "tune", "arlbench"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        helps[command] = " ".join(capsys.readouterr().out.split())
    assert "--batch BATCH trials trained as one population (default: 8)" in helps["tune"]
    assert "(default: CartPole-v1)" in helps["tune"] and "(default: 100)" in helps["evaluate"]
    assert "(default: 100000)" in helps["sweep"] and "(default: 8)" in helps["arlbench"]
    from eqxppo.configspaces import GUARD_KEYS, HPO_KEYS, NAS_KEYS

    for key in (*HPO_KEYS, *NAS_KEYS, *GUARD_KEYS):  # every --set key, with its default
        assert f" {key} default " in helps["train"], key
    assert "recurrent default none {none|gru|lstm}" in helps["train"]
    # What a sweep offers it can run (a population vmaps its environments); tune takes all.
    assert "{gymnax,xland,brax}" in helps["sweep"] and "envpool" not in helps["sweep"]
    assert "{gymnax,xland,brax,envpool,gymnasium}" in helps["tune"]
    assert "one after another" in helps["tune"]


@pytest.mark.e2e
def test_config_json_records_hyperparameters_as_typed_and_reads_them_back(tmp_path):
    out = tmp_path / "run"
    assert main(["train", "--timesteps", "256", "--n-envs", "2", "--chunks", "1",
                 "--eval-episodes", "1", *SMALL, "--set", "learning_rate=3e-4", "--set",
                 "gamma=0.995", "--set", "ent_coef=0.0123", "--out", str(out)]) == 0  # fmt: skip
    text = (out / "config.json").read_text()
    hpo = json.loads(text)["hpo"]
    assert hpo["learning_rate"] == 3e-4 and "0.0003," in text  # not 0.0003000000142492354
    assert hpo["gamma"] == 0.995 and hpo["ent_coef"] == 0.0123 and hpo["gae_lambda"] == 0.95
    assert hpo["divergence_limit"] == 1e10
    # Round trip: the recorded file as --config gives the same run's settings.
    again = tmp_path / "again"
    assert main(["train", "--timesteps", "256", "--n-envs", "2", "--chunks", "1",
                 "--eval-episodes", "1", "--config", str(out / "config.json"),
                 "--out", str(again)]) == 0  # fmt: skip
    assert json.loads((again / "config.json").read_text())["hpo"] == hpo
    _, state = eqxppo.load(out / "checkpoint.eqx")
    assert float(state.runner_state.hparams.learning_rate) == float(np.float32(3e-4))


@pytest.mark.e2e
def test_tune_writes_its_incumbent_and_marks_every_trial(tmp_path, capsys):
    out = tmp_path / "study"
    space = tmp_path / "space.yaml"
    # One rate that blows up (no clipping): a diverged trial beside learning ones.
    space.write_text(
        "seed: 0\nhyperparameters:\n"
        "  hp_config.learning_rate: {type: categorical, choices: [1.0e+30, 3.0e-3]}\n"
        "  hp_config.max_grad_norm: {type: constant, value: 0.0}\n"
        "  hp_config.n_steps: {type: constant, value: 16}\n"
        "  hp_config.minibatch_size: {type: constant, value: 32}\n"
        "  hp_config.update_epochs: {type: constant, value: 1}\n"
    )
    args = ["tune", "--trials", "4", "--batch", "4", "--timesteps", "256", "--n-envs", "2",
            "--eval-episodes", "1", "--reports", "2", "--space", str(space),
            "--out", str(out)]  # fmt: skip
    assert main(args) == 0
    captured = capsys.readouterr()
    assert "trial/s" in captured.err or "s/trial" in captured.err  # the bar counts trials
    rows = _rows(out / "trials.csv")
    assert {r["status"] for r in rows} == {"complete", "diverged"}, rows
    assert all(int(r["steps"]) == int(r["budget"]) == 256 for r in rows)
    assert all(r["objective"] == "" for r in rows if r["status"] == "diverged")
    incumbent = json.loads((out / "incumbent.json").read_text())
    best = max((r for r in rows if r["status"] == "complete"), key=lambda r: float(r["objective"]))
    assert incumbent["trial"] == int(best["trial"]) and incumbent["budget"] == 256
    assert incumbent["config"]["learning_rate"] == 3e-3 and incumbent["of_trials"] == 4
    assert incumbent["objective"] == pytest.approx(float(best["objective"]), abs=1e-3)
    last = captured.out.strip().splitlines()
    assert "diverged" in last[-3] and f"trial {incumbent['trial']}" in last[-3]
    assert last[-1].startswith(f"wrote {out}/:") and "incumbent.json" in last[-1]
