"""The Theorem-1 figure: empirical risk against the theorem's prediction, per predictor."""

from __future__ import annotations

import matplotlib.pyplot as plt
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


def plot_theorem1(table: pd.DataFrame, *, title: str | None = None):
    """Two panels (MSE, CE): each predictor's empirical risk (±1.96 SE) against the prediction."""
    fig, axes = plt.subplots(1, 2, figsize=(15, 5.8))
    for ax, loss in zip(axes, ("mse", "ce")):
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
        key = []
        for i, (_, r) in enumerate(rows.iterrows(), start=1):
            ax.annotate(
                str(i),
                (r.predicted_risk, r.empirical_risk),
                xytext=(4, -10),
                textcoords="offset points",
                fontsize=7,
                color="0.2",
            )
            z = "control, peeks at y" if r.peeks_at_label else f"z = {r.residual_z:+.1f}"
            key.append(f"{i:>2}  {r.predictor}  ({z})")
        ax.text(
            1.02,
            0.0,
            "\n".join(key),
            transform=ax.transAxes,
            fontsize=6.8,
            family="monospace",
            va="bottom",
        )
        ax.set_xlabel("theorem's prediction (distance to p* + model-free term)")
        ax.set_ylabel("empirical risk on sampled labels (±1.96 SE)")
        ax.set_title(TITLES[loss], fontsize=10)
        ax.set_xlim(lo - pad, hi + pad)
        ax.set_ylim(lo - pad, hi + pad)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8, loc="upper left")
    fig.suptitle(
        title or "Theorem 1, numerically: honest predictors lie on the identity line", fontsize=12
    )
    fig.text(
        0.5,
        -0.02,
        "z = (risk - prediction) / its standard error. Theorem 1 says |z| stays within sampling noise for every predictor "
        "that does not look at the label; the control shows the test has power.",
        ha="center",
        fontsize=8.5,
        color="0.3",
    )
    fig.tight_layout()
    return fig
