"""Loggers: rows from results, CSV / TensorBoard / W&B runs read back with their own
readers, the command line's `--logger`, and the one-line missing-extra error."""

import csv
import json
import struct
import sys

import jax.random as jr
import numpy as np
import pytest

from eqxppo import PPO, make_env
from eqxppo.__main__ import main
from eqxppo._extras import MissingExtraError
from eqxppo.autorl import Trial
from eqxppo.tracking import (
    TAGS,
    CSVLogger,
    TensorBoardLogger,
    WandbLogger,
    evaluation_rows,
    evaluation_steps,
    log_population,
    log_training,
    log_trials,
    parse_loggers,
)


SMALL = {"n_steps": 16, "minibatch_size": 32, "update_epochs": 2}
NAS = {"hidden_size": 8}
SMALL_FLAGS = ["--set", "n_steps=32", "--set", "minibatch_size=64", "--set", "update_epochs=2",
               "--set", "hidden_size=8"]  # fmt: skip


def _csv(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def _tensorboard(folder):
    """TensorBoard's own reader: `{tag: [(step, value)]}` and the HParams plugin's
    hyperparameters of the run in `folder`."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    events = EventAccumulator(str(folder))
    events.Reload()
    scalars = {tag: [(e.step, e.value) for e in events.Scalars(tag)]
               for tag in events.Tags()["scalars"]}  # fmt: skip
    hparams = {}
    for content in events.PluginTagToContent("hparams").values():
        data = plugin_data_pb2.HParamsPluginData.FromString(content)
        if data.WhichOneof("data") == "session_start_info":
            for key, value in data.session_start_info.hparams.items():
                hparams[key] = getattr(value, value.WhichOneof("kind"))
    return scalars, hparams


def _wandb_records(path):
    """The records of a W&B run file (`run-<id>.wandb`): LevelDB's log format (32 KiB
    blocks of checksummed chunks) after a 7-byte header, each record a protobuf."""
    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    assert data[:4] == b":W&B"
    block, pos, chunks, records = 32768, 7, b"", []
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # a block's tail too short for a header: padding
            pos += block - pos % block
            continue
        length, kind = struct.unpack("<HB", data[pos + 4 : pos + 7])
        if length == 0 and kind == 0:
            break
        chunks += data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):  # full, or last of several
            record = wandb_internal_pb2.Record()
            record.ParseFromString(chunks)
            records.append(record)
            chunks = b""
    return records


def _wandb_run(folder):
    """A W&B offline run's name, group, config and history rows, from its run file."""
    (path,) = folder.glob("run-*.wandb")
    run, config, history = None, {}, []
    for record in _wandb_records(path):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            run = record.run
            config.update({i.key: json.loads(i.value_json) for i in run.config.update})
        elif kind == "config":
            config.update({i.key: json.loads(i.value_json) for i in record.config.update})
        elif kind == "history":
            history.append({i.key or "/".join(i.nested_key): json.loads(i.value_json)
                            for i in record.history.item})  # fmt: skip
    assert run is not None
    return run.display_name, run.run_group, config, history


@pytest.fixture(scope="module")
def env():
    return make_env("gymnax", "CartPole-v1", n_envs=4)


