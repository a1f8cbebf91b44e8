"""Figure 1: end to end, resumable after a kill, correct statistics, sensible students, bad configs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from bcpd_sim.cli import main
from bcpd_sim.figure1 import load_config, run_figure1
from bcpd_sim.figure1 import targets as T
from bcpd_sim.figure1.stats import correlation, paired_difference
from bcpd_sim.mixtures import make_mixture

VOLATILE = ["cell_seconds", "git_commit"]


def cli(*args, timeout=600):
    env = dict(os.environ, BCPD_SIM_PROGRESS="0")
    return subprocess.run(
        [sys.executable, "-m", "bcpd_sim", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("smoke") / "run"
    assert main(["figure1", "--preset", "smoke", "--out", str(out)]) == 0
    return out


def test_smoke_run_writes_every_output(smoke_run):
    for name in (
        "results.parquet",
        "summary.json",
        "figure1.png",
        "figure1.pdf",
        "paired.png",
        "config.toml",
        "correlations.csv",
        "partial_correlations.csv",
    ):
        assert (smoke_run / name).exists(), name
    results = pd.read_parquet(smoke_run / "results.parquet")
    for col in (
        "student_acc",
        "teacher_acc",
        "teacher_loss",
        "mse_to_bcpd",
        "kl_to_bcpd",
        "ce_to_bcpd",
        "seed",
        "student_seed",
        "mixture",
        "student_epochs",
        "torch_version",
        "git_commit",
        "cell_seconds",
        "student_selected_epoch",
        "student_acc_last",
        "draw",
        "mixture_seed",
        "sample_seed",
        "sampling_scheme",
        "ce_to_bcpd_clip10",
    ):
        assert col in results, col
    assert set(results.study) == {"simulated", "trained"}
    assert set(results[results.study == "trained"].teacher_loss) == {"ce", "mse"}
    assert set(results[results.study == "trained"].teacher_selection) == {"best_val_acc"}
    assert results.student_acc.between(0, 1).all()
    assert not list(smoke_run.rglob(".*.tmp"))


def test_summary_correlations_match_results(smoke_run):
    """Per-group, per-draw and partial correlations in summary.json, recomputed from the parquet
    independently (scipy, and rank residuals for the partial ones)."""
    results = pd.read_parquet(smoke_run / "results.parquet")
    summary = json.loads((smoke_run / "summary.json").read_text())
    assert summary["n_draws"] == 2 and summary["sampling_scheme"] == 2
    groups = {
        "simulated: all families": results.study == "simulated",
        "simulated: eta-mix": results.teacher_kind.isin(["eta_uniform", "eta_low"]),
        "trained: ce": results.teacher_loss == "ce",
        "trained: mse": results.teacher_loss == "mse",
        "trained: ce+mse": results.teacher_loss.isin(["ce", "mse"]),
    }
    scipy_fn = {"spearman": sps.spearmanr, "pearson": sps.pearsonr, "kendall": sps.kendalltau}
    seen = set()
    for row in summary["correlations"]:
        if row["group"] not in groups:
            continue
        part = results[groups[row["group"]] & (results.draw == row["draw"])]
        x, y = part[row["distance"]].to_numpy(), part.student_acc.to_numpy()
        expected = scipy_fn[row["method"]](x, y).statistic
        if row["r"] is None:
            assert not np.isfinite(expected) or np.ptp(x) == 0
            continue
        assert row["r"] == pytest.approx(expected, abs=1e-12)
        assert row["ci_low"] <= row["ci_high"]
        seen.add(row["group"])
    assert seen == set(groups)
    across = pd.DataFrame(summary["correlations_across_draws"])
    per_draw = pd.DataFrame(summary["correlations"])
    for row in across.itertuples():
        draws = per_draw[
            (per_draw.group == row.group)
            & (per_draw.distance == row.distance)
            & (per_draw.method == row.method)
        ]
        assert row.n_draws == draws.r.notna().sum()
        if row.n_draws:
            assert row.mean == pytest.approx(draws.r.mean(), abs=1e-12)
    checked = 0
    for row in summary["partial_correlations"]:
        if row["group"] not in groups or row["r"] is None:
            continue
        part = results[groups[row["group"]] & (results.draw == row["draw"])]
        acc, mse, kl = (part[c].to_numpy() for c in ("student_acc", "mse_to_bcpd", "kl_to_bcpd"))
        x, z = (mse, kl) if row["statistic"] == "mse_given_kl" else (kl, mse)
        if row["statistic"] == "mse_vs_kl":
            assert row["r"] == pytest.approx(sps.spearmanr(mse, kl).statistic, abs=1e-12)
            continue
        assert row["r"] == pytest.approx(_partial_by_residuals(acc, x, z), abs=1e-9)
        checked += 1
    assert checked >= 4
    pair = summary["paired_across_draws"]["mse_minus_ce"]
    tr = results[results.study == "trained"].sort_values(["draw", "teacher_seed", "student_seed"])
    diff = (
        tr[tr.teacher_loss == "mse"].student_acc.to_numpy()
        - tr[tr.teacher_loss == "ce"].student_acc.to_numpy()
    )
    draws = tr[tr.teacher_loss == "mse"].draw.to_numpy()
    per = [diff[draws == d].mean() for d in (0, 1)]
    s = pair["student_acc"]
    assert s["per_draw"] == pytest.approx(per, abs=1e-12)
    assert s["mean"] == pytest.approx(np.mean(per), abs=1e-12)
    half = sps.t.ppf(0.975, 1) * np.std(per, ddof=1) / np.sqrt(2)
    assert (s["ci_low"], s["ci_high"]) == pytest.approx((np.mean(per) - half, np.mean(per) + half))
    assert s["n_draws"] == 2 and s["within_draw_sd"] > 0 and s["between_draw_sd"] >= 0
    assert {"mean_mse", "mean_ce"} <= set(s)
    for row in results.itertuples():  # every row says which draw of which data it came from
        assert row.sample_seed == 1 + row.draw and row.mixture_seed == 0


def _partial_by_residuals(x, y, z):
    """Independent computation: regress the ranks of x and of y on the ranks of z, correlate."""
    rx, ry, rz = (sps.rankdata(v) for v in (x, y, z))
    design = np.column_stack([np.ones_like(rz), rz])
    res_x = rx - design @ np.linalg.lstsq(design, rx, rcond=None)[0]
    res_y = ry - design @ np.linalg.lstsq(design, ry, rcond=None)[0]
    return float(np.corrcoef(res_x, res_y)[0, 1])


def test_plot_redraws_without_training(smoke_run, tmp_path):
    (smoke_run / "figure1.png").unlink()
    start = time.perf_counter()
    assert main(["plot", str(smoke_run)]) == 0
    assert (smoke_run / "figure1.png").stat().st_size > 20_000
    assert time.perf_counter() - start < 120  # generous: it trains nothing


def test_killed_run_resumes_to_the_same_results(smoke_run, tmp_path):
    out = tmp_path / "killed"
    env = dict(os.environ, BCPD_SIM_PROGRESS="0")
    proc = subprocess.Popen(
        [sys.executable, "-m", "bcpd_sim", "figure1", "--preset", "smoke", "--out", str(out)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 300
    while time.time() < deadline and not list((out / "cells").glob("*.parquet")):
        time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    finished = sorted(p.name for p in (out / "cells").glob("*.parquet"))
    assert finished, "the run was killed before finishing a cell"
    assert not (out / "results.parquet").exists()
    done = cli("figure1", "--preset", "smoke", "--out", str(out))
    assert done.returncode == 0, done.stderr
    a = pd.read_parquet(out / "results.parquet").drop(columns=VOLATILE)
    b = pd.read_parquet(smoke_run / "results.parquet").drop(columns=VOLATILE)
    pd.testing.assert_frame_equal(a, b)


def test_old_run_directories_are_read_as_they_are_and_never_resumed(smoke_run, tmp_path):
    from bcpd_sim.figure1.study import load_run

    old = tmp_path / "old"
    (old / "cells").mkdir(parents=True)
    frame = pd.read_parquet(smoke_run / "results.parquet").drop(columns=["draw", "sampling_scheme"])
    frame = frame[frame.sample_seed == 1]
    frame.to_parquet(old / "results.parquet")
    frame.to_parquet(old / "cells" / "simulated-eta_uniform.parquet")
    text = (smoke_run / "config.toml").read_text()
    (old / "config.toml").write_text(text.replace("draws = 2\n", ""))
    cfg, results = load_run(old)
    assert cfg.data.draws == 1 and set(results.draw) == {0} and set(results.sampling_scheme) == {1}
    out = cli("figure1", "--preset", "smoke", "--out", str(old))
    assert out.returncode == 2 and "sampling scheme 1" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_student_on_bcpd_beats_student_on_hard_labels(tmp_path):
    """eta = 0 (p* itself) vs eta = 1 (one-hot labels), 4 students each, fixed seeds."""
    cfg = load_config(
        "smoke",
        overrides=[
            "data.n_train=1000",
            "data.n_val=500",
            "data.n_test=5000",
            "train.epochs=15",
            "train.optimizer='adam'",
            "train.lr=2e-3",
            "train.width=[64, 64]",
            "simulated.eta_uniform=0",
            "simulated.eta_low=0",
            "simulated.temperatures=[]",
            "simulated.label_smoothing=[]",
            "simulated.etas=[0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0]",
            "trained.enabled=false",
        ],
    )
    results = run_figure1(cfg, tmp_path / "eta")
    on_bcpd = results[results.target_param == 0.0].student_acc.mean()
    on_labels = results[results.target_param == 1.0].student_acc.mean()
    # Tolerance: one binomial standard error of a mean over 4 x 5000 test points is ~0.35 points.
    assert on_bcpd >= on_labels - 0.005, (on_bcpd, on_labels)


def test_target_constructions_and_their_distances():
    mix = make_mixture("paper")
    s = mix.sample(2000, seed=0)
    onehot = np.eye(10)[s.y]
    for eta in (0.0, 0.3, 1.0):
        p = T.eta_mix(s.y, s.p_star, eta)
        np.testing.assert_allclose(p.sum(1), 1)
        # ||p_tar - p*||^2 = eta^2 ||e_y - p*||^2, exactly
        np.testing.assert_allclose(
            ((p - s.p_star) ** 2).sum(1), eta**2 * ((onehot - s.p_star) ** 2).sum(1), atol=1e-12
        )
    np.testing.assert_allclose(T.tempered(s.p_star, 1.0), s.p_star, atol=1e-12)
    sharp = T.tempered(s.p_star, 0.5)
    np.testing.assert_allclose(sharp, s.p_star**2 / (s.p_star**2).sum(1, keepdims=True), atol=1e-12)
    ls = T.label_smoothing(s.y, 10, 0.2)
    np.testing.assert_allclose(ls[np.arange(len(s.y)), s.y], 0.82)
    for level in (0.01, 0.1):
        one = T.wrong_mass(s.p_star, level, spread=False, rng=np.random.default_rng(0))
        spread = T.wrong_mass(s.p_star, level, spread=True, rng=np.random.default_rng(0))
        for q in (one, spread):  # on the simplex, at exactly the requested mean MSE
            assert np.all(q >= 0)
            np.testing.assert_allclose(q.sum(1), 1)
            assert ((q - s.p_star) ** 2).sum(1).mean() == pytest.approx(level, rel=1e-9)
        moved = (one - s.p_star) > 1e-15
        assert np.all(moved.sum(1) == 1)  # one wrong class gains ...
        assert np.all(moved[np.arange(len(s.y)), s.p_star.argmax(1)] == 0)
        assert np.all(((spread - s.p_star) > 0).sum(1) == 9)  # ... or all K - 1 of them
    rng = np.random.default_rng(0)
    for fn in (
        lambda: T.dirichlet_noise(s.p_star, 0.3, rng),
        lambda: T.gaussian_noise(s.p_star, 0.1, rng),
    ):
        q = fn()
        assert np.all(q >= 0)
        np.testing.assert_allclose(q.sum(1), 1)


@pytest.mark.parametrize("mixture", ["paper", "noisy_symmetric", "warped"])
def test_changing_n_val_or_n_test_leaves_the_training_data_bit_identical(mixture):
    from bcpd_sim.figure1.study import prepare_data

    base = ["data.n_train=400", "data.n_val=200", "data.n_test=500", f"data.mixture='{mixture}'"]
    ref = prepare_data(load_config("smoke", overrides=base))
    for change in ("data.n_test=2000", "data.n_val=50"):
        other = prepare_data(load_config("smoke", overrides=[*base, change]))
        assert np.array_equal(other.train.x, ref.train.x)
        assert np.array_equal(other.train.y, ref.train.y)
        assert np.array_equal(other.train.p_star, ref.train.p_star)
    assert np.array_equal(other.test.x, ref.test.x)  # n_val changed: the test split is untouched
    # draws are fresh samples; redraw_mixture also draws fresh class means
    second = prepare_data(load_config("smoke", overrides=base), draw=1)
    assert (second.sample_seed, second.mixture_seed) == (2, 0)
    assert not np.array_equal(second.train.x, ref.train.x)
    redrawn = prepare_data(load_config("smoke", overrides=[*base, "data.redraw_mixture=true"]), 1)
    assert redrawn.mixture_seed == 1 and np.array_equal(redrawn.train.y, second.train.y)
    assert not np.array_equal(redrawn.train.p_star, second.train.p_star)


def test_statistics_against_scipy():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=50), rng.normal(size=50)
    assert correlation(x, y, "spearman") == pytest.approx(sps.spearmanr(x, y).statistic)
    assert correlation(x, y, "kendall") == pytest.approx(sps.kendalltau(x, y).statistic)
    assert np.isnan(correlation(np.ones(5), y[:5], "pearson"))
    a, b = rng.normal(1.0, 1, 40), rng.normal(0.0, 1, 40)
    res = paired_difference(a, b, resamples=500)
    assert res["mean_difference"] == pytest.approx((a - b).mean())
    assert res["ci_low"] < res["mean_difference"] < res["ci_high"]
    assert res["wilcoxon_p"] == pytest.approx(sps.wilcoxon(a - b).pvalue)


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--preset", "nope"], "invalid choice"),
        (["--set", "simulated.bogus=1"], "unknown config key 'simulated.bogus'"),
        (["--set", "simulated.etas=[-0.5]"], "simulated.etas[0] must lie in [0.0, 1.0]"),
        (["--set", "trained.losses=[]"], "trained.losses must not be empty"),
        (["--set", "trained.epochs=[]"], "trained.epochs must not be empty"),
        (["--set", "trained.losses=['xentropy']"], "valid: ce, mse"),
        (["--set", "train.select='test_acc'"], "unknown train.select"),
        (["--set", "trained.teacher_select='best'"], "unknown trained.teacher_select"),
        (
            ["--set", "simulated.enabled=false", "--set", "trained.enabled=false"],
            "both studies are disabled",
        ),
        (["--set", "noequals"], "key=value"),
        (["--config", "/nonexistent.toml"], "does not exist"),
    ],
)
def test_bad_configs_exit_2_with_one_line(args, fragment, tmp_path):
    out = cli("figure1", *args, "--out", str(tmp_path / "x"))
    assert out.returncode == 2, out.stderr
    assert fragment in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_config_file_and_changed_config_in_same_dir(tmp_path, smoke_run):
    cfg_file = tmp_path / "c.toml"
    cfg_file.write_text("[trained]\nseeds = 3\n[data]\nmixture = 'warped'\n")
    cfg = load_config("smoke", file=cfg_file, overrides=["trained.seeds=5"])
    assert cfg.trained.seeds == 5 and cfg.data.mixture == "warped"
    bad = tmp_path / "bad.toml"
    bad.write_text("[trained\n")
    with pytest.raises(ValueError, match="not valid TOML"):
        load_config("smoke", file=bad)
    out = cli("figure1", "--preset", "smoke", "--set", "trained.seeds=4", "--out", str(smoke_run))
    assert out.returncode == 2 and "different config" in out.stderr


@pytest.mark.parametrize("preset", ["smoke", "quick", "paper", "large"])
def test_every_preset_is_valid_and_round_trips_through_toml(preset):
    from bcpd_sim.config import tomllib  # tomllib, or tomli on Python 3.10
    from bcpd_sim.figure1.config import build

    cfg = load_config(preset)
    assert cfg.preset == preset
    assert build(tomllib.loads(cfg.to_toml())) == cfg


def test_paper_preset_is_the_papers_setting():
    cfg = load_config("paper")
    d, t, s, r = cfg.data, cfg.train, cfg.simulated, cfg.trained
    assert (d.mixture, d.n_train, d.n_val, d.n_test) == ("paper", 5000, 5000, 90000)
    assert (t.width, t.lr, t.momentum, t.batch_size, t.epochs, t.select) == (
        [128, 128],
        5e-4,
        0.9,
        32,
        100,
        "best_val_acc",
    )
    assert (s.eta_uniform, s.eta_low, s.student_temperature) == (100, 20, 1.0)
    assert (
        r.seeds == 10 and "ce" in r.losses and "mse_mean" in r.losses and r.teacher_select == "last"
    )
