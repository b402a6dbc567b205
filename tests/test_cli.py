import csv
import json
import subprocess
import sys

from eqxppo.__main__ import main


def test_train_writes_config_metrics_and_plot(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(
        ["train", "--timesteps", "1024", "--n-envs", "2", "--chunks", "2", "--eval-episodes",
         "2", "--set", "n_steps=32", "--set", "hidden_size=8", "--out", str(out)]
    )  # fmt: skip
    assert code == 0
    config = json.loads((out / "config.json").read_text())
    assert config["hpo"]["n_steps"] == 32 and config["nas"]["hidden_size"] == 8
    with open(out / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows] == [512, 1024]
    assert (out / "learning_curve.png").read_bytes()[:4] == b"\x89PNG"
    assert "final eval return" in capsys.readouterr().out


def test_user_errors_exit_nonzero_with_one_line():
    for args, needle in [
        (["--set", "learnin_rate=1"], "learnin_rate"),
        (["--set", "gamma=2"], "gamma"),
        (["--env", "NoSuchEnv-v0"], "NoSuchEnv-v0"),
    ]:
        proc = subprocess.run(
            [sys.executable, "-m", "eqxppo", "train", "--timesteps", "64", *args],
            capture_output=True,
            text=True,
        )
        assert proc.returncode == 2
        assert needle in proc.stderr and "Traceback" not in proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1
