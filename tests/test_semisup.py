"""Semi-supervised study: the unlabelled labels are never seen; smoke run; summary from parquet."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from bcpd_sim.studies.semisup import (
    load_config,
    plan,
    prepare_data,
    run_semisup,
    summarize,
    train_loss_cell,
)

TINY = ["n_pool=300", "n_test=200", "fractions=[0.1,0.3]", "seeds=1", "student_epochs=2"]


def test_permuting_unlabelled_labels_gives_identical_models():
    cfg = load_config("smoke", overrides=TINY)
    pool, test = prepare_data(cfg)
    grid = plan(cfg)
    n_lab = int(grid.n_labelled.max())
    rng = np.random.default_rng(0)
    y = pool.y.copy()
    y[n_lab:] = rng.permutation(y[n_lab:])
    assert (y[n_lab:] != pool.y[n_lab:]).mean() > 0.5
    assert np.array_equal(y[:n_lab], pool.y[:n_lab])
    shuffled = replace(pool, y=y)
    for loss in ("ce", "mse"):
        t1, s1, _ = train_loss_cell(cfg, loss, pool, grid)
        t2, s2, _ = train_loss_cell(cfg, loss, shuffled, grid)
        np.testing.assert_array_equal(t1.predict_logits(test.x), t2.predict_logits(test.x))
        np.testing.assert_array_equal(s1.predict_logits(test.x), s2.predict_logits(test.x))
    # ... while changing a labelled label does change the models (the test has power)
    y2 = pool.y.copy()
    y2[0] = (y2[0] + 1) % 10
    t3, s3, _ = train_loss_cell(cfg, "ce", replace(pool, y=y2), grid)
    assert not np.array_equal(t1.predict_logits(test.x), t3.predict_logits(test.x))


def test_plan_sizes_and_epochs():
    cfg = load_config("smoke", overrides=["n_pool=1000", "fractions=[0.01,0.5]", "seeds=2"])
    grid = plan(cfg)
    assert list(grid.n_labelled) == [10, 10, 500, 500]
    assert list(grid.n_unlabelled) == [990, 990, 500, 500]
    # about teacher_steps optimiser steps each, capped at max_teacher_epochs
    assert list(grid.teacher_epochs) == [10, 10, 3, 3]
    assert grid.teacher_seed.nunique() == 4 and grid.student_seed.nunique() == 4


def test_smoke_run_and_summary_recompute(tmp_path):
    from bcpd_sim.studies.semisup_plot import format_table, render

    cfg = load_config("smoke", overrides=TINY[:3])
    frame = run_semisup(cfg, tmp_path)
    loaded = pd.read_parquet(tmp_path / "results.parquet")
    pd.testing.assert_frame_equal(loaded, frame)
    assert len(loaded) == 2 * 2 * cfg.seeds
    stored = json.loads((tmp_path / "summary.json").read_text())
    fresh = json.loads(json.dumps(summarize(loaded)))
    assert stored["table"] == fresh["table"]
    assert stored["paired_mse_minus_ce"] == fresh["paired_mse_minus_ce"]
    part = loaded[loaded.fraction == 0.1]
    diff = (
        part[part.teacher_loss == "mse"].student_acc.to_numpy()
        - part[part.teacher_loss == "ce"].student_acc.to_numpy()
    )
    assert fresh["paired_mse_minus_ce"]["0.1"]["student"]["mean_difference"] == pytest.approx(
        diff.mean()
    )
    assert "| 0.3 | mse |" in format_table(render(tmp_path))


@pytest.mark.parametrize(
    "override, needle",
    [("fractions=[0.0]", "fractions"), ("fractions=[1.5]", "fractions"), ("seeds=0", "seeds")],
)
def test_semisup_cli_bad_input_is_one_line(override, needle, capsys):
    from bcpd_sim.cli import main

    assert main(["semisup", "--preset", "smoke", "--set", override]) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and "\n" not in err