def test_rows_per_evaluation_with_nan_slots_ignored(env):
    agent = PPO(SMALL, env, nas_config=NAS, track_metrics=True)
    state = agent.init(jr.key(0))
    trained, result = agent.train(*state, n_total_timesteps=256, n_eval_steps=2,
                                  n_eval_episodes=3)  # fmt: skip
    end = int(trained.runner_state.global_step)
    steps = evaluation_steps(start_step=0, end_step=end, n_evaluations=2)
    assert steps == [end // 2, end]
    rows = evaluation_rows(result, steps=steps)
    rewards = np.asarray(result.eval_rewards)
    for row, returns, total in zip(rows, rewards, np.asarray(result.metrics.loss[0])):
        assert row["mean_return"] == pytest.approx(returns.mean(), abs=1e-4)
        assert row["min_return"] == returns.min() and row["max_return"] == returns.max()
        assert row["loss"] == pytest.approx(total.mean(), rel=1e-5)
    # An epoch slot a member did not take is NaN and left out of the mean.
    padded = result._replace(metrics=result.metrics._replace(
        loss=(np.concatenate([result.metrics.loss[0], np.full_like(result.metrics.loss[0],
                                                                   np.nan)], axis=2),
              result.metrics.loss[1])))  # fmt: skip
    assert evaluation_rows(padded, steps=steps)[0]["loss"] == pytest.approx(rows[0]["loss"])
    with pytest.raises(ValueError, match="equal chunks"):
        evaluation_steps(start_step=0, end_step=end + 1, n_evaluations=2)


def test_population_runs_in_tensorboard_equal_the_csv_runs(env, tmp_path):
    # Two configurations x two seeds: four runs per logger, each with its member's
    # rows and hyperparameters; TensorBoard's reader sees what the CSV files hold.
    configs = [{**SMALL, "learning_rate": lr} for lr in (1e-3, 3e-3)]
    pop = PPO.population(configs, env, seeds=(0, 7), nas_config=NAS, track_metrics=True)
    state, result = pop.train(pop.init(jr.key(0)), n_total_timesteps=256, n_eval_steps=2,
                              n_eval_episodes=3)  # fmt: skip
    end = int(pop.member(state, 0).runner_state.global_step)
    loggers = [CSVLogger(tmp_path / "csv"), TensorBoardLogger(tmp_path / "tb")]
    log_population(loggers, pop, state, result, start_step=0, end_step=end, group="sweep")
    names = sorted(p.name for p in (tmp_path / "tb" / "sweep").iterdir())
    assert names == ["config_0_seed_0", "config_0_seed_7", "config_1_seed_0", "config_1_seed_7"]
    for name in names:
        rows = _csv(tmp_path / "csv" / "sweep" / name / "metrics.csv")
        scalars, hparams = _tensorboard(tmp_path / "tb" / "sweep" / name)
        assert [s for s, _ in scalars["eval/return_mean"]] == [end // 2, end]
        for tag in ("eval/return_mean", "eval/return_min", "train/loss", "train/grad_norm"):
            np.testing.assert_allclose([v for _, v in scalars[tag]],
                                       [float(r[tag]) for r in rows], rtol=1e-6)  # fmt: skip
        i, seed = int(name.split("_")[1]), int(name.split("_")[3])
        assert hparams["seed"] == seed and hparams["hidden_size"] == 8
        assert hparams["learning_rate"] == pytest.approx(configs[i]["learning_rate"])
        final = json.loads((tmp_path / "csv" / "sweep" / name / "final.json").read_text())
        assert final["final"]["train/diverged"] == 0
    # Members differ: their runs are not copies of one another.
    first = _csv(tmp_path / "csv" / "sweep" / "config_0_seed_0" / "metrics.csv")
    other = _csv(tmp_path / "csv" / "sweep" / "config_1_seed_7" / "metrics.csv")
    assert first[-1]["train/loss"] != other[-1]["train/loss"]


def test_single_run_and_trials_write_one_run_each(env, tmp_path):
    agent = PPO(SMALL, env, nas_config=NAS, track_metrics=True)
    state, result = agent.train(*agent.init(jr.key(0)), n_total_timesteps=128, n_eval_steps=1,
                                n_eval_episodes=2)  # fmt: skip
    end = int(state.runner_state.global_step)
    log_training([CSVLogger(tmp_path)], agent, result, start_step=0, end_step=end,
                 extra_config={"seed": 0})  # fmt: skip
    config = json.loads((tmp_path / "train" / "config.json").read_text())
    assert config["n_steps"] == 16 and config["hidden_size"] == 8 and config["seed"] == 0
    assert [int(r["step"]) for r in _csv(tmp_path / "train" / "metrics.csv")] == [end]

    trials = [Trial(0, {"learning_rate": 1e-3}, [0, 1], 1000, 12.5, "complete", 3.0,
                    [5.0, 12.5], [500, 1000], 1000),
              Trial(1, {"learning_rate": 5e-1}, [0, 1], 1000, None, "diverged", 1.0,
                    [float("nan")], [1000], 1000),
              Trial(2, {"learning_rate": 1e-5}, [0, 1], 1000, 2.0, "pruned", 1.0,
                    [2.0], [500], 500),
              Trial(3, {"learning_rate": 2e-5}, [0], 900, 4.0, "complete", 1.0,
                    [3.0, 4.0])]  # fmt: skip
    log_trials([TensorBoardLogger(tmp_path / "tb")], trials, group="study")
    scalars, hparams = _tensorboard(tmp_path / "tb" / "study" / "trial_0000")
    assert scalars["eval/return_mean"] == [(500, 5.0), (1000, 12.5)]  # its learning curve
    assert scalars["eval/objective"] == [(1000, 12.5)]
    assert hparams["status"] == "complete" and hparams["seeds"] == "0,1"
    scalars, hparams = _tensorboard(tmp_path / "tb" / "study" / "trial_0001")
    assert "eval/objective" not in scalars and hparams["status"] == "diverged"
    scalars, hparams = _tensorboard(tmp_path / "tb" / "study" / "trial_0002")
    assert scalars["eval/objective"] == [(500, 2.0)]  # where it was pruned, not its budget
    assert hparams["status"] == "pruned" and hparams["steps"] == 500 and hparams["budget"] == 1000
    scalars, _ = _tensorboard(tmp_path / "tb" / "study" / "trial_0003")
    assert scalars["eval/return_mean"] == [(450, 3.0), (900, 4.0)]  # an older log: spread


def test_unknown_logger_and_missing_extra_are_one_line(tmp_path, monkeypatch, capsys):
    assert parse_loggers("csv, tensorboard") == ("csv", "tensorboard")
    with pytest.raises(ValueError, match="Unknown logger"):
        parse_loggers("csv,mlflow")
    monkeypatch.setitem(sys.modules, "tensorboardX", None)
    with pytest.raises(MissingExtraError, match=r"pip install 'eqxppo\[tensorboard\]'"):
        TensorBoardLogger(tmp_path)
    monkeypatch.setitem(sys.modules, "wandb", None)
    with pytest.raises(MissingExtraError, match=r"pip install 'eqxppo\[wandb\]'"):
        WandbLogger()
    run = str(tmp_path / "run")
    for flags, expected in ((["--logger", "wandb", "--out", run], "eqxppo[wandb]"),
                            (["--logger", "mlflow", "--out", run], "Unknown logger"),
                            (["--logger", "csv,tensorboard"], "add --out")):  # fmt: skip
        assert main(["train", "--timesteps", "64", *flags]) == 2
        err = capsys.readouterr().err.strip()
        assert expected in err and len(err.splitlines()) == 1, err


@pytest.mark.e2e
def test_train_logs_to_tensorboard_what_metrics_csv_holds_and_resumes_in_it(tmp_path):
    out = tmp_path / "run"
    common = ["--n-envs", "2", "--chunks", "2", "--eval-episodes", "2", "--logger",
              "csv,tensorboard"]  # fmt: skip
    assert main(["train", "--timesteps", "1024", *common, *SMALL_FLAGS, "--out", str(out)]) == 0
    assert main(["train", "--resume", str(out), "--timesteps", "2048", "--logger",
                 "tensorboard"]) == 0  # fmt: skip
    rows = _csv(out / "metrics.csv")
    scalars, hparams = _tensorboard(out / "tensorboard" / "run")
    assert [s for s, _ in scalars["eval/return_mean"]] == [int(r["step"]) for r in rows]
    for column, tag in TAGS.items():
        np.testing.assert_allclose([v for _, v in scalars[tag]],
                                   [float(r[column]) for r in rows], rtol=1e-6)  # fmt: skip
    assert hparams["n_steps"] == 32 and hparams["env"] == "CartPole-v1"


@pytest.mark.e2e
def test_sweep_logs_one_wandb_offline_run_per_member(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    out = tmp_path / "sweep"
    code = main(["sweep", "--n-configs", "2", "--seeds", "2", "--timesteps", "512",
                 "--n-envs", "2", "--chunks", "2", "--eval-episodes", "2", "--set",
                 "hidden_size=8", "--out", str(out), "--logger", "wandb"])  # fmt: skip
    assert code == 0
    members = _csv(out / "members.csv")
    assert len(members) == 2 * 2 * 2  # configurations x seeds x chunks
    runs = {}
    for folder in sorted((out / "wandb").glob("offline-run-*")):
        name, group, config, history = _wandb_run(folder)
        runs[name] = (group, config, history)
    assert sorted(runs) == ["config_0_seed_0", "config_0_seed_1", "config_1_seed_0",
                            "config_1_seed_1"]  # fmt: skip
    configs = json.loads((out / "sweep.json").read_text())["configs"]
    for name, (group, config, history) in runs.items():
        i, seed = int(name.split("_")[1]), int(name.split("_")[3])
        assert group == "sweep" and config["seed"] == seed
        assert config["learning_rate"] == pytest.approx(configs[i]["learning_rate"])
        rows = [r for r in members if int(r["config"]) == i and int(r["seed"]) == seed]
        assert [h["_step"] for h in history] == [int(r["step"]) for r in rows]
        np.testing.assert_allclose([h["eval/return_mean"] for h in history],
                                   [float(r["mean_return"]) for r in rows])  # fmt: skip
        np.testing.assert_allclose([h["train/entropy"] for h in history],
                                   [float(r["entropy"]) for r in rows], rtol=1e-6)  # fmt: skip


@pytest.mark.e2e
def test_a_resumed_train_continues_its_wandb_run_quietly(tmp_path, monkeypatch, capfd):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.delenv("WANDB_SILENT", raising=False)
    out = tmp_path / "run"
    common = ["--n-envs", "2", "--chunks", "2", "--eval-episodes", "2", "--logger", "wandb"]
    assert main(["train", "--timesteps", "1024", *common, *SMALL_FLAGS, "--out", str(out)]) == 0
    assert main(["train", "--resume", str(out), "--timesteps", "2048", "--logger",
                 "wandb"]) == 0  # fmt: skip
    captured = capfd.readouterr()
    assert "wandb:" not in captured.err and "wandb:" not in captured.out  # no chatter
    assert "wrote" in captured.out and "wandb/" in captured.out.splitlines()[-1]
    folders = sorted((out / "wandb").glob("offline-run-*"))
    assert len(folders) == 2
    ids = {folder.name.rsplit("-", 1)[1] for folder in folders}
    assert len(ids) == 1, ids  # one W&B run, continued
    histories = [_wandb_run(folder)[3] for folder in folders]
    rows = _csv(out / "metrics.csv")
    assert [h["_step"] for history in histories for h in history] == [
        int(r["step"]) for r in rows]  # fmt: skip
    # A new run in another folder is another W&B run.
    other = tmp_path / "other"
    assert main(["train", "--timesteps", "512", *common, *SMALL_FLAGS, "--out", str(other)]) == 0
    (folder,) = (other / "wandb").glob("offline-run-*")
    assert folder.name.rsplit("-", 1)[1] not in ids
