"""The GPU suite cannot rot between GPU windows: its dry run executes every step on CPU."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
import gpu_suite  # noqa: E402


def test_parse_results_merges_result_lines_and_ignores_the_rest():
    out = 'noise\nRESULT {"a": 1}\nRESULT {"b": 2, "a": 3}\nRESULT {bad\n'
    got = gpu_suite.parse_results(out)
    assert got["a"] == 3 and got["b"] == 2 and got["unparsed"] == ["RESULT {bad"]


def test_steps_cover_both_stages_with_unique_names(tmp_path):
    steps = gpu_suite.steps(tmp_path)
    names = [s.name for s in steps]
    assert len(names) == len(set(names))
    assert {s.stage for s in steps} == {0, 1}
    assert all(s.full and s.dry and s.limit_s > 0 for s in steps)


def test_suite_installs_nothing():
    text = (ROOT / "benchmarks" / "gpu_suite.sh").read_text()
    text += (ROOT / "benchmarks" / "gpu_suite.py").read_text()
    assert "pip install" not in text and "pip" not in text.split()


def test_budget_spent_skips_steps_and_reports(tmp_path, capsys):
    rc = gpu_suite.main(["--dry-run", "--out", str(tmp_path), "--budget-s", "1"])
    assert rc == 1
    assert "skipped, suite budget spent" in capsys.readouterr().out
    assert not (tmp_path / "gpu_results.jsonl").exists()


@pytest.mark.slow
def test_dry_run_every_step_succeeds_on_cpu_offline(tmp_path):
    env = {**os.environ, "OUT": str(tmp_path), "PIP_NO_INDEX": "1"}
    env["PIP_INDEX_URL"] = "http://127.0.0.1:9/unreachable"
    proc = subprocess.run(
        ["bash", "benchmarks/gpu_suite.sh", "--dry-run"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    records = [
        json.loads(line) for line in (tmp_path / "gpu_results.jsonl").read_text().splitlines()
    ]
    failed = [(r["step"], r["tail"]) for r in records if not r["ok"]]
    assert not failed, failed
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert [r["step"] for r in records] == [s.name for s in gpu_suite.steps(tmp_path)]
    assert all(r["gpu"] == "cpu (dry run)" and r["dry_run"] for r in records)
    by_step = {r["step"]: r["result"] for r in records}
    assert by_step["agreement_cpu_vs_device"]["max_abs_diff"] == 0.0
    assert by_step["ensemble_1024_pairs"]["seconds"] > 0
