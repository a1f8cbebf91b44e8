"""The binary (merged-class) study on MLPs: a smoke run, its summary from the parquet, bad input."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from bcpd_sim.studies.binary.mlp import load_config, run_binary, summarize


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("binary")
    cfg = load_config("smoke", overrides=["n_test=1000", "teacher_epochs=2", "student_epochs=2"])
    return out, run_binary(cfg, out)


def test_smoke_run_rows_and_summary_recompute(smoke_run):
    from bcpd_sim.studies.binary.plot import format_table, render

    out, frame = smoke_run
    loaded = pd.read_parquet(out / "results.parquet")
    pd.testing.assert_frame_equal(loaded, frame)
    # 2 losses x 2 seeds x 2 methods distilled students + 2 no-teacher students
    assert len(loaded) == 2 * 2 * 2 + 2
    assert set(loaded.method) == {"kd", "soft", "none"}
    assert loaded.groups.iloc[0] == str([[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]])
    for col in ("student_acc", "student_acc_last", "teacher_acc", "teacher_mse_to_bcpd"):
        vals = loaded[col].dropna()
        assert len(vals) and np.all((vals >= 0) & (vals <= 2))
    stored = json.loads((out / "summary.json").read_text())
    fresh = json.loads(json.dumps(summarize(loaded)))
    assert stored["table"] == fresh["table"]
    assert stored["paired_mse_minus_ce"] == fresh["paired_mse_minus_ce"]
    assert stored["bayes_acc"] == pytest.approx(fresh["bayes_acc"])
    # the paired difference is the mean of the per-seed differences
    kd = loaded[loaded.method == "kd"]
    diff = (
        kd[kd.teacher_loss == "mse"].student_acc.to_numpy()
        - kd[kd.teacher_loss == "ce"].student_acc.to_numpy()
    )
    assert fresh["paired_mse_minus_ce"]["kd"]["mean_difference"] == pytest.approx(diff.mean())
    # Paired students: under every teacher loss, teacher seed i's student has the same seed.
    for method in ("kd", "soft"):
        part = loaded[loaded.method == method]
        seeds = {
            loss: part[part.teacher_loss == loss].sort_values("teacher_seed").student_seed.tolist()
            for loss in ("ce", "mse")
        }
        assert seeds["ce"] == seeds["mse"] and len(set(seeds["ce"])) == 2
    assert "| mse | kd |" in format_table(render(out, summarize))
    assert (out / "binary.png").stat().st_size > 0


@pytest.mark.parametrize(
    "override, needle",
    [
        ("groups=[[0,1],[1,2]]", "class 1"),
        ("methods=['at']", "at"),
        ("teacher_losses=['hinge']", "hinge"),
        ("seeds=0", "seeds"),
    ],
)
def test_binary_cli_bad_input_is_one_line(override, needle, capsys):
    from bcpd_sim.cli import main

    assert main(["binary", "--preset", "smoke", "--set", override]) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and "\n" not in err


@pytest.mark.slow
def test_cnn_smoke_on_synthetic_images_with_exact_merged_p_star(tmp_path):
    """Teachers CE/MSE -> AT students on merged synthetic images; resumes without retraining."""
    from bcpd_sim.studies.binary.cnn import load_binary_data, load_cnn_config, run_binary_cnn

    cfg = load_cnn_config("cnn_smoke", overrides=["methods=['at']", "n_train=96", "n_test=32"])
    data = load_binary_data(cfg)
    assert data.num_classes == 2 and set(np.unique(data.train.labels)) <= {0, 1}
    np.testing.assert_allclose(data.test.p_star.sum(1), 1.0)
    frame = run_binary_cnn(cfg, tmp_path)
    assert len(frame) == 2 and set(frame.method) == {"at"}
    assert frame.teacher_mse_to_bcpd.notna().all() and frame.student_mse_to_bcpd.notna().all()
    before = (tmp_path / "students" / "mse-s0-at" / "metrics.csv").stat().st_mtime_ns
    again = run_binary_cnn(cfg, tmp_path)  # finished runs are not retrained
    assert (tmp_path / "students" / "mse-s0-at" / "metrics.csv").stat().st_mtime_ns == before
    pd.testing.assert_frame_equal(again, frame)
