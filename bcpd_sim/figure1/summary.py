"""From results.parquet to summary.json: correlations with intervals and the paired comparison."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .. import io
from .stats import correlation_table, paired_difference

DISTANCES = ["mse_to_bcpd", "kl_to_bcpd", "ce_to_bcpd"]
PAIR_KEYS = ["teacher_seed", "teacher_epochs", "teacher_n_train", "teacher_width", "student_seed"]


def correlations(results: pd.DataFrame, *, resamples: int = 2000) -> pd.DataFrame:
    """Correlation of student accuracy with each teacher distance, per study (and pooled)."""
    table = correlation_table(results, "student_acc", DISTANCES, group="study", resamples=resamples)
    if "trained" in set(results.study) and "mse_to_bcpd_test" in results:
        held = correlation_table(
            results[results.study == "trained"],
            "student_acc",
            ["mse_to_bcpd_test", "kl_to_bcpd_test"],
            resamples=resamples,
        )
        table = pd.concat(
            [table, held.assign(group="trained (held-out distance)")], ignore_index=True
        )
    return table


def matched_pairs(results: pd.DataFrame, *, baseline: str = "ce"):
    """Yield (loss, joined) for each trained teacher loss other than ``baseline``: its rows matched
    to the baseline's on settings and seeds, columns suffixed ``_a`` (loss) and ``_b`` (baseline)."""
    trained = results[results.study == "trained"]
    if baseline not in set(trained.teacher_loss):
        return
    base = trained[trained.teacher_loss == baseline].set_index(PAIR_KEYS)
    for loss in sorted(set(trained.teacher_loss) - {baseline}):
        other = trained[trained.teacher_loss == loss].set_index(PAIR_KEYS)
        joined = pd.merge(other, base, left_index=True, right_index=True, suffixes=("_a", "_b"))
        if not joined.empty:
            yield loss, joined


def paired_comparisons(
    results: pd.DataFrame, *, baseline: str = "ce", resamples: int = 2000
) -> list[dict]:
    """For each teacher loss vs ``baseline``, matched on settings and seeds: student and teacher
    accuracy differences (loss minus baseline) with bootstrap intervals and Wilcoxon p-values."""
    out = []
    for loss, joined in matched_pairs(results, baseline=baseline):
        entry = {"loss": loss, "baseline": baseline}
        for col in ("student_acc", "teacher_acc", "mse_to_bcpd", "kl_to_bcpd"):
            stats = paired_difference(
                joined[f"{col}_a"].to_numpy(), joined[f"{col}_b"].to_numpy(), resamples=resamples
            )
            entry[col] = stats | {
                "mean_a": float(joined[f"{col}_a"].mean()),
                "mean_b": float(joined[f"{col}_b"].mean()),
            }
        out.append(entry)
    return out


def group_means(results: pd.DataFrame) -> pd.DataFrame:
    """Mean ± sd of accuracies and distances per teacher loss / target kind."""
    cols = ["student_acc", "teacher_acc", "mse_to_bcpd", "kl_to_bcpd"]
    if "student_acc_last" in results:
        cols.insert(1, "student_acc_last")
    agg = results.groupby(["study", "teacher_loss"])[cols].agg(["mean", "std", "count"])
    agg.columns = [f"{a}_{b}" for a, b in agg.columns]
    return agg.reset_index()


def summarise(results: pd.DataFrame, *, resamples: int = 2000) -> dict:
    corr = correlations(results, resamples=resamples)
    return {
        "n_students": int(len(results)),
        "correlations": corr.replace({np.nan: None}).to_dict(orient="records"),
        "paired": paired_comparisons(results, resamples=resamples),
        "groups": group_means(results).replace({np.nan: None}).to_dict(orient="records"),
    }


def write_summary(run_dir: str | Path, results: pd.DataFrame, *, resamples: int = 2000) -> dict:
    summary = summarise(results, resamples=resamples)
    io.write_json(Path(run_dir) / "summary.json", summary)
    corr = pd.DataFrame(summary["correlations"])
    io.write_table(Path(run_dir) / "correlations.csv", corr)
    return summary


def format_summary(summary: dict) -> str:
    """Human-readable correlation table and paired comparison."""
    corr = pd.DataFrame(summary["correlations"])
    lines = ["Student test accuracy vs teacher distance to p* (95% bootstrap intervals):"]
    for (group, dist), part in corr.groupby(["group", "distance"], sort=False):
        cells = "  ".join(
            f"{r.method} {r.r:+.2f} [{r.ci_low:+.2f}, {r.ci_high:+.2f}]" for r in part.itertuples()
        )
        lines.append(f"  {group:<28} {dist:<18} n={int(part.n.iloc[0]):<5} {cells}")
    for p in summary["paired"]:
        s, t = p["student_acc"], p["teacher_acc"]
        lines.append(
            f"Paired {p['loss']} - {p['baseline']} teachers ({s['n_pairs']} pairs): student acc {100 * s['mean_difference']:+.2f} pts "
            f"[{100 * s['ci_low']:+.2f}, {100 * s['ci_high']:+.2f}], Wilcoxon p = {s['wilcoxon_p']:.3g}; "
            f"teacher acc {100 * t['mean_difference']:+.2f} pts [{100 * t['ci_low']:+.2f}, {100 * t['ci_high']:+.2f}]; "
            f"teacher MSE to p* {p['mse_to_bcpd']['mean_a']:.4f} vs {p['mse_to_bcpd']['mean_b']:.4f}"
        )
    return "\n".join(lines)
