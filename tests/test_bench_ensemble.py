"""The CPU ensemble benchmark runs end to end at a tiny size and reports its limit and breakdown
(no timing is asserted, only that every number is there and consistent)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
import bench_ensemble  # noqa: E402
import torch  # noqa: E402


def test_flop_counts_of_the_paper_mlp():
    sizes = [30, 128, 128, 10]
    # forward 3 matmuls, weight gradients 3, input gradients of layers 2 and 3
    per_sample = 3 * (30 * 128 + 128 * 128 + 128 * 10) - 30 * 128
    assert bench_ensemble.step_flops(64, 32, sizes) == 2 * 64 * 32 * per_sample
    assert bench_ensemble.val_flops(64, 5000, sizes) == 2 * 64 * 5000 * 21504


def test_cpu_benchmark_reports_the_limit_and_breakdown(capsys):
    args = ["--device", "cpu", "--members", "3", "--epochs", "1", "--n-train", "100"]
    args += ["--n-val", "40", "--ref-members", "1", "--threads", "1"]
    threads = torch.get_num_threads()
    try:
        assert bench_ensemble.main(args) == 0
    finally:
        torch.set_num_threads(threads)
    out = capsys.readouterr().out
    assert "of the limit" in out and "where one epoch goes" in out
    result = json.loads(out.strip().splitlines()[-1].removeprefix("RESULT "))
    assert result["members"] == 3 and result["threads"] == 1
    for key in ("speedup", "achieved_gflops", "limit_gflops", "fraction_of_limit"):
        assert result[key] > 0
    assert result["limit_seconds"] > 0 and result["limit_step_ms"] > 0
    assert set(result["breakdown"]) >= {"gemms_ms", "update_ms", "step_ms", "validation_s"}
