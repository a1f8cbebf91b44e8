"""Figures of the binary study: student accuracy by method and teacher loss, and against the
teacher's distance to p*."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

PALETTE = {"ce": "#d95f02", "mse": "#1b9e77", "none": "0.6"}


def plot_binary(frame: pd.DataFrame, *, title: str = ""):
    """Left: student accuracy per method (CE vs MSE teachers; no-teacher line). Right: student
    accuracy against the teacher's MSE to p*."""
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.4))
    f = frame.assign(acc=100 * frame.student_acc)
    taught = f[f.method != "none"]
    ax = axes[0]
    sns.stripplot(
        data=taught,
        x="method",
        y="acc",
        hue="teacher_loss",
        palette=PALETTE,
        dodge=True,
        ax=ax,
        size=5,
        edgecolor="k",
        linewidth=0.3,
    )
    base = f[f.method == "none"].acc
    if len(base):
        ax.axhline(base.mean(), color="0.4", ls="--", lw=1, label="no teacher (CE)")
    ax.axhline(100 * frame.bayes_acc.iloc[0], color="k", ls=":", lw=1, label="Bayes")
    ax.set(ylabel="student test accuracy (%, best-validation epoch)", title="binary students")
    ax.legend(fontsize=8)
    ax = axes[1]
    sns.scatterplot(
        data=taught,
        x="teacher_mse_to_bcpd",
        y="acc",
        hue="teacher_loss",
        style="method",
        palette=PALETTE,
        ax=ax,
        s=40,
        edgecolor="k",
    )
    ax.set(
        xlabel="teacher MSE to p* (merged classes, test)",
        ylabel="student test accuracy (%)",
        title="student accuracy vs teacher distance to p*",
    )
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def render(run_dir, summarize) -> dict:
    """Recompute summary.json (with ``summarize``) and redraw binary.png/.pdf from the parquet."""
    from ... import io

    run_dir = Path(run_dir)
    frame = pd.read_parquet(run_dir / "results.parquet")
    summary = summarize(frame)
    path = run_dir / "summary.json"
    old = json.loads(path.read_text()) if path.exists() else {}
    old.update(summary)
    io.write_json(path, old)
    fig = plot_binary(frame, title=f"binary super-classes ({frame.cfg_preset.iloc[0]} preset)")
    io.save_figure(fig, run_dir / "binary.png", dpi=130)
    io.save_figure(fig, run_dir / "binary.pdf")
    plt.close(fig)
    return summary


def format_table(summary: dict) -> str:
    """The summary table as Markdown."""
    lines = [
        "| teacher loss | method | student acc % (best / last) | teacher acc % | teacher MSE to p* |",
        "|---|---|---|---|---|",
    ]
    for r in summary["table"]:
        t_acc = f"{100 * r['teacher_acc_mean']:.2f}" if "teacher_acc_mean" in r else "-"
        t_mse = f"{r['teacher_mse_to_bcpd_mean']:.4f}" if "teacher_mse_to_bcpd_mean" in r else "-"
        lines.append(
            f"| {r['teacher_loss']} | {r['method']} | {100 * r['student_acc_mean']:.2f} ± "
            f"{100 * r['student_acc_sd']:.2f} / {100 * r['student_acc_last_mean']:.2f} | {t_acc} | "
            f"{t_mse} |"
        )
    for key, p in summary.get("paired_mse_minus_ce", {}).items():
        lines.append(
            f"\nMSE − CE ({key}): {100 * p['mean_difference']:+.2f} points "
            f"[{100 * p['ci_low']:+.2f}, {100 * p['ci_high']:+.2f}], {p['n_pairs']} pairs, "
            f"Wilcoxon p = {p['wilcoxon_p']:.3g}"
        )
    return "\n".join(lines)
