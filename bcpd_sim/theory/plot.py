"""The Theorem-1 figure: empirical risk against the theorem's prediction, per predictor."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

KIND_STYLE = {
    "exact": ("#1b9e77", "*", 160),
    "degraded": ("#7570b3", "o", 50),
    "random": ("#e6ab02", "s", 50),
    "trained": ("#d95f02", "D", 55),
    "control": ("#e7298a", "X", 90),
}
TITLES = {
    "mse": "MSE (Brier): E||q - e_Y||² vs E||q - p*||² + E[1 - ||p*||²]",
    "ce": "CE: E[-log q_Y] vs E KL(p* || q) + E H(p*)",
}


def _spread_labels(ax, xs, ys, texts, *, min_gap: float = 0.045) -> None:
    """Number the points, skipping a label that would sit within ``min_gap`` (axes fraction) of
    one already placed, so that labels never overlap; every predictor is named in the z panel."""
    placed: list[tuple[float, float]] = []
    to_axes = ax.transData + ax.transAxes.inverted()
    for x, y, text in zip(xs, ys, texts):
        u, v = to_axes.transform((x, y))
        if any(abs(u - a) < min_gap and abs(v - b) < min_gap for a, b in placed):
            continue
        placed.append((u, v))
        ax.annotate(
            text, (x, y), xytext=(5, -10), textcoords="offset points", fontsize=7, color="0.2"
        )


def _z_panel(ax, table: pd.DataFrame, names: list[str], *, limit: float = 5.0) -> None:
    """Each predictor's (risk - prediction) / SE for both losses, with the +-2 band."""
    ax.axvspan(-2, 2, color="#1b9e77", alpha=0.12, label="|z| <= 2")
    ax.axvline(0, color="0.5", lw=1)
    for loss, marker, dy, colour in (("mse", "o", -0.15, "#1f78b4"), ("ce", "s", 0.15, "#e31a1c")):
        rows = table[table.loss == loss].set_index("predictor")
        for i, name in enumerate(names):
            if name not in rows.index:
                continue
            z = float(rows.loc[name, "residual_z"])
            shown = float(np.clip(z, -limit, limit))
            ax.scatter(
                shown,
                i + dy,
                marker=marker if abs(z) <= limit else (">" if z > 0 else "<"),
                s=36,
                color=colour,
                edgecolor="k",
                linewidth=0.4,
                zorder=3,
                label=f"{loss.upper()} risk" if i == 0 else None,
            )
            if abs(z) > limit:
                ax.annotate(
                    f"z = {z:+.0f}",
                    (shown, i + dy),
                    xytext=(-6 if z > 0 else 6, 0),
                    textcoords="offset points",
                    ha="right" if z > 0 else "left",
                    va="center",
                    fontsize=7,
                    color=colour,
                )
    ax.set_yticks(
        range(len(names)), [f"{i + 1:>2}  {n}" for i, n in enumerate(names)], fontsize=7.5
    )
    ax.invert_yaxis()
    ax.set_xlim(-limit - 0.3, limit + 0.3)
    ax.set_xlabel("(risk - prediction) / SE")
    ax.set_title("each predictor's z; honest ones stay inside +-2", fontsize=10)
    ax.grid(alpha=0.3, axis="x")
    ax.legend(fontsize=7.5, loc="lower right")


def plot_theorem1(table: pd.DataFrame, *, title: str | None = None):
    """Three panels: MSE and CE risk (±1.96 SE) against the theorem's prediction, and each
    predictor's (risk - prediction) / SE with the ±2 band."""
    fig, axes = plt.subplots(1, 3, figsize=(19, 6.4), gridspec_kw={"width_ratios": [1, 1, 1.05]})
    names = list(dict.fromkeys(table.predictor))
    for ax, loss in zip(axes[:2], ("mse", "ce")):
        rows = table[table.loss == loss]
        lo = min(rows.predicted_risk.min(), rows.empirical_risk.min())
        hi = max(rows.predicted_risk.max(), rows.empirical_risk.max())
        pad = 0.05 * (hi - lo)
        ax.plot(
            [lo - pad, hi + pad],
            [lo - pad, hi + pad],
            color="0.6",
            lw=1,
            ls="--",
            zorder=0,
            label="identity: risk = prediction",
        )
        for kind, group in rows.groupby("kind", sort=False):
            color, marker, size = KIND_STYLE.get(kind, ("0.3", "o", 40))
            ax.errorbar(
                group.predicted_risk,
                group.empirical_risk,
                yerr=1.96 * group.risk_se,
                fmt="none",
                ecolor=color,
                elinewidth=1,
                capsize=2,
            )
            ax.scatter(
                group.predicted_risk,
                group.empirical_risk,
                c=color,
                marker=marker,
                s=size,
                label=kind,
                edgecolor="k",
                linewidth=0.4,
                zorder=3,
            )
        ax.set_xlabel("theorem's prediction (distance to p* + model-free term)")
        ax.set_ylabel("empirical risk on sampled labels (±1.96 SE)")
        ax.set_title(TITLES[loss], fontsize=10)
        ax.set_xlim(lo - pad, hi + pad)
        ax.set_ylim(lo - pad, hi + pad)
        ax.grid(alpha=0.3)
        _spread_labels(
            ax,
            rows.predicted_risk,
            rows.empirical_risk,
            [str(names.index(p) + 1) for p in rows.predictor],
        )
    axes[0].legend(fontsize=8, loc="upper left")
    _z_panel(axes[2], table, names)
    fig.suptitle(
        title or "Theorem 1, numerically: honest predictors lie on the identity line", fontsize=12
    )
    fig.text(
        0.5,
        0.005,
        "z = (risk - prediction) / its standard error. Theorem 1 says |z| stays within sampling noise for every predictor "
        "that does not look at the label; the control shows the test has power. Numbers name predictors (right panel); "
        "a number is left off where it would overlap another.",
        ha="center",
        fontsize=8.5,
        color="0.3",
    )
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    return fig
