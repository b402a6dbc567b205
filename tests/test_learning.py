"""Learning runs (slow): `nox -s slow` or `pytest -m slow`."""

import sys
from pathlib import Path

import pytest


sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from learning import run  # noqa: E402


pytestmark = pytest.mark.slow


def test_cartpole_default_config_reaches_the_cap():
    out = run("CartPole-v1")
    print(out)
    assert out["best_eval_return"] == 500.0
    assert out["final_eval_return"] >= 475.0


def test_acrobot_learns_clearly():
    out = run("Acrobot-v1")
    print(out)
    assert out["final_eval_return"] > -120.0  # random policy: -500


def test_pendulum_learns_clearly():
    out = run("Pendulum-v1")
    print(out)
    assert out["final_eval_return"] > -400.0  # random policy: about -1200
