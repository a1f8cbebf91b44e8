"""The bound's figure: left side against right side, and the bias term against teacher MSE to p*."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns


def plot_bound(frame: pd.DataFrame, *, title: str = ""):
    """Three panels: LHS vs RHS (identity line), bias term vs teacher MSE, LHS vs exact identity."""
    fig, axes = plt.subplots(1, 3, figsize=(17, 5.2))
    hue_order = sorted(frame.teacher_family.unique())
    ax = axes[0]
    sns.scatterplot(
        data=frame,
        x="rhs",
        y="lhs",
        hue="teacher_family",
        hue_order=hue_order,
        style="n_set",
        ax=ax,
        s=22,
        alpha=0.75,
        edgecolor="none",
    )
    lo = float(min(frame.rhs.min(), frame.lhs.min()))
    hi = float(max(frame.rhs.max(), frame.lhs.max()))
    ax.plot([lo, hi], [lo, hi], "k--", lw=1, label="LHS = RHS")
    ax.set(
        xscale="log",
        yscale="log",
        xlabel="right side: Var/N + (E‖p_t − p*‖‖l‖)²",
        ylabel="left side: E_S[(R̃ − R)²] (Monte Carlo)",
    )
    held = int((frame.lhs <= frame.rhs).sum())
    ax.set_title(f"bound holds in {held} / {len(frame)} cases")
    ax.legend(fontsize=7, ncol=2)

    ax = axes[1]
    one = frame[frame.n_set == frame.n_set.min()]
    sns.scatterplot(
        data=one,
        x="teacher_mse_to_bcpd",
        y="bias_term",
        hue="teacher_family",
        hue_order=hue_order,
        style="student_loss",
        ax=ax,
        s=26,
        alpha=0.8,
        edgecolor="none",
        legend=False,
    )
    sns.scatterplot(
        data=one[one.bias_sq > 1e-9 * one.rhs],
        x="teacher_mse_to_bcpd",
        y="bias_sq",
        color="0.5",
        marker="x",
        ax=ax,
        s=14,
        label="actual squared bias",
    )
    ax.set(
        xscale="log",
        yscale="log",
        xlabel="teacher MSE to p*: E‖p_t − p*‖²",
        ylabel="bias term (E‖p_t − p*‖‖l‖)²",
        title="bias term grows with the teacher's MSE",
    )
    ax.legend(fontsize=7)

    ax = axes[2]
    err = frame.lhs_se
    ax.errorbar(frame.exact, frame.lhs, yerr=2 * err, fmt=".", ms=3, alpha=0.5, color="C0")
    lo, hi = float(frame.exact.min()), float(frame.exact.max())
    ax.plot([lo, hi], [lo, hi], "k--", lw=1)
    ax.set(
        xscale="log",
        yscale="log",
        xlabel="exact: Var/N + (E[p_tᵀl] − R)²",
        ylabel="left side (Monte Carlo, ±2 se)",
        title="Monte Carlo matches the exact identity",
    )
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def render(run_dir) -> dict:
    """Recompute summary.json and redraw bound.png/.pdf from results.parquet (no training)."""
    import json
    from pathlib import Path

    from ... import io
    from .study import summarize

    run_dir = Path(run_dir)
    frame = pd.read_parquet(run_dir / "results.parquet")
    summary = summarize(frame)
    path = run_dir / "summary.json"
    old = json.loads(path.read_text()) if path.exists() else {}
    old.update(summary)
    io.write_json(path, old)
    fig = plot_bound(frame, title=f"bound check ({frame.cfg_preset.iloc[0]} preset)")
    io.save_figure(fig, run_dir / "bound.png", dpi=130)
    io.save_figure(fig, run_dir / "bound.pdf")
    plt.close(fig)
    return summary


__all__ = ["plot_bound", "render"]
