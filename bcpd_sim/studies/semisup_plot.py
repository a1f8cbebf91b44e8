"""Figures of the semi-supervised study: accuracy against the labelled fraction, and against the
teacher's distance to p* on the unlabelled pool."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

COLOURS = {"ce": "#d95f02", "mse": "#1b9e77", "mse_mean": "#7570b3", "ls": "#66a61e"}


def plot_semisup(frame: pd.DataFrame, *, title: str = ""):
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.4))
    ax = axes[0]
    for loss, part in frame.groupby("teacher_loss"):
        c = COLOURS.get(loss, "0.3")
        g = part.groupby("fraction")
        s, t = 100 * g.student_acc.mean(), 100 * g.teacher_acc.mean()
        ax.errorbar(s.index, s, yerr=100 * g.student_acc.std(), color=c, marker="o", capsize=3,
                    label=f"student of {loss} teacher")  # fmt: skip
        ax.plot(t.index, t, color=c, ls="--", marker="x", label=f"{loss} teacher")
    ax.axhline(100 * frame.bayes_acc.iloc[0], color="k", ls=":", lw=1, label="Bayes")
    ax.set(xscale="log", xlabel="labelled fraction f", ylabel="test accuracy (%)",
           title="accuracy vs labelled fraction (mean ± sd over seeds)")  # fmt: skip
    ax.legend(fontsize=8)
    ax = axes[1]
    for loss, part in frame.groupby("teacher_loss"):
        sc = ax.scatter(part.teacher_mse_to_bcpd_unlabelled, 100 * part.student_acc,
                        c=COLOURS.get(loss, "0.3"), s=25 + 60 * part.fraction, edgecolor="k",
                        linewidth=0.3, label=f"{loss} teacher")  # fmt: skip
        del sc
    ax.set(xscale="log", xlabel="teacher MSE to p* on the unlabelled pool",
           ylabel="student test accuracy (%)", title="student vs teacher distance (size: f)")  # fmt: skip
    ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def render(run_dir) -> dict:
    """Recompute summary.json and redraw semisup.png/.pdf from results.parquet (no training)."""
    from .. import io
    from .semisup import summarize

    run_dir = Path(run_dir)
    frame = pd.read_parquet(run_dir / "results.parquet")
    summary = summarize(frame)
    path = run_dir / "summary.json"
    old = json.loads(path.read_text()) if path.exists() else {}
    old.update(summary)
    io.write_json(path, old)
    fig = plot_semisup(frame, title=f"semi-supervised KD ({frame.cfg_preset.iloc[0]} preset)")
    io.save_figure(fig, run_dir / "semisup.png", dpi=130)
    io.save_figure(fig, run_dir / "semisup.pdf")
    plt.close(fig)
    return summary


def format_table(summary: dict) -> str:
    lines = [
        "| f | teacher loss | teacher acc % | teacher MSE to p* (unlabelled) | student acc % |",
        "|---|---|---|---|---|",
    ]
    for r in summary["table"]:
        lines.append(
            f"| {r['fraction']:g} | {r['teacher_loss']} | {100 * r['teacher_acc_mean']:.2f} | "
            f"{r['teacher_mse_to_bcpd_unlabelled_mean']:.4f} | {100 * r['student_acc_mean']:.2f} ± "
            f"{100 * r['student_acc_sd']:.2f} |"
        )
    for f, p in summary["paired_mse_minus_ce"].items():
        s, t = p["student"], p["teacher"]
        lines.append(
            f"\nf = {f}: MSE − CE student {100 * s['mean_difference']:+.2f} "
            f"[{100 * s['ci_low']:+.2f}, {100 * s['ci_high']:+.2f}] points, teacher "
            f"{100 * t['mean_difference']:+.2f} ({s['n_pairs']} pairs)"
        )
    c = summary["spearman_student_acc_vs_teacher_mse_unlabelled"]
    lines.append(
        f"\nSpearman(student acc, teacher MSE to p* on the unlabelled pool) = {c['r']:+.3f} "
        f"[{c['ci_low']:+.3f}, {c['ci_high']:+.3f}] (n = {c['n']})"
    )
    return "\n".join(lines)
