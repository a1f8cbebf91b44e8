"""Correlations with bootstrap intervals, and paired comparisons with a Wilcoxon test."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

CORRELATIONS = ("spearman", "pearson", "kendall")


def correlation(x: np.ndarray, y: np.ndarray, kind: str) -> float:
    """One correlation coefficient (nan when undefined, e.g. constant input)."""
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    if kind == "spearman":
        return float(stats.spearmanr(x, y).statistic)
    if kind == "pearson":
        return float(stats.pearsonr(x, y).statistic)
    if kind == "kendall":
        return float(stats.kendalltau(x, y).statistic)
    raise ValueError(f"unknown correlation {kind!r}; valid: {', '.join(CORRELATIONS)}")


def bootstrap_interval(
    x: np.ndarray,
    y: np.ndarray,
    kind: str,
    *,
    resamples: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval of a correlation, resampling (x, y) pairs."""
    rng = np.random.default_rng(seed)
    n = len(x)
    if n < 3:
        return float("nan"), float("nan")
    values = []
    for _ in range(resamples):
        idx = rng.integers(0, n, n)
        values.append(correlation(x[idx], y[idx], kind))
    values = np.asarray(values)
    values = values[np.isfinite(values)]
    if len(values) < resamples // 2:
        return float("nan"), float("nan")
    alpha = (1.0 - level) / 2
    return float(np.quantile(values, alpha)), float(np.quantile(values, 1 - alpha))


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
    """Mean of a - b over pairs, a 95% bootstrap interval, and the Wilcoxon signed-rank p-value."""
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
