"""`benchmarks/gpu.py`, the script a person with a GPU runs, at its smoke size on the CPU:
every row trains what it says and reports what it trained."""

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest

from eqxppo.ppo._update import updates_per_chunk


SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "gpu.py"
# A row of each kind (the 4,096-member population is the 1,024-member row's code at
# another size; brax's halfcheetah compiles for minutes on a CPU).
ROWS = ["cartpole-single", "cartpole-pop-1024", "minatar-breakout-cnn-64"]


def _load(monkeypatch: pytest.MonkeyPatch) -> Any:
    """The script as a module, with its folder on `sys.path` as when it runs."""
    monkeypatch.syspath_prepend(str(SCRIPT.parent))
    spec = importlib.util.spec_from_file_location("gpu_script", SCRIPT)
    assert spec is not None and spec.loader is not None
    gpu = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gpu)
    return gpu


@pytest.mark.e2e
def test_the_device_script_runs_every_row_at_its_smoke_size(capsys, monkeypatch):
    gpu = _load(monkeypatch)
    assert gpu.main(["--smoke", "--rows", *ROWS]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert lines[0]["row"] == "machine" and lines[0]["backend"] == "cpu"
    rows = {row["row"]: row for row in lines[1:]}
    assert sorted(rows) == sorted(ROWS)
    for name, row in rows.items():
        assert "skipped" not in row, row
        spec_row = gpu.ROWS[name]
        members, steps = spec_row.members[1], spec_row.steps[1]
        assert row["members"] == members
        # Real members only, each with ARLBench's budget rule (whole updates per chunk).
        n_envs, n_steps = spec_row.n_envs[1], 128
        updates = 10 * updates_per_chunk(steps, n_envs, n_steps, 10)
        assert row["env_steps"] == members * updates * n_envs * n_steps, row
        assert row["steps_per_s"] > 0 and row["diverged_members"] == 0
        if not spec_row.single:
            assert len(row["estimated_bytes_per_member"]) == 1


def test_a_row_projected_past_the_budget_is_skipped_not_run(monkeypatch):
    gpu = _load(monkeypatch)
    done = [{"row": "cartpole-pop-1024", "env": "CartPole-v1", "compile_s": 10.0,
             "steps_per_s": 1_000_000}]  # fmt: skip
    # 4096 members x 500k steps at 1M steps/s: about 2,000 s.
    assert gpu._projected_s("cartpole-pop-4096", False, done) == pytest.approx(10 + 2048)
    assert gpu._projected_s("minatar-breakout-cnn-64", False, done) is None
