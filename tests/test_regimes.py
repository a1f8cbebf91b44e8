"""Regime map: smoke run end to end, lr selection blind to the test set, summary = parquet."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from bcpd_sim import metrics
from bcpd_sim.commands import plot as plot_command
from bcpd_sim.errors import ConfigError
from bcpd_sim.regimes.config import AXES, load_config
from bcpd_sim.regimes.report import render
from bcpd_sim.regimes.stats import paired_across_draws
from bcpd_sim.regimes.study import run_regimes, torch_threads
from bcpd_sim.regimes.teachers import finite_members, select_lr, train_teachers
from bcpd_sim.regimes.world import build_mixture, make_world
from bcpd_sim.rundir import RunDirBusy, open_run_dir


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    out = tmp_path_factory.mktemp("regimes") / "run"
    run_regimes(load_config("smoke"), out)
    render(out)
    return out


@pytest.mark.slow  # shares the smoke run (about 30 s on a quiet 2-core CPU)
def test_smoke_run_writes_every_output_and_memorises(smoke):
    for name in ("results.parquet", "teachers.parquet", "summary.json", "config.toml"):
        assert (smoke / name).exists(), name
    for name in ("regimes.png", "regimes.pdf"):
        assert (smoke / name).stat().st_size > 1000, name
    res = pd.read_parquet(smoke / "results.parquet")
    for col in (
        "teacher_loss",
        "teacher_lr",
        "lr_rule",
        "teacher_train_acc",
        "teacher_acc",
        "student_acc",
        "student_acc_last",
        "mse_to_bcpd",
        "kl_to_bcpd",
        "mse_to_bcpd_heldout",
        "kl_to_bcpd_heldout",
        "teacher_overconfidence",
        "teacher_ece",
        "student_inputs",
        "student_loss",
        "draw",
        "seed",
        "mixture_seed",
        "sample_seed",
        *("family", "num_classes", "separation", "label_noise", "n_train", "width", "depth"),
        "epochs",
    ):
        assert col in res, col
    assert set(res.student_inputs) == {"teacher_train", "fresh"}
    assert set(res.lr_rule) == {"tuned", "shared"}
    assert set(res.teacher_loss) == {"ce", "mse", "mse_logits", "ls"}
    assert res.teacher_train_acc.max() >= 0.99  # at least one cell memorises its training set
    # The row's teacher distance is the one on the row's student inputs.
    on_train = res.student_inputs == "teacher_train"
    assert np.allclose(res.mse_to_bcpd[on_train], res.mse_to_bcpd_teacher_train[on_train])
    assert np.allclose(res.kl_to_bcpd[~on_train], res.kl_to_bcpd_fresh[~on_train])
    # Shared-lr rows use the shared lr; tuned rows the lr recorded as selected.
    assert np.allclose(res[res.lr_rule == "shared"].teacher_lr, 0.03)
    tuned = res[res.lr_rule == "tuned"]
    assert np.allclose(tuned.teacher_lr, tuned.tuned_lr)
    assert not list(smoke.rglob(".*.tmp"))


def _recompute(res: pd.DataFrame, loss: str = "mse") -> pd.DataFrame:
    """Gain, distance ratio and CE training accuracy per view, straight from the parquet."""
    keys = ["n_train", "width", "lr_rule", "student_inputs", "student_loss"]
    wide = res.pivot_table(
        index=[*keys, "draw", "replicate", "student_index"],
        columns="teacher_loss",
        values=["student_acc", "mse_to_bcpd", "teacher_train_acc"],
    )
    diff = (wide["student_acc"][loss] - wide["student_acc"]["ce"]).rename("d").reset_index()
    gain = diff.groupby([*keys, "draw"]).d.mean().groupby(keys).mean().rename("gain")
    dd = (wide["mse_to_bcpd"][loss] - wide["mse_to_bcpd"]["ce"]).rename("d").reset_index()
    dist = dd.groupby([*keys, "draw"]).d.mean().groupby(keys).mean().rename("dist")
    mse = wide["mse_to_bcpd"].groupby(keys).mean()
    ratio = (mse[loss] / mse["ce"]).rename("ratio")
    ce_train = wide["teacher_train_acc"]["ce"].groupby(keys).mean().rename("ce_train")
    return pd.concat([gain, dist, ratio, ce_train], axis=1)


@pytest.mark.slow  # shares the smoke run (about 30 s on a quiet 2-core CPU)
def test_summary_and_heatmaps_equal_the_parquet(smoke):
    res = pd.read_parquet(smoke / "results.parquet")
    summary = json.loads((smoke / "summary.json").read_text())
    expect = _recompute(res)
    mse_cells = [c for c in summary["cells"] if c["loss_a"] == "mse"]
    assert len(mse_cells) == len(expect) == 2 * 2 * 2 * 2 * 2
    for c in mse_cells:
        key = (c["n_train"], c["width"], c["lr_rule"], c["student_inputs"], c["student_loss"])
        row = expect.loc[key]
        assert c["student_gain"] == pytest.approx(row.gain, abs=1e-12)
        assert c["distance_ratio"] == pytest.approx(row.ratio, rel=1e-12)
        assert c["ce_train_acc"] == pytest.approx(row.ce_train, abs=1e-12)
    tuned = expect.xs("tuned", level="lr_rule")
    (sc,) = [c for c in summary["scatter"] if c["loss_a"] == "mse" and c["lr_rule"] == "tuned"]
    assert sc["n_points"] == len(tuned)
    assert sc["spearman"] == pytest.approx(sps.spearmanr(tuned.dist, tuned.gain).statistic)
    for m in summary["heatmaps"]:
        if m["loss_a"] != "mse":
            continue
        for i, yv in enumerate(m["y_values"]):
            for j, xv in enumerate(m["x_values"]):
                row = expect.loc[(xv, yv, m["lr_rule"], m["student_inputs"], m["student_loss"])]
                assert m["student_gain"][i][j] == pytest.approx(row.gain, abs=1e-12)
                assert m["distance_ratio"][i][j] == pytest.approx(row.ratio, rel=1e-12)
                assert m["ce_train_acc"][i][j] == pytest.approx(row.ce_train, abs=1e-12)


@pytest.mark.slow  # shares the smoke run (about 30 s on a quiet 2-core CPU)
def test_plot_redraws_a_regimes_run(smoke, tmp_path):
    before = json.loads((smoke / "summary.json").read_text())
    (smoke / "regimes.png").unlink()
    assert plot_command.run(argparse.Namespace(run_dir=str(smoke))) == 0
    assert (smoke / "regimes.png").exists()
    assert json.loads((smoke / "summary.json").read_text()) == before


@pytest.mark.slow  # shares the smoke run (about 30 s on a quiet 2-core CPU)
def test_rerun_resumes_from_cached_cells(smoke):
    cells = sorted((smoke / "cells").glob("*.parquet"))
    stamps = [p.stat().st_mtime_ns for p in cells]
    before = pd.read_parquet(smoke / "results.parquet")
    run_regimes(load_config("smoke"), smoke)
    assert [p.stat().st_mtime_ns for p in cells] == stamps
    pd.testing.assert_frame_equal(pd.read_parquet(smoke / "results.parquet"), before)


def test_a_locked_run_directory_is_refused(tmp_path):
    cfg = load_config("smoke")
    with open_run_dir(tmp_path / "run"):
        with pytest.raises(RunDirBusy):
            run_regimes(cfg, tmp_path / "run")


@pytest.mark.slow  # shares the smoke run
def test_a_run_directory_of_another_config_is_refused(smoke):
    cfg = load_config("smoke", overrides=["student.epochs=3"])
    with pytest.raises(ConfigError, match="different config"):
        run_regimes(cfg, smoke)


def test_lr_selection_never_reads_the_test_set():
    cfg = load_config("smoke", overrides=["axes.n_train=[200]", "axes.width=[16]"])
    point = {a: cfg.axis_values(a)[0] for a in AXES}
    world = make_world(cfg, point, 0)
    rng = np.random.default_rng(0)
    test = dataclasses.replace(world.test, y=rng.permutation(world.test.y))
    shuffled = dataclasses.replace(world, test=test)
    with torch_threads(1):
        a = train_teachers(cfg, point, 0, world)
        b = train_teachers(cfg, point, 0, shuffled)
    assert {k: v.tuned_lr for k, v in a.items()} == {k: v.tuned_lr for k, v in b.items()}
    for k in a:
        pd.testing.assert_frame_equal(a[k].members, b[k].members)


def test_select_lr_rule():
    members = pd.DataFrame(
        {
            "teacher_lr": [0.01, 0.01, 0.1, 0.1, 0.3, 0.3, 1.0],
            "val_acc": [0.5, 0.6, 0.55, 0.55, 0.55, 0.55, 0.9],
            "val_nll": [1.0, 1.0, 1.2, 1.2, 1.1, 1.1, 0.1],
        }
    )
    # 1.0 is best but not in the grid; 0.01, 0.1 and 0.3 tie on accuracy; 0.01 has the lowest NLL.
    assert select_lr(members, [0.01, 0.1, 0.3]) == 0.01
    assert select_lr(members, [0.1, 0.3]) == 0.3
    members.loc[members.teacher_lr == 0.1, "val_nll"] = 1.1
    assert select_lr(members, [0.1, 0.3]) == 0.1  # full tie: the smaller lr
    members.loc[1, ["val_acc", "val_nll"]] = np.nan  # one replicate at 0.01 diverged
    members.loc[0, "val_acc"] = 0.99
    assert select_lr(members, [0.01, 0.3]) == 0.3


def test_diverged_teachers_get_nan_metrics():
    q = np.full((3, 4, 2), 0.5)
    q[1, 2] = np.nan
    out = finite_members(metrics.accuracy, q, np.array([0, 1, 0, 1]))
    assert np.isnan(out[1]) and np.allclose(out[[0, 2]], 0.5)


def test_splits_come_from_independent_streams():
    cfg = load_config("smoke")
    point = {a: cfg.axis_values(a)[0] for a in AXES}
    bigger = load_config("smoke", overrides=["data.n_test=3000", "data.n_val=500"])
    a, b = make_world(cfg, point, 1), make_world(bigger, point, 1)
    assert np.array_equal(a.train.x, b.train.x) and np.array_equal(a.fresh.x, b.fresh.x)
    assert not np.array_equal(a.train.x, make_world(cfg, point, 0).train.x)


@pytest.mark.parametrize("family", ["paper", "warped", "multimodal"])
def test_mixture_families_have_exact_posteriors(family):
    mix = build_mixture(
        family, num_classes=3, dim=4, separation=1.0, noise_var=2.0, label_noise=0.2, seed=0
    )
    s = mix.sample(2000, seed=0)
    assert np.allclose(s.p_star.sum(1), 1.0)
    # Calibration: the labels follow p* (mean of p*[y] vs its expectation E sum p*^2).
    assert s.p_star[np.arange(2000), s.y].mean() == pytest.approx(
        (s.p_star**2).sum(1).mean(), abs=0.03
    )


def test_paired_across_draws_against_direct_formulas():
    rng = np.random.default_rng(0)
    draw = np.repeat(np.arange(4), 6)
    diff = rng.normal(0.0, 1.0, 24) + np.repeat(rng.normal(0, 2, 4), 6)
    out = paired_across_draws(diff, draw, resamples=500)
    means = np.array([diff[draw == d].mean() for d in range(4)])
    lo, hi = sps.t.interval(0.95, 3, loc=means.mean(), scale=sps.sem(means))
    assert out["mean"] == pytest.approx(means.mean())
    assert (out["ci_low"], out["ci_high"]) == pytest.approx((lo, hi))
    assert out["n_draws"] == 4 and out["n_pairs"] == 24
    within = np.sqrt(np.mean([diff[draw == d].var(ddof=1) for d in range(4)]))
    assert out["within_draw_sd"] == pytest.approx(within)


def test_paired_across_draws_recovers_variance_components():
    """Fabricated data with between-draw SD 0.5 and within-draw SD 1: estimates within 15%."""
    rng = np.random.default_rng(1)
    d, m = 400, 20
    draw = np.repeat(np.arange(d), m)
    diff = 0.3 + np.repeat(rng.normal(0, 0.5, d), m) + rng.normal(0, 1.0, d * m)
    out = paired_across_draws(diff, draw, resamples=200)
    assert out["between_draw_sd"] == pytest.approx(0.5, rel=0.15)
    assert out["within_draw_sd"] == pytest.approx(1.0, rel=0.05)
    assert out["ci_low"] < 0.3 < out["ci_high"]


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--set", "axes.depth=[1,2]"], "axes.depth"),
        (["--set", "map.x=colour"], "map.x"),
        (["--set", "teacher.losses=['mse','ls']"], "teacher.losses"),
        (["--set", "student.inputs=['test']"], "student.inputs"),
        (["--set", "axes.label_noise=[0.95]"], "axes.label_noise"),
        (["--set", "teacher.lr_grid=[0.1,-1.0]"], "teacher.lr_grid"),
        (["--set", "axes.family=['paper','moons']"], "axes.family"),
        (["--set", "axes.width=[16,100000000]"], "axes.width"),
    ],
)
def test_bad_configs_are_refused_naming_the_key(args, fragment):
    with pytest.raises(ConfigError, match=fragment.replace(".", r"\.")):
        load_config("smoke", overrides=[a for a in args if a != "--set"])


def test_cli_bad_config_exits_2_with_one_line(tmp_path):
    env = dict(os.environ, BCPD_SIM_PROGRESS="0")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "bcpd_sim",
            "regimes",
            "--set",
            "map.y=n_train",
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and "map" in proc.stderr


@pytest.mark.parametrize("preset", ["smoke", "quick", "large"])
def test_presets_validate_and_round_trip(preset, tmp_path):
    cfg = load_config(preset)
    path = tmp_path / "c.toml"
    path.write_text(cfg.to_toml())
    assert load_config(preset, file=path) == cfg
