"""Correlations, partial rank correlations and paired differences, within one draw of the data and
across independent draws.

Within a draw, intervals come from a percentile bootstrap over students (or over clusters of them,
e.g. the students of one teacher); they are conditional on that draw of the data. Across draws,
the estimate is the mean of the per-draw estimates and its 95% interval is the Student-t interval
over the draws, which for a balanced design is the interval of a random-intercept model with the
draw as the random effect (REML); a two-level bootstrap (resample draws, then students or pairs
within each drawn draw) is reported beside it. With few draws the two-level bootstrap is too
narrow (it cannot know how uncertain a variance from a handful of draws is): see
``tests/test_figure1_stats.py`` for the measured coverage of both.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy import stats

CORRELATIONS = ("spearman", "pearson", "kendall")
LEVEL = 0.95


# --------------------------------------------------------------------------- one coefficient
def correlation(x: np.ndarray, y: np.ndarray, kind: str) -> float:
    """One correlation coefficient, by scipy (nan when undefined, e.g. constant input)."""
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    if kind == "spearman":
        return float(stats.spearmanr(x, y).statistic)
    if kind == "pearson":
        return float(stats.pearsonr(x, y).statistic)
    if kind == "kendall":
        return float(stats.kendalltau(x, y).statistic)
    raise ValueError(f"unknown correlation {kind!r}; valid: {', '.join(CORRELATIONS)}")


def _pearson_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    xc = x - x.mean(axis=-1, keepdims=True)
    yc = y - y.mean(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (xc * yc).sum(-1) / np.sqrt((xc**2).sum(-1) * (yc**2).sum(-1))
    r = np.clip(r, -1.0, 1.0)
    r[(np.ptp(x, axis=-1) == 0) | (np.ptp(y, axis=-1) == 0)] = np.nan
    return r


def _kendall_rows(x: np.ndarray, y: np.ndarray, *, cells: int = 4_000_000) -> np.ndarray:
    """Kendall's tau-b of each row pair (scipy's default variant), in chunks of rows."""
    b, n = x.shape
    out = np.empty(b)
    step = max(1, cells // (n * n))
    for a in range(0, b, step):
        xs, ys = x[a : a + step], y[a : a + step]
        sx = np.sign(xs[:, :, None] - xs[:, None, :]).astype(np.int8)
        sy = np.sign(ys[:, :, None] - ys[:, None, :]).astype(np.int8)
        s = (sx * sy).sum(axis=(1, 2), dtype=np.int64)
        nx = np.abs(sx).sum(axis=(1, 2), dtype=np.int64)
        ny = np.abs(sy).sum(axis=(1, 2), dtype=np.int64)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[a : a + step] = s / np.sqrt(nx.astype(float) * ny)
    out[(np.ptp(x, axis=-1) == 0) | (np.ptp(y, axis=-1) == 0)] = np.nan
    return np.clip(out, -1.0, 1.0)


def correlation_rows(x: np.ndarray, y: np.ndarray, kind: str) -> np.ndarray:
    """The correlation of every row of x (B, n) with the same row of y: vectorised, for bootstraps.

    Spearman uses average ranks and Kendall is tau-b, as in scipy; nan where a row is constant.
    """
    x, y = np.atleast_2d(np.asarray(x, float)), np.atleast_2d(np.asarray(y, float))
    if kind == "spearman":
        return _pearson_rows(stats.rankdata(x, axis=-1), stats.rankdata(y, axis=-1))
    if kind == "pearson":
        return _pearson_rows(x, y)
    if kind == "kendall":
        return _kendall_rows(x, y)
    raise ValueError(f"unknown correlation {kind!r}; valid: {', '.join(CORRELATIONS)}")


def partial_from_correlations(r_xy, r_xz, r_yz):
    """Partial correlation of x and y given z from the three pairwise correlations."""
    r_xy, r_xz, r_yz = (np.asarray(v, float) for v in (r_xy, r_xz, r_yz))
    with np.errstate(invalid="ignore", divide="ignore"):
        return (r_xy - r_xz * r_yz) / np.sqrt((1 - r_xz**2) * (1 - r_yz**2))


def partial_spearman(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> float:
    """Partial rank correlation of x and y controlling for z (Spearman: Pearson on ranks)."""
    rows = partial_spearman_rows(*(np.asarray(v, float)[None] for v in (x, y, z)))
    return float(rows[0])


def partial_spearman_rows(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
    """:func:`partial_spearman` of every row of (B, n) arrays."""
    rx, ry, rz = (stats.rankdata(np.atleast_2d(v), axis=-1) for v in (x, y, z))
    return partial_from_correlations(
        _pearson_rows(rx, ry), _pearson_rows(rx, rz), _pearson_rows(ry, rz)
    )


# --------------------------------------------------------------------------- bootstraps
def resample_indices(
    n: int, resamples: int, rng: np.random.Generator, groups: np.ndarray | None = None
) -> np.ndarray:
    """(resamples, n') indices: n points with replacement, or whole clusters when ``groups``
    labels each point's cluster (every cluster must have the same size)."""
    if groups is None:
        return rng.integers(0, n, (resamples, n))
    labels, inverse = np.unique(np.asarray(groups), return_inverse=True)
    members = [np.flatnonzero(inverse == g) for g in range(len(labels))]
    if len({len(m) for m in members}) != 1:
        raise ValueError("cluster bootstrap needs clusters of equal size")
    table = np.stack(members)  # (G, size)
    pick = rng.integers(0, len(labels), (resamples, len(labels)))
    return table[pick].reshape(resamples, -1)


def _percentile(values: np.ndarray, level: float = LEVEL) -> tuple[float, float]:
    values = values[np.isfinite(values)]
    if len(values) < 10:
        return float("nan"), float("nan")
    alpha = (1.0 - level) / 2
    lo, hi = np.quantile(values, [alpha, 1 - alpha])
    return float(lo), float(hi)


def correlation_replicates(
    x: np.ndarray,
    y: np.ndarray,
    kind: str,
    *,
    resamples: int = 2000,
    seed: int = 0,
    groups: np.ndarray | None = None,
) -> np.ndarray:
    """Bootstrap replicates (resamples,) of a correlation, resampling points (or clusters)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    if len(x) < 3:
        return np.full(resamples, np.nan)
    idx = resample_indices(len(x), resamples, np.random.default_rng(seed), groups)
    return correlation_rows(x[idx], y[idx], kind)


def bootstrap_interval(
    x: np.ndarray,
    y: np.ndarray,
    kind: str,
    *,
    resamples: int = 2000,
    level: float = LEVEL,
    seed: int = 0,
    groups: np.ndarray | None = None,
) -> tuple[float, float]:
    """Percentile bootstrap interval of a correlation, resampling (x, y) pairs, or whole clusters
    of them when ``groups`` is given (e.g. a teacher and its students)."""
    values = correlation_replicates(x, y, kind, resamples=resamples, seed=seed, groups=groups)
    if np.isfinite(values).sum() < resamples // 2:
        return float("nan"), float("nan")
    return _percentile(values, level)


# --------------------------------------------------------------------------- across draws
def t_interval(values: np.ndarray, level: float = LEVEL) -> tuple[float, float]:
    """Student-t interval of the mean of independent per-draw estimates (nan for < 2 draws)."""
    values = np.asarray(values, float)
    values = values[np.isfinite(values)]
    if len(values) < 2:
        return float("nan"), float("nan")
    half = stats.t.ppf(0.5 + level / 2, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values))
    return float(values.mean() - half), float(values.mean() + half)


def two_level_bootstrap(
    replicates: np.ndarray, rng: np.random.Generator, level: float = LEVEL
) -> tuple[float, float]:
    """Two-level bootstrap from per-draw bootstrap replicates (D, B): each resample draws D draws
    with replacement and, for each, one of its within-draw replicates (a resample of its students
    or pairs), and averages them."""
    d, b = replicates.shape
    if d < 2:
        return float("nan"), float("nan")
    which = rng.integers(0, d, (b, d))
    rep = rng.integers(0, b, (b, d))
    with warnings.catch_warnings():  # a resample whose every replicate is undefined stays nan
        warnings.simplefilter("ignore", RuntimeWarning)
        return _percentile(np.nanmean(replicates[which, rep], axis=1), level)


def combine_draws(
    estimates: np.ndarray,
    replicates: np.ndarray,
    *,
    seed: int = 0,
    level: float = LEVEL,
    bounds: tuple[float, float] | None = None,
) -> dict:
    """Across-draw summary of a per-draw statistic (a correlation, a mean difference).

    ``estimates`` (D,) are the per-draw values and ``replicates`` (D, B) their within-draw
    bootstrap replicates. ``within_draw_sd`` is the sampling SD of the statistic inside one draw
    (root mean of the replicate variances); ``between_draw_sd`` the SD of its true per-draw value
    across draws (method of moments, floored at 0). ``bounds`` clips the intervals to the
    statistic's range (e.g. (-1, 1) for a correlation).
    """
    estimates = np.asarray(estimates, float)
    ok = np.isfinite(estimates)
    estimates, replicates = estimates[ok], np.asarray(replicates, float)[ok]
    n = len(estimates)
    if n == 0:
        nan = float("nan")
        return {
            "mean": nan,
            "ci_low": nan,
            "ci_high": nan,
            "bootstrap_ci_low": nan,
            "bootstrap_ci_high": nan,
            "n_draws": 0,
            "between_draw_sd": nan,
            "within_draw_sd": nan,
            "per_draw": [],
        }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        within_var = float(np.nanmean(np.nanvar(replicates, axis=1, ddof=1)))
    between_var = float(estimates.var(ddof=1)) - within_var if n >= 2 else float("nan")
    lo, hi = t_interval(estimates, level)
    blo, bhi = two_level_bootstrap(replicates, np.random.default_rng(seed), level)
    if bounds is not None:
        lo, hi = (float(np.clip(v, *bounds)) for v in (lo, hi))
    return {
        "mean": float(estimates.mean()),
        "ci_low": lo,
        "ci_high": hi,
        "bootstrap_ci_low": blo,
        "bootstrap_ci_high": bhi,
        "n_draws": n,
        "between_draw_sd": float(np.sqrt(max(0.0, between_var))) if n >= 2 else float("nan"),
        "within_draw_sd": float(np.sqrt(within_var)),
        "per_draw": [float(v) for v in estimates],
    }


def paired_across_draws(
    diff: np.ndarray,
    draw: np.ndarray,
    *,
    resamples: int = 2000,
    seed: int = 0,
    level: float = LEVEL,
) -> dict:
    """Mean paired difference across draws: the mean of the per-draw mean differences, a t interval
    over draws (random-intercept model, balanced) and a two-level bootstrap (draws, then pairs).

    ``within_draw_sd`` is the pooled SD of single pair differences inside a draw and
    ``between_draw_sd`` the SD of the true per-draw mean difference (method of moments).
    """
    diff, draw = np.asarray(diff, float), np.asarray(draw)
    rng = np.random.default_rng(seed)
    labels = np.unique(draw)
    parts = [diff[draw == d] for d in labels]
    means = np.array([p.mean() for p in parts])
    reps = np.stack([p[rng.integers(0, len(p), (resamples, len(p)))].mean(axis=1) for p in parts])
    out = combine_draws(means, reps, seed=seed + 1, level=level)
    sizes = np.array([len(p) for p in parts])
    dof = int((sizes - 1).sum())
    within_var = (
        float(sum(((p - p.mean()) ** 2).sum() for p in parts) / dof) if dof > 0 else float("nan")
    )
    if len(parts) >= 2:
        between_var = float(means.var(ddof=1)) - within_var * float(np.mean(1.0 / sizes))
        out["between_draw_sd"] = float(np.sqrt(max(0.0, between_var)))
    out["within_draw_sd"] = float(np.sqrt(within_var))
    out["n_pairs"] = int(len(diff))
    return out


# --------------------------------------------------------------------------- tables
def correlation_table(
    frame: pd.DataFrame,
    target: str,
    distances: list[str],
    *,
    group: str | None = None,
    resamples: int = 2000,
    seed: int = 0,
) -> pd.DataFrame:
    """Spearman, Pearson and Kendall of ``target`` with each distance, with 95% bootstrap intervals."""
    rows = []
    groups = frame.groupby(group, sort=False) if group else [("all", frame)]
    for name, part in groups:
        for dist in distances:
            sub = part[[dist, target]].replace([np.inf, -np.inf], np.nan).dropna()
            x, y = sub[dist].to_numpy(float), sub[target].to_numpy(float)
            for kind in CORRELATIONS:
                lo, hi = bootstrap_interval(x, y, kind, resamples=resamples, seed=seed)
                rows.append(
                    {
                        "group": name,
                        "distance": dist,
                        "method": kind,
                        "n": len(x),
                        "r": correlation(x, y, kind),
                        "ci_low": lo,
                        "ci_high": hi,
                    }
                )
    return pd.DataFrame(rows)


def paired_difference(
    a: np.ndarray, b: np.ndarray, *, resamples: int = 2000, seed: int = 0
) -> dict:
    """Mean of a - b over pairs, a 95% bootstrap interval, and the Wilcoxon signed-rank p-value.

    The interval resamples pairs only: it is conditional on one draw of the data."""
    diff = np.asarray(a, float) - np.asarray(b, float)
    n = len(diff)
    out = {"n_pairs": n, "mean_difference": float(diff.mean()) if n else float("nan")}
    if n >= 2:
        rng = np.random.default_rng(seed)
        means = diff[rng.integers(0, n, (resamples, n))].mean(axis=1)
        out["ci_low"], out["ci_high"] = (float(v) for v in np.quantile(means, [0.025, 0.975]))
        out["sd_difference"] = float(diff.std(ddof=1))
    else:
        out["ci_low"] = out["ci_high"] = out["sd_difference"] = float("nan")
    if n >= 2 and np.any(diff != 0):
        out["wilcoxon_p"] = float(stats.wilcoxon(diff).pvalue)
    else:
        out["wilcoxon_p"] = float("nan")
    return out
