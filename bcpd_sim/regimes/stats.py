"""Paired differences across draws of the data: per-draw means, their mean, and intervals.

The interval over draws is a Student-t interval of the per-draw mean differences (each draw one
independent observation); the two-level bootstrap (resample draws, then pairs within each drawn
draw) is reported beside it.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

LEVEL = 0.95


def paired_across_draws(
    diff: np.ndarray,
    draw: np.ndarray,
    *,
    resamples: int = 2000,
    seed: int = 0,
    level: float = LEVEL,
) -> dict:
    """Mean over draws of the per-draw mean paired difference, with a t interval over draws and a
    two-level bootstrap interval; between-draw SD (of the true per-draw mean, method of moments)
    and within-draw SD (of single pair differences, pooled)."""
    diff, draw = np.asarray(diff, float), np.asarray(draw)
    labels = np.unique(draw)
    parts = [diff[draw == d] for d in labels]
    means = np.array([p.mean() for p in parts])
    sizes = np.array([len(p) for p in parts])
    n = len(parts)
    nan = float("nan")
    out = {"mean": float(means.mean()), "n_draws": n, "n_pairs": int(len(diff))}
    out["per_draw"] = [float(v) for v in means]
    dof = int((sizes - 1).sum())
    within_var = float(sum(((p - p.mean()) ** 2).sum() for p in parts) / dof) if dof else nan
    out["within_draw_sd"] = float(np.sqrt(within_var))
    if n < 2:
        out |= {"ci_low": nan, "ci_high": nan, "bootstrap_ci_low": nan, "bootstrap_ci_high": nan}
        out["between_draw_sd"] = nan
        return out
    half = stats.t.ppf(0.5 + level / 2, n - 1) * means.std(ddof=1) / np.sqrt(n)
    out["ci_low"], out["ci_high"] = float(means.mean() - half), float(means.mean() + half)
    between = float(means.var(ddof=1)) - (within_var if np.isfinite(within_var) else 0.0) * float(
        np.mean(1.0 / sizes)
    )
    out["between_draw_sd"] = float(np.sqrt(max(0.0, between)))
    rng = np.random.default_rng(seed)
    # Within-draw replicates (n, B), then for each resample n draws and one replicate of each.
    reps = np.stack([p[rng.integers(0, len(p), (resamples, len(p)))].mean(axis=1) for p in parts])
    which = rng.integers(0, n, (resamples, n))
    pick = rng.integers(0, resamples, (resamples, n))
    boot = reps[which, pick].mean(axis=1)
    alpha = (1.0 - level) / 2
    lo, hi = np.quantile(boot, [alpha, 1 - alpha])
    out["bootstrap_ci_low"], out["bootstrap_ci_high"] = float(lo), float(hi)
    return out
