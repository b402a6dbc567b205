"""Sweeps: configurations x seeds cut into tasks along the compiled groups, run in this
process or as tasks on a Dask cluster (`eqxppo[dask]`)."""

from ._dask import FailedTask as FailedTask
from ._dask import finished_results as finished_results
from ._dask import run_on_dask as run_on_dask
from ._dask import task_path as task_path
from ._task import SweepTask as SweepTask
from ._task import TaskResult as TaskResult
from ._task import run_task as run_task
from ._task import sweep_tasks as sweep_tasks
