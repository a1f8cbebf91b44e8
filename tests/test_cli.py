"""The command line: version, info, theorem1 outputs, and one-line errors with exit code 2."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest

from bcpd_sim import __version__
from bcpd_sim.cli import main


def run_cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "bcpd_sim", *args], capture_output=True, text=True, timeout=300
    )


def test_version_and_info():
    out = run_cli("--version")
    assert out.returncode == 0 and __version__ in out.stdout
    info = run_cli("info")
    assert info.returncode == 0
    for key in ("torch", "numpy", "device", "torch_threads", "python"):
        assert key in info.stdout


def test_theorem1_writes_table_summary_and_figure(tmp_path, capsys):
    code = main(["theorem1", "--n", "4000", "--train-n", "400", "--out", str(tmp_path)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "bcpd" in printed and "Rank agreement" in printed
    table = pd.read_csv(tmp_path / "theorem1.csv")
    assert set(table.loss) == {"mse", "ce"}
    assert {"empirical_risk", "predicted_risk", "residual_z", "mixture", "seed"} <= set(
        table.columns
    )
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["max_abs_residual_z_honest"] < 4.5
    assert (tmp_path / "theorem1.png").stat().st_size > 10_000
    assert (tmp_path / "theorem1.pdf").exists()
    assert not list(tmp_path.glob(".*.tmp"))  # atomic writes leave no temporaries


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["theorem1", "--n", "1"], "n (--n) must be >= 2, got 1"),
        (["theorem1", "--mixture", "nope"], "invalid choice"),
        (["theorem1", "--n", "ten"], "invalid int value"),
        (["nope"], "invalid choice"),
        (["theorem1", "--train-n", "0"], "train_n (--train-n) must be >= 10, got 0"),
        (["plot", "/nonexistent-run-dir"], "has no results.parquet"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, fragment, tmp_path):
    out = run_cli(*args, *(["--out", str(tmp_path)] if args[0] == "theorem1" else []))
    assert out.returncode == 2
    assert fragment in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    assert "Traceback" not in out.stderr


def test_importing_main_module_does_not_run_the_cli(capsys):
    import importlib

    import bcpd_sim.__main__ as entry

    importlib.reload(entry)  # would raise SystemExit if it ran the CLI
    assert capsys.readouterr().out == ""
