"""Issue 12's statistics: the paper code's clipped CE distance (and, below, across-draw intervals)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from bcpd_sim import metrics
from bcpd_sim.figure1.stats import (
    CORRELATIONS,
    combine_draws,
    correlation,
    correlation_replicates,
    correlation_rows,
    paired_across_draws,
    partial_spearman,
    resample_indices,
)


def test_ce_to_bcpd_clip10_is_the_paper_codes_clipped_cross_entropy():
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(4), size=6)
    q = rng.dirichlet(np.ones(4), size=(2, 6))
    q[0, 0] = [1.0, 0.0, 0.0, 0.0]  # log 0 and log of a tiny mass are clipped at -10
    q[0, 1] = [1.0 - 1e-7, 1e-7, 0.0, 0.0]
    expected = [
        np.mean(
            [
                -sum(
                    p[i, k] * max(math.log(q[m, i, k]) if q[m, i, k] > 0 else -math.inf, -10.0)
                    for k in range(4)
                )
                for i in range(6)
            ]
        )
        for m in range(2)
    ]
    np.testing.assert_allclose(metrics.ce_to_bcpd_clip10(q, p), expected, rtol=1e-12)
    assert metrics.ce_to_bcpd_clip10(q, p)[1] == pytest.approx(metrics.ce_to_bcpd(q, p)[1])
    assert metrics.ce_to_bcpd_clip10(q, p)[0] < metrics.ce_to_bcpd(q, p)[0]


def test_vectorised_correlations_equal_scipy_with_ties():
    rng = np.random.default_rng(1)
    x = rng.integers(0, 6, (40, 25)).astype(float)  # many ties
    y = x + rng.normal(0, 2, x.shape)
    y[3] = np.round(y[3])
    for kind in CORRELATIONS:
        rows = correlation_rows(x, y, kind)
        np.testing.assert_allclose(
            rows, [correlation(a, b, kind) for a, b in zip(x, y)], atol=1e-12, err_msg=kind
        )
    assert np.isnan(correlation_rows(np.ones((1, 5)), y[:1, :5], "kendall")[0])


def _partial_by_residuals(x, y, z):
    """Independent computation: regress the ranks of x and of y on the ranks of z, correlate."""
    rx, ry, rz = (sps.rankdata(v) for v in (x, y, z))
    design = np.column_stack([np.ones_like(rz), rz])
    res_x = rx - design @ np.linalg.lstsq(design, rx, rcond=None)[0]
    res_y = ry - design @ np.linalg.lstsq(design, ry, rcond=None)[0]
    return float(np.corrcoef(res_x, res_y)[0, 1])


def test_partial_rank_correlation_equals_rank_residuals():
    rng = np.random.default_rng(2)
    for _ in range(5):
        z = rng.normal(size=60)
        x = z + rng.normal(0, 0.5, 60)
        y = 0.5 * z - 0.3 * x + rng.normal(0, 0.5, 60)
        y[:5] = y[0]  # ties
        assert partial_spearman(x, y, z) == pytest.approx(_partial_by_residuals(x, y, z), abs=1e-12)
    # y depends on z only: the partial correlation with x vanishes although the plain one does not
    z = rng.normal(size=4000)
    x, y = z + rng.normal(0, 0.3, 4000), z + rng.normal(0, 0.3, 4000)
    assert correlation(x, y, "spearman") > 0.8 and abs(partial_spearman(x, y, z)) < 0.06


def test_cluster_bootstrap_resamples_whole_clusters():
    idx = resample_indices(6, 50, np.random.default_rng(0), groups=np.array([0, 0, 1, 1, 2, 2]))
    assert idx.shape == (50, 6)
    assert np.all(idx[:, ::2] // 2 == idx[:, 1::2] // 2)  # a teacher's two students travel together


def _fabricated(rng, draws, pairs, mean, between_sd, within_sd):
    effects = rng.normal(mean, between_sd, draws)
    diff = (effects[:, None] + rng.normal(0, within_sd, (draws, pairs))).ravel()
    return diff, np.repeat(np.arange(draws), pairs)


def test_across_draw_interval_covers_the_true_mean_95_percent_of_the_time():
    """200 fabricated studies, 5 draws x 10 pairs, between-draw SD 0.5, within-draw SD 1.

    Tolerance: 3 binomial standard errors around 95% over 200 datasets (1.5 points each), i.e.
    coverage in [0.90, 0.99]. The two-level bootstrap is printed beside it: with 5 draws it covers
    about 85-94% (too narrow when the between-draw variance dominates), so the t interval over
    draws is the one reported as ci_low / ci_high.
    """
    rng = np.random.default_rng(12)
    hits, boot_hits, within, between = [], [], [], []
    for i in range(200):
        diff, draw = _fabricated(rng, 5, 10, 0.3, 0.5, 1.0)
        r = paired_across_draws(diff, draw, resamples=400, seed=i)
        hits.append(r["ci_low"] <= 0.3 <= r["ci_high"])
        boot_hits.append(r["bootstrap_ci_low"] <= 0.3 <= r["bootstrap_ci_high"])
        within.append(r["within_draw_sd"])
        between.append(r["between_draw_sd"])
        assert r["n_draws"] == 5 and r["n_pairs"] == 50
    print(
        f"coverage: t over draws {np.mean(hits):.3f}, two-level bootstrap {np.mean(boot_hits):.3f}"
    )
    assert 0.90 <= np.mean(hits) <= 0.99
    assert np.mean(boot_hits) >= 0.80
    assert np.mean(within) == pytest.approx(1.0, abs=0.05)  # pooled SD: nearly unbiased
    assert 0.35 <= np.mean(between) <= 0.65  # floored at 0, so only roughly unbiased


def test_across_draw_interval_is_the_random_intercept_model():
    """Balanced draws: the t interval's standard error is statsmodels' MixedLM (REML) one."""
    import statsmodels.formula.api as smf

    diff, draw = _fabricated(np.random.default_rng(3), 6, 8, 0.2, 0.7, 1.0)
    r = paired_across_draws(diff, draw, resamples=200)
    fit = smf.mixedlm("d ~ 1", pd.DataFrame({"d": diff, "g": draw}), groups="g").fit(reml=True)
    half = (r["ci_high"] - r["ci_low"]) / 2 / sps.t.ppf(0.975, 5)
    assert r["mean"] == pytest.approx(fit.fe_params["Intercept"], abs=1e-9)
    assert half == pytest.approx(fit.bse["Intercept"], rel=1e-3)
    assert r["between_draw_sd"] == pytest.approx(np.sqrt(fit.cov_re.iloc[0, 0]), rel=1e-3)
    assert r["within_draw_sd"] == pytest.approx(np.sqrt(fit.scale), rel=1e-3)


def test_combine_draws_of_correlations():
    rng = np.random.default_rng(4)
    est, reps = [], []
    for d in range(4):
        x = rng.normal(size=80)
        y = -x + rng.normal(0, 1 + d, 80)
        est.append(correlation(x, y, "spearman"))
        reps.append(correlation_replicates(x, y, "spearman", resamples=300, seed=d))
    out = combine_draws(np.array(est), np.stack(reps))
    assert out["mean"] == pytest.approx(np.mean(est))
    assert out["ci_low"] < out["mean"] < out["ci_high"] and out["n_draws"] == 4
    assert out["within_draw_sd"] == pytest.approx(np.sqrt(np.mean(np.var(reps, axis=1, ddof=1))))
