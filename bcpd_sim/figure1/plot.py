"""Figure 1: student accuracy against the teacher's distance to p* (MSE, KL, CE), per study."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

LABELS = {
    "mse_to_bcpd": "teacher MSE to p*:  mean ||p_t - p*||²",
    "kl_to_bcpd": "teacher KL(p* || p_t)",
    "ce_to_bcpd": "teacher CE(p*, p_t)",
}


def _corr_text(corr: pd.DataFrame, group: str, dist: str) -> str:
    rows = corr[(corr.group == group) & (corr.distance == dist)].set_index("method")
    if rows.empty:
        return ""
    parts = []
    for m, short in (("spearman", "ρ"), ("kendall", "τ"), ("pearson", "r")):
        if m in rows.index and np.isfinite(rows.loc[m, "r"]):
            parts.append(
                f"{short} = {rows.loc[m, 'r']:+.2f} [{rows.loc[m, 'ci_low']:+.2f}, {rows.loc[m, 'ci_high']:+.2f}]"
            )
    return "\n".join(parts)


def plot_figure1(results: pd.DataFrame, corr: pd.DataFrame, *, title: str = ""):
    """One row per study present (simulated, trained), one column per distance."""
    studies = [s for s in ("simulated", "trained") if s in set(results.study)]
    fig, axes = plt.subplots(len(studies), 3, figsize=(16, 4.6 * len(studies)), squeeze=False)
    for row, study in zip(axes, studies):
        part = results[results.study == study].copy()
        hue = "teacher_kind" if study == "simulated" else "teacher_loss"
        palette = (
            "tab10"
            if study == "simulated"
            else {
                "ce": "#d95f02",
                "mse": "#1b9e77",
                "mse_mean": "#7570b3",
                "mse_logits": "#e7298a",
                "ls": "#66a61e",
            }
        )
        style = None if study == "simulated" else "teacher_n_train"
        for ax, dist in zip(row, ("mse_to_bcpd", "kl_to_bcpd", "ce_to_bcpd")):
            part["_acc"] = 100 * part.student_acc
            sns.scatterplot(
                data=part,
                x=dist,
                y="_acc",
                hue=hue,
                style=style,
                palette=palette,
                ax=ax,
                s=36,
                edgecolor="k",
                linewidth=0.3,
                alpha=0.85,
            )
            ax.set_xlabel(LABELS[dist])
            ax.set_ylabel("student test accuracy (%)")
            ax.set_title(f"{study} teachers", fontsize=10, loc="left")
            ax.text(
                0.98,
                0.98,
                _corr_text(corr, study, dist),
                transform=ax.transAxes,
                ha="right",
                va="top",
                fontsize=8.5,
                bbox={"boxstyle": "round", "facecolor": "white", "alpha": 0.85, "edgecolor": "0.8"},
            )
            ax.grid(alpha=0.3)
            if ax is not row[0]:
                legend = ax.get_legend()
                if legend is not None:
                    legend.remove()
            else:
                ax.legend(fontsize=7.5, loc="lower left", title=None)
    fig.suptitle(
        title or "Student accuracy against the teacher's distance to the BCPD", fontsize=12
    )
    fig.text(
        0.5,
        -0.01,
        "ρ Spearman, τ Kendall, r Pearson, with 95% bootstrap intervals. Distances are per-sample means over the "
        "students' training inputs; the paper's claim is that accuracy falls with the MSE distance but not with CE.",
        ha="center",
        fontsize=8.5,
        color="0.3",
    )
    fig.tight_layout()
    return fig


def plot_paired(results: pd.DataFrame, baseline: str = "ce"):
    """Student and teacher accuracy differences per matched pair (loss minus baseline)."""
    from .summary import matched_pairs

    rows = []
    for loss, joined in matched_pairs(results, baseline=baseline):
        for what in ("student_acc", "teacher_acc"):
            rows += [
                {
                    "comparison": f"{loss} - {baseline}",
                    "accuracy of": what.split("_")[0],
                    "difference (pts)": 100 * d,
                }
                for d in (joined[f"{what}_a"] - joined[f"{what}_b"])
            ]
    fig, ax = plt.subplots(figsize=(7, 4.2))
    if rows:
        frame = pd.DataFrame(rows)
        sns.stripplot(
            data=frame,
            x="comparison",
            y="difference (pts)",
            hue="accuracy of",
            dodge=True,
            alpha=0.6,
            ax=ax,
        )
        sns.pointplot(
            data=frame,
            x="comparison",
            y="difference (pts)",
            hue="accuracy of",
            dodge=0.4,
            errorbar=("ci", 95),
            linestyle="none",
            markers="D",
            palette="dark:k",
            ax=ax,
            legend=False,
        )
    ax.axhline(0, color="0.5", lw=1, ls="--")
    ax.set_title(
        "Matched teachers (same seed and settings): accuracy difference, mean and 95% CI",
        fontsize=10,
    )
    ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    return fig
