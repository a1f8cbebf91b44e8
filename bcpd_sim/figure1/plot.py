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


#: Correlation groups annotated on each study's panels: (group, short label).
ANNOTATED = {
    "simulated": [
        ("simulated: all families", "all families"),
        ("simulated: eta-mix", "eta-mix"),
        ("simulated: wrong_mass", "wrong mass"),
        ("simulated: all but eta-mix", "all but eta-mix"),
    ],
    "trained": [
        ("trained: ce", "ce"),
        ("trained: mse", "mse"),
        ("trained: ce+mse", "ce+mse"),
        ("trained: all losses", "all losses (between-group)"),
    ],
}


def _corr_text(corr: pd.DataFrame, study: str, dist: str) -> str:
    """Spearman rho across draws, with its 95% interval over draws, for each annotated group."""
    if corr.empty:
        return ""
    parts = []
    for group, short in ANNOTATED[study]:
        rows = corr[(corr.group == group) & (corr.distance == dist) & (corr.method == "spearman")]
        if rows.empty or not pd.notna(rows["mean"].iloc[0]):
            continue
        r = rows.iloc[0]
        # one draw: no interval over draws (summary.json holds None there)
        lo, hi = (f"{v:+.2f}" if pd.notna(v) else "n/a" for v in (r.ci_low, r.ci_high))
        parts.append(f"{short}: ρ = {r['mean']:+.2f} [{lo}, {hi}]")
    return "\n".join(parts)


def plot_figure1(results: pd.DataFrame, corr: pd.DataFrame, *, title: str = ""):
    """One row per study present (simulated, trained), one column per distance."""
    studies = [s for s in ("simulated", "trained") if s in set(results.study)]
    fig, axes = plt.subplots(len(studies), 3, figsize=(16, 4.6 * len(studies)), squeeze=False)
    for row, study in zip(axes, studies):
        part = results[results.study == study].copy()
        hue = "teacher_kind" if study == "simulated" else "teacher_loss"
        if study == "trained":
            part["teacher budget"] = [
                f"{e} ep, {n} pts" for e, n in zip(part.teacher_epochs, part.teacher_n_train)
            ]
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
        style = None if study == "simulated" else "teacher budget"
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
        "ρ: Spearman, mean over draws of the data, 95% t interval over draws (all draws' students shown). Distances "
        "are per-sample means over the students' training inputs; the paper's claim is that accuracy falls with the "
        "MSE distance but not with CE. 'all losses' mostly measures the contrast between the losses' groups.",
        ha="center",
        fontsize=8.5,
        color="0.3",
    )
    fig.tight_layout()
    return fig


