"""Faults injected around every file eqxppo writes: a second process on one folder, a
crash between two writes, a torn log line, an edited file, a rerun with other settings,
and a table of bad inputs. Each asserts what the README's "Reliability" section promises:
a result is the run the user asked for, or a one-line error, never an old or lost one."""

import csv
import json
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from eqxppo import _lock
from eqxppo.__main__ import main
from eqxppo._cli import _train as train_cli
from eqxppo.autorl import StudyMismatch, read_trials, tune


# A CartPole run of three chunks that compiles in seconds.
TRAIN = ["train", "--timesteps", "3072", "--chunks", "3", "--n-envs", "4",
         "--eval-episodes", "2", "--set", "n_steps=64", "--set", "hidden_size=16",
         "--no-compilation-cache"]  # fmt: skip


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.reader(f))


def _hold(folder):
    """Another process holding `folder`'s lock, as a live eqxppo run would."""
    code = textwrap.dedent(f"""
        import sys, time
        from eqxppo._lock import folder_lock
        with folder_lock({str(folder)!r}):
            print("held", flush=True)
            time.sleep(600)
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def _kill(proc):
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stdout.close()


def test_a_folder_belongs_to_one_live_process(tmp_path, capsys):
    out = tmp_path / "run"
    holder = _hold(out)
    try:
        for argv in (["train", "--out", str(out)], ["sweep", "--n-configs", "2", "--out", str(out)],
                     ["tune", "--trials", "2", "--out", str(out)]):  # fmt: skip
            assert main(argv) == 2
            err = capsys.readouterr().err.strip()
            assert len(err.splitlines()) == 1 and "in use by another eqxppo process" in err
        with pytest.raises(_lock.FolderInUse, match=str(out)):
            tune("random", space=_space(), env_config={}, n_trials=1, batch=1,
                 timesteps=64, out=out)  # fmt: skip
    finally:
        _kill(holder)  # kill -9: the kernel releases the lock
    with _lock.folder_lock(out):
        with _lock.folder_lock(out):  # re-entrant inside one process
            pass
    assert sorted(p.name for p in out.iterdir()) == [_lock.LOCK_NAME]


def test_a_crash_between_the_row_and_the_checkpoint_loses_nothing(tmp_path, monkeypatch):
    out = tmp_path / "run"
    reference = tmp_path / "reference"
    assert main([*TRAIN, "--out", str(reference)]) == 0
    saves = []

    def crash_on_second_save(path, agent, state):
        saves.append(path)
        if len(saves) == 2:  # after chunk 2's row is written, before its checkpoint
            raise SystemExit("killed")
        return real_save(path, agent, state)

    real_save = train_cli.save
    monkeypatch.setattr(train_cli, "save", crash_on_second_save)
    (out / "stale").mkdir(parents=True)
    (out / ".checkpoint.eqx.4242.tmp").write_bytes(b"x" * 1000)  # a killed write's leftover
    with pytest.raises(SystemExit):
        main([*TRAIN, "--out", str(out)])
    monkeypatch.setattr(train_cli, "save", real_save)
    status = json.loads((out / "status.json").read_text())
    assert status == {"status": "running", "step": 1024, "diverged_in_chunk_ending_at_step": None}
    assert [r[0] for r in _rows(out / "metrics.csv")[1:]] == ["1024", "2048"]  # the row is kept
    header = _rows(out / "metrics.csv")[0]
    # The same folder with its checkpoint deleted: its rows are not a new run's to
    # overwrite, even with the same settings.
    deleted = tmp_path / "deleted"
    shutil.copytree(out, deleted)
    (deleted / "checkpoint.eqx").unlink()
    assert main([*TRAIN, "--out", str(deleted)]) == 2
    assert len(_rows(deleted / "metrics.csv")) == 3
    (out / ".checkpoint.eqx.4242.tmp").write_bytes(b"x")
    assert main(["train", "--resume", str(out), "--no-compilation-cache"]) == 0
    assert not (out / ".checkpoint.eqx.4242.tmp").exists()
    rows, expected = _rows(out / "metrics.csv"), _rows(reference / "metrics.csv")
    assert rows[0] == header == expected[0]  # one column order, before and after a resume
    # Every chunk once, each as the uninterrupted run has it (but its clock).
    steps = [r[0] for r in rows[1:]]
    assert steps == ["1024", "2048", "3072"]
    wall, sps = header.index("wall_s"), header.index("steps_per_s")
    strip = lambda table: [[v for j, v in enumerate(r) if j not in (wall, sps)] for r in table]
    assert strip(rows) == strip(expected)
    assert json.loads((out / "status.json").read_text())["status"] == "finished"


@pytest.mark.e2e
def test_killed_at_random_moments_a_run_resumes_to_every_row(tmp_path):
    """kill -9 a real `train` process at random moments of its training, resume until it
    finishes: every chunk's row is there once, as the uninterrupted run wrote it."""
    out, reference = tmp_path / "run", tmp_path / "reference"
    cache = ["--compilation-cache", str(tmp_path / "cache")]
    argv = [a for a in TRAIN if a != "--no-compilation-cache"] + cache
    # Ten chunks, two kills (`benchmarks/faults.py` kills a longer run ten times).
    argv[argv.index("3072")], argv[argv.index("3")] = "20480", "10"
    cmd = [sys.executable, "-m", "eqxppo"]
    subprocess.run([*cmd, *argv, "--out", str(reference)], check=True, capture_output=True)
    rng = np.random.default_rng(0)
    kills = 0
    for _ in range(3):
        args = ["train", "--resume", str(out), *cache] if (out / "checkpoint.eqx").exists() \
            else [*argv, "--out", str(out)]  # fmt: skip
        before = (out / "checkpoint.eqx").stat().st_mtime_ns if kills else None
        proc = subprocess.Popen([*cmd, *args], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)  # fmt: skip
        deadline = time.monotonic() + 120
        # Once this process has written a checkpoint, kill it a random moment later.
        while proc.poll() is None and time.monotonic() < deadline:
            path = out / "checkpoint.eqx"
            if path.exists() and path.stat().st_mtime_ns != before:
                time.sleep(float(rng.uniform(0.0, 0.5)))
                break
            time.sleep(0.01)
        if proc.poll() is not None:
            break
        proc.kill()
        proc.wait()
        kills += 1
    assert kills >= 2, "the run finished before it was killed twice"
    assert main(["train", "--resume", str(out), *cache]) == 0
    rows, expected = _rows(out / "metrics.csv"), _rows(reference / "metrics.csv")
    header = rows[0]
    wall, sps = header.index("wall_s"), header.index("steps_per_s")
    strip = lambda table: [[v for j, v in enumerate(r) if j not in (wall, sps)] for r in table]
    assert strip(rows) == strip(expected)  # every row once, bitwise as text
    assert not list(out.glob(".*.tmp"))


def test_train_never_writes_into_another_runs_folder(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "config.json").write_text('{"theirs": 1}')
    (out / "metrics.csv").write_text("step\n5\n")
    assert main([*TRAIN, "--out", str(out)]) == 2
    assert "other settings" in capsys.readouterr().err
    assert (out / "config.json").read_text() == '{"theirs": 1}'
    assert (out / "metrics.csv").read_text() == "step\n5\n"
    (out / "config.json").unlink()
    assert main([*TRAIN, "--out", str(out)]) == 2
    assert "another run's files (metrics.csv)" in capsys.readouterr().err
    sweep = tmp_path / "sweep"
    sweep.mkdir()
    (sweep / "sweep.json").write_text("{}")
    assert main([*TRAIN, "--out", str(sweep)]) == 2
    assert "`eqxppo sweep` run" in capsys.readouterr().err


@pytest.mark.e2e
def test_a_sweep_onto_another_sweep_is_refused(tmp_path, capsys):
    argv = ["sweep", "--n-configs", "2", "--timesteps", "512", "--n-envs", "2", "--chunks", "1",
            "--eval-episodes", "1", "--out", str(tmp_path), "--no-compilation-cache"]  # fmt: skip
    assert main(argv) == 0
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    capsys.readouterr()
    assert main([*argv, "--seed", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "other settings" in err and "configs" in err
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()} == before


def test_a_blow_up_is_divergence(tmp_path, capsys):
    out = tmp_path / "run"
    argv = [*TRAIN, "--set", "learning_rate=1e8", "--set", "max_grad_norm=0", "--out", str(out)]
    assert main(argv) == 3
    status = json.loads((out / "status.json").read_text())
    assert status["status"] == "diverged"
    with open(out / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert rows[-1]["diverged"] == "1"
    assert "divergence_limit" in capsys.readouterr().err
    # Without the bound the same run reports nothing wrong: the guard saw only finite values.
    assert main([*argv[:-1], str(tmp_path / "unbounded"), "--set", "divergence_limit=inf"]) == 0


def _space():
    from ConfigSpace import ConfigurationSpace, Float

    space = ConfigurationSpace(seed=0)
    space.add([Float("learning_rate", (1e-4, 1e-2), log=True), Float("ent_coef", (0.0, 0.1))])
    return space


STUDY = {"env_config": {"n_envs": 2, "n_eval_episodes": 2, "nas_config": {"hidden_size": 8}},
         "timesteps": 256, "n_trials": 6, "batch": 2, "reports": 2}  # fmt: skip


class _Killed(Exception):
    pass


def _killed_after(batches):
    done = []

    def on_batch(new):
        done.append(new)
        if len(done) == batches:
            raise _Killed

    return on_batch


@pytest.mark.parametrize("optimizer", ["random", "optuna", "smac"])
def test_a_killed_study_resumes_as_the_same_study(tmp_path, optimizer):
    if optimizer != "random":
        pytest.importorskip(optimizer, reason="needs eqxppo[autorl]")
    whole = tune(optimizer, space=_space(), out=tmp_path / "whole", **STUDY)
    out = tmp_path / "killed"
    with pytest.raises(_Killed):
        tune(optimizer, space=_space(), out=out, on_batch=_killed_after(1), **STUDY)
    assert len(read_trials(out / "trials.jsonl")) == 2
    trained = []
    resumed = tune(optimizer, space=_space(), out=out, on_batch=trained.extend, **STUDY)
    assert [t.number for t in trained] == [2, 3, 4, 5]  # nothing trained twice
    key = lambda trials: [(t.config, t.budget, t.objective, t.status, t.reports) for t in trials]
    assert key(resumed) == key(whole)  # the table of the uninterrupted study
    assert read_trials(out / "trials.jsonl") == resumed


def test_a_torn_last_line_is_cut_off_never_glued(tmp_path):
    out = tmp_path / "study"
    with pytest.raises(_Killed):
        tune("random", space=_space(), out=out, on_batch=_killed_after(1), **STUDY)
    log = out / "trials.jsonl"
    whole_line = log.read_text().splitlines()[-1]
    log.write_text(log.read_text() + whole_line[:25])  # a kill in the middle of a write
    assert len(read_trials(log)) == 2
    trials = tune("random", space=_space(), out=out, **STUDY)
    lines = log.read_text().splitlines()
    assert len(lines) == 6 and [json.loads(line)["number"] for line in lines] == list(range(6))
    assert read_trials(log) == trials
    # A whole last line whose newline was cut off keeps its line.
    log.write_text(log.read_text().rstrip("\n"))
    assert len(tune("random", space=_space(), out=out, **{**STUDY, "n_trials": 7})) == 7
    lines = log.read_text().splitlines()
    assert [json.loads(line)["number"] for line in lines] == list(range(7))
    # A damaged line before the last is not a torn write: say so, train nothing.
    lines[1] = "{garbage"
    log.write_text("\n".join(lines) + "\n")
    with pytest.raises(StudyMismatch, match="line 2"):
        tune("random", space=_space(), out=out, **STUDY)


def test_a_study_rerun_with_other_settings_is_refused(tmp_path):
    tune("random", space=_space(), out=tmp_path, **{**STUDY, "n_trials": 2})
    with pytest.raises(StudyMismatch, match=r"timesteps=512 \(the study has 256\)"):
        tune("random", space=_space(), out=tmp_path, **{**STUDY, "n_trials": 2, "timesteps": 512})
    # More trials continue the same study.
    assert len(tune("random", space=_space(), out=tmp_path, **{**STUDY, "n_trials": 3})) == 3


# --- bad inputs: each one line on stderr, status 2, no traceback -------------------------


def _bad_inputs(tmp_path):
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    yaml = tmp_path / "bad.yaml"
    yaml.write_text("learning_rate: [1, 2\n  : :")
    neg_log = tmp_path / "neg_log.yaml"
    neg_log.write_text(
        textwrap.dedent("""\
        hyperparameters:
          hp_config.learning_rate:
            type: uniform_float
            lower: -1.0
            upper: 0.1
            log: true
        """)
    )
    zero_choice = tmp_path / "zero_choice.yaml"
    zero_choice.write_text(
        textwrap.dedent("""\
        hyperparameters:
          hp_config.minibatch_size:
            type: categorical
            choices: [0, 64]
        """)
    )
    binary = tmp_path / "binary.json"
    binary.write_bytes(bytes(range(256)))  # not text at all
    quick = ["--trials", "1", "--timesteps", "64", "--n-envs", "2", "--no-compilation-cache"]
    return {
        "binary json config": ["train", "--config", str(binary)],
        "garbage yaml space": ["tune", *quick, "--space", str(yaml), "--out",
                               str(tmp_path / "t3")],
        "out under a file": ["train", "--out", str(a_file / "run")],
        "sweep out under a file": ["sweep", "--n-configs", "1", "--out", str(a_file / "s")],
        "tune out under a file": ["tune", "--trials", "1", "--out", str(a_file / "t")],
        "garbage yaml config": ["train", "--config", str(yaml)],
        "negative log bound": ["tune", *quick, "--space", str(neg_log), "--out",
                               str(tmp_path / "t1")],
        "choice of zero": ["tune", *quick, "--space", str(zero_choice), "--out",
                           str(tmp_path / "t2")],
        "zero timesteps": ["train", "--timesteps", "0"],
        "negative divergence limit": ["train", "--set", "divergence_limit=-1"],
        "resume nothing": ["train", "--resume", str(tmp_path / "nowhere")],
    }  # fmt: skip


BAD = ["binary json config", "garbage yaml space",
       "out under a file", "sweep out under a file", "tune out under a file",
       "garbage yaml config", "negative log bound", "choice of zero", "zero timesteps",
       "negative divergence limit", "resume nothing"]  # fmt: skip


@pytest.mark.parametrize("case", BAD)
def test_bad_inputs_are_one_line(tmp_path, capsys, case):
    assert main(_bad_inputs(tmp_path)[case]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("eqxppo: error:"), err
    assert not list(tmp_path.glob("t*/trials.jsonl"))  # nothing trained


@pytest.mark.parametrize("damage", ["config", "metrics"])
def test_an_unreadable_run_file_on_resume_is_one_line(tmp_path, capsys, damage):
    out = tmp_path / "run"
    argv = [*TRAIN, "--out", str(out)]
    argv[argv.index("3072")] = "1024"
    assert main(argv) == 0
    if damage == "config":
        (out / "config.json").write_text("{not json")
    else:
        (out / "metrics.csv").write_bytes(b"\x00\xff\xfe" * 50)
    before = (out / "checkpoint.eqx").read_bytes()
    capsys.readouterr()
    assert main(["train", "--resume", str(out), "--timesteps", "2048"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "unreadable" in err, err
    assert (out / "checkpoint.eqx").read_bytes() == before  # nothing trained


def test_a_missing_extra_is_its_message_alone(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "brax", None)
    assert main(["train", "--framework", "brax", "--env", "ant"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        "eqxppo: error: env_framework 'brax' needs 'brax', which is not installed: "
        "pip install 'eqxppo[brax]'."
    )


def test_the_lock_is_released_when_its_process_dies(tmp_path):
    _kill(_hold(tmp_path))
    deadline = time.monotonic() + 10
    while True:
        try:
            with _lock.folder_lock(tmp_path):
                break
        except _lock.FolderInUse:
            assert time.monotonic() < deadline
            time.sleep(0.05)
