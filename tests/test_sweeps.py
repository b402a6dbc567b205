"""Sweeps as tasks: the compiled groups trained on a real local Dask cluster equal the
in-process sweep, a failing task is reported without losing the others, and a rerun
trains only what is unfinished."""

import csv
import sys

import numpy as np
import pytest

from eqxppo.__main__ import main
from eqxppo.sweeps import run_on_dask, run_task, sweep_tasks, task_path


pytest.importorskip("dask.distributed", reason="needs the dask extra: pip install 'eqxppo[dask]'")
# Worker processes and command lines: the newest line runs them (see noxfile.py).
pytestmark = pytest.mark.e2e

# Two values of n_steps, so the sweep has two compiled groups (two tasks).
CONFIGS = [
    {"n_steps": n, "minibatch_size": 16, "update_epochs": 1, "learning_rate": lr}
    for n, lr in ((8, 1e-3), (16, 3e-3), (8, 5e-3))
]
TASK_ARGS = {
    "seeds": (0, 1),
    "env_args": {"env_framework": "gymnax", "env_name": "CartPole-v1", "n_envs": 2},
    "nas_config": {"hidden_size": 8},
    "timesteps": 128,
    "chunks": 2,
    "eval_episodes": 2,
}


@pytest.fixture(scope="module")
def client():
    """One real local cluster (two worker processes) for the library-level tests."""
    from dask.distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as c:  # fmt: skip
        yield c


def _csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_tasks_follow_the_compiled_groups_and_equal_one_population():
    tasks = sweep_tasks(CONFIGS, **TASK_ARGS)
    assert [t.configs for t in tasks] == [(0, 2), (1,)]
    whole = run_task(sweep_tasks(CONFIGS, **TASK_ARGS, split=False)[0])
    assert whole.n_programs == 2
    for task in tasks:
        part = run_task(task)
        assert part.n_programs == 1
        for row, config in enumerate(task.configs):
            np.testing.assert_allclose(part.curves[row], whole.curves[config])


def test_the_command_line_sweep_on_a_local_cluster_matches_the_in_process_one(tmp_path):
    flags = ["sweep", "--n-configs", "3", "--seeds", "2", "--timesteps", "128",
             "--n-envs", "2", "--chunks", "2", "--eval-episodes", "2",
             "--set", "minibatch_size=16", "--set", "update_epochs=1",
             "--set", "hidden_size=8"]  # fmt: skip
    assert main([*flags, "--out", str(tmp_path / "here")]) == 0
    assert main([*flags, "--out", str(tmp_path / "cluster"), "--workers", "2"]) == 0
    for name in ("results.csv", "curves.csv"):
        here, cluster = _csv(tmp_path / "here" / name), _csv(tmp_path / "cluster" / name)
        assert [r["config"] for r in here] == [r["config"] for r in cluster] == ["0", "1", "2"]
        for a, b in zip(here, cluster):
            for key in a:
                try:
                    np.testing.assert_allclose(float(a[key]), float(b[key]), rtol=1e-5)
                except ValueError:
                    assert a[key] == b[key]
    n_tasks = len(list((tmp_path / "cluster" / "tasks").glob("*.json")))
    assert n_tasks >= 1
    assert len(list((tmp_path / "cluster" / "checkpoints").glob("*.eqx"))) == 3 * 2


def test_a_failing_task_is_reported_the_others_kept_and_a_rerun_trains_only_it(tmp_path, client):
    tasks = sweep_tasks(CONFIGS, **TASK_ARGS)
    broken = tasks[1]._replace(env_args={**TASK_ARGS["env_args"], "env_name": "NoSuchEnv-v0"})
    results, failed = run_on_dask([tasks[0], broken], tmp_path, client=client, retries=1)
    assert [r.number for r in results] == [0]
    assert [f.task.number for f in failed] == [1] and "NoSuchEnv-v0" in failed[0].error
    assert task_path(tmp_path, 0).exists() and not task_path(tmp_path, 1).exists()

    first = task_path(tmp_path, 0).read_text()
    arrived = []
    results, failed = run_on_dask(tasks, tmp_path, client=client, on_result=arrived.append)
    assert not failed and [r.number for r in results] == [0, 1]
    assert [r.number for r in arrived] == [1]  # task 0 was finished: not run again
    assert task_path(tmp_path, 0).read_text() == first


def test_sweep_tasks_read_counts_as_every_entry_point_does():
    whole = sweep_tasks(CONFIGS, **{**TASK_ARGS, "timesteps": 1.28e2, "seeds": (0.0, 1)})
    assert {(t.timesteps, t.seeds) for t in whole} == {(128, (0, 1))}
    for bad, match in [({"timesteps": 128.5}, "timesteps"), ({"seeds": (0.7,)}, "seed"),
                       ({"chunks": 0}, "chunks")]:  # fmt: skip
        with pytest.raises(ValueError, match=match):
            sweep_tasks(CONFIGS, **{**TASK_ARGS, **bad})


def test_a_missing_dask_names_the_extra(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "dask.distributed", None)
    code = main(["sweep", "--n-configs", "1", "--timesteps", "64", "--n-envs", "2",
                 "--workers", "1", "--out", str(tmp_path)])  # fmt: skip
    assert code == 2
    assert "pip install 'eqxppo[dask]'" in capsys.readouterr().err


def test_a_task_whose_worker_is_killed_is_run_again(tmp_path, client):
    import os
    import threading
    import time

    tasks = sweep_tasks(CONFIGS[:1], **TASK_ARGS)
    out = {}
    runner = threading.Thread(
        target=lambda: out.update(done=run_on_dask(tasks, tmp_path, client=client, retries=2))
    )
    runner.start()
    deadline, busy = time.monotonic() + 120, []
    while not busy and time.monotonic() < deadline:
        busy = [w for w, keys in client.processing().items() if keys]
        time.sleep(0.05)
    assert busy, "the task never started"
    try:  # the worker process dies mid-task; its nanny starts a new one
        client.run(os._exit, 1, workers=busy)
    except Exception:  # noqa: BLE001 (the call cannot return from a dead worker)
        pass
    runner.join(timeout=300)
    results, failed = out["done"]
    assert not failed and [r.number for r in results] == [0]
    assert task_path(tmp_path, 0).exists()