def plot_paired(results: pd.DataFrame, summary: dict | None = None, baseline: str = "ce"):
    """Matched-teacher differences (loss minus baseline), one column per comparison: student (top)
    and teacher (bottom) accuracy, each pair a dot coloured by teacher budget, split by draw, with
    each draw's mean and, at the right, the across-draw mean with its 95% t interval over draws
    (black) and the two-level bootstrap interval (grey)."""
    from .stats import paired_across_draws
    from .summary import matched_pairs, paired_across

    pairs = list(matched_pairs(results, baseline=baseline))
    across = (summary or {}).get("paired_across_draws") or paired_across(results, resamples=500)
    fig, axes = plt.subplots(
        2, max(1, len(pairs)), figsize=(max(9.5, 1.6 + 6.5 * len(pairs)), 8.2), squeeze=False
    )
    budgets = sorted(
        {(int(e), int(n)) for e, n in zip(results.teacher_epochs, results.teacher_n_train) if e}
    )
    colours = dict(zip(budgets, sns.color_palette("viridis", len(budgets))))
    rng = np.random.default_rng(0)
    for col, (loss, joined) in enumerate(pairs):
        key = f"{loss}_minus_{baseline}"
        draws = sorted(joined.draw.unique())
        for row, what in enumerate(("student_acc", "teacher_acc")):
            ax = axes[row, col]
            diff = 100 * (joined[f"{what}_a"] - joined[f"{what}_b"])
            for i, d in enumerate(draws):
                sel = joined.draw == d
                for budget, colour in colours.items():
                    b = (
                        sel
                        & (joined.teacher_epochs == budget[0])
                        & (joined.teacher_n_train == budget[1])
                    )
                    if b.any():
                        ax.scatter(
                            i + rng.uniform(-0.25, 0.25, int(b.sum())),
                            diff[b],
                            color=colour,
                            s=22,
                            alpha=0.8,
                            edgecolor="k",
                            linewidth=0.3,
                            label=f"teacher {budget[0]} epochs, {budget[1]} points"
                            if i == 0
                            else None,
                        )
                ax.hlines(diff[sel].mean(), i - 0.35, i + 0.35, color="k", lw=1.6)
            stats = across.get(key, {}).get(what)
            x = len(draws) + 0.4
            if stats and stats.get("mean") is not None:
                m = 100 * stats["mean"]
                for lo, hi, colour, width, dx in (
                    (stats.get("bootstrap_ci_low"), stats.get("bootstrap_ci_high"), "0.6", 5, 0.15),
                    (stats.get("ci_low"), stats.get("ci_high"), "k", 1.8, 0.0),
                ):
                    if lo is not None and hi is not None:
                        ax.vlines(x + dx, 100 * lo, 100 * hi, color=colour, lw=width)
                ax.plot([x], [m], "D", color="k", ms=7)
                ax.annotate(
                    f"{m:+.2f}",
                    (x, m),
                    xytext=(-10, 0),
                    textcoords="offset points",
                    ha="right",
                    va="center",
                    fontsize=8.5,
                )
            # each teacher budget across draws: its mean and 95% t interval over draws
            xb = x + 0.6
            for k, (budget, colour) in enumerate(colours.items()):
                b = (joined.teacher_epochs == budget[0]) & (joined.teacher_n_train == budget[1])
                if not b.any() or len(colours) < 2:
                    continue
                est = paired_across_draws(
                    (joined[f"{what}_a"] - joined[f"{what}_b"])[b].to_numpy(float),
                    joined.draw[b].to_numpy(),
                    resamples=200,
                )
                xk = xb + 0.22 * k
                if np.isfinite(est["ci_low"]):
                    ax.vlines(xk, 100 * est["ci_low"], 100 * est["ci_high"], color=colour, lw=1.8)
                ax.plot([xk], [100 * est["mean"]], "D", color=colour, ms=6, mec="k", mew=0.4)
            ax.axhline(0, color="0.5", lw=1, ls="--")
            ticks = [*range(len(draws)), x]
            names = [*(f"draw {d}" for d in draws), "across\ndraws"]
            if len(colours) > 1:
                ticks.append(xb + 0.11 * (len(colours) - 1))
                names.append("across draws,\nby budget")
            ax.set_xticks(ticks, names)
            ax.set_xlim(-0.6, (xb + 0.22 * len(colours) if len(colours) > 1 else x) + 0.5)
            ax.set_ylabel(f"{what.split('_')[0]} accuracy: {loss} - {baseline} (pts)")
            ax.grid(alpha=0.3, axis="y")
            if row == 0:
                ax.set_title(f"{loss} vs {baseline} teachers, matched seed and budget", fontsize=10)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    if handles:
        ncol = min(len(handles), 2 if len(pairs) < 2 else 4)
        fig.legend(handles, labels, loc="lower center", ncol=ncol, fontsize=8)
    fig.suptitle(
        "Paired differences per draw (dots: pairs; bars: draw means)\nacross draws: mean of the "
        "draw means with its 95% t interval over draws (black; grey: two-level bootstrap),\n"
        "and the same per teacher budget (colours)",
        fontsize=10,
    )
    fig.tight_layout(rect=(0, 0.08, 1, 0.92))
    return fig
