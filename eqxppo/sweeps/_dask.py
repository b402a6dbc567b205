"""Sweep tasks on a Dask cluster: local worker processes by default, a cluster by address.

Dask is the engine: it places tasks on workers, retries a task whose worker died or
whose attempt raised (`retries`), and hands results back. eqxppo adds only the
bookkeeping a sweep needs: each finished task's result is written to
`out_dir/tasks/<number>.json` as it arrives, tasks already written are not run again
(a killed sweep restarted on the same folder loses no finished group), and a task that
fails after its retries is reported with its error while the others go on.

Why Dask rather than Ray: a sweep's tasks are independent, coarse (a compilation and
seconds to minutes of training each) and need no actors or object store; Dask's
`distributed` is pure Python, installs on every Python and JAX line eqxppo supports,
starts a local cluster in a second, and is the engine SMAC already uses for parallel
trials. Any Dask cluster works by address (`dask scheduler` / `dask worker`, SLURM or
Kubernetes deployments).
"""

import os
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from .._cores import cpu_cores
from .._extras import require
from ._task import SweepTask, TaskResult, run_task


class FailedTask(NamedTuple):
    """A task that still failed after its retries, with the error it raised."""

    task: SweepTask
    error: str


def task_path(out_dir: str | os.PathLike, number: int) -> Path:
    """Where task `number`'s result lives: `out_dir/tasks/<number>.json`."""
    return Path(out_dir) / "tasks" / f"{number}.json"


def _write_result(out_dir: str | os.PathLike, result: TaskResult) -> None:
    path = task_path(out_dir, result.number)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(result.to_json())
    os.replace(tmp, path)  # atomic: a result file is always whole


def finished_results(
    out_dir: str | os.PathLike, tasks: Sequence[SweepTask]
) -> dict[int, TaskResult]:
    """The results already written for `tasks` (by task number)."""
    done = {}
    for task in tasks:
        path = task_path(out_dir, task.number)
        if path.exists():
            result = TaskResult.from_json(path.read_text())
            if result.configs == task.configs:
                done[task.number] = result
    return done


def run_on_dask(
    tasks: Sequence[SweepTask],
    out_dir: str | os.PathLike,
    *,
    address: str | None = None,
    workers: int | None = None,
    client: Any | None = None,
    retries: int = 2,
    compilation_cache: str | os.PathLike | None = None,
    on_result: Callable[[TaskResult], None] | None = None,
) -> tuple[list[TaskResult], list[FailedTask]]:
    """Run the tasks not yet finished in `out_dir` on a Dask cluster.

    **Arguments:**

    - `tasks`: from `sweep_tasks`.
    - `out_dir`: results go to `out_dir/tasks/`, members' checkpoints to
      `out_dir/checkpoints/` (written by the workers: on a cluster, a folder they share).
    - `address`: a running scheduler (`"tcp://host:8786"`); default: a local cluster.
    - `workers`: worker processes of the local cluster (default: one per CPU core, each
      single-threaded; XLA uses the cores inside each).
    - `client`: a `dask.distributed.Client` to use instead (left open afterwards).
    - `retries`: attempts after the first, for a task whose worker died or that raised.
    - `compilation_cache`: a folder every worker enables, so a retried task or a task of
      the same structure loads the program instead of compiling it.
    - `on_result`: called with each result as it arrives (progress).

    **Returns:**

    `(results, failed)`: the results of all tasks that finished (earlier runs included),
    ordered by task number, and the tasks that failed after their retries.

    **Raises:**

    `MissingExtraError` without the `dask` extra.
    """
    distributed = require("dask.distributed", "dask", what="A sweep on a Dask cluster")
    done = finished_results(out_dir, tasks)
    todo = [task for task in tasks if task.number not in done]
    failed: list[FailedTask] = []
    cache = None if compilation_cache is None else str(compilation_cache)
    if todo:
        # A fresh key per submission: Dask answers a key it has seen with its old result
        # (a rerun in the same client would get the earlier failure back).
        with _client(distributed, address, workers, client) as active:
            futures = {
                active.submit(
                    run_task, task, str(out_dir), compilation_cache=cache,
                    retries=retries, pure=False,
                    key=f"eqxppo-task-{task.number}-{uuid.uuid4().hex}",
                ): task
                for task in todo
            }  # fmt: skip
            for future in distributed.as_completed(futures):
                task = futures[future]
                try:
                    result = future.result()
                except Exception as error:  # reported, and the sweep goes on
                    failed.append(FailedTask(task, f"{type(error).__name__}: {error}"))
                    continue
                _write_result(out_dir, result)
                done[result.number] = result
                if on_result is not None:
                    on_result(result)
    return [done[i] for i in sorted(done)], sorted(failed, key=lambda f: f.task.number)


class _client:
    """A client of the cluster at `address`, or of a local cluster it starts and stops."""

    def __init__(
        self, distributed: Any, address: str | None, workers: int | None, client: Any
    ) -> None:
        self.distributed, self.address, self.workers = distributed, address, workers
        self.cluster, self.given = None, client

    def __enter__(self) -> Any:
        if self.given is not None:
            self.client = self.given
        elif self.address is not None:
            self.client = self.distributed.Client(self.address)
        else:
            n = self.workers or cpu_cores()
            self.cluster = self.distributed.LocalCluster(
                n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None
            )
            self.client = self.distributed.Client(self.cluster)
        return self.client

    def __exit__(self, *exc: Any) -> None:
        if self.given is not None:
            return
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()
