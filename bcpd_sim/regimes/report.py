"""Render a regimes run directory's summary and figures from its results (no training)."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt

from .. import io
from .config import AXES
from .plot import plot_regimes
from .study import load_run
from .summary import write_summary


def render(run_dir: str | Path) -> dict:
    """Write summary.json and regimes.png/.pdf from results.parquet."""
    run_dir = Path(run_dir)
    cfg, results = load_run(run_dir)
    summary = write_summary(run_dir, results, cfg)
    loss = "mse" if "mse" in cfg.teacher.losses else [v for v in cfg.teacher.losses if v != "ce"][0]
    fixed = ", ".join(
        f"{a}={cfg.axis_values(a)[0]}" for a in AXES if a not in (cfg.map.x, cfg.map.y)
    )
    kind = "MLP teachers" if cfg.model == "mlp" else "CIFAR ResNet teachers on synthetic images"
    title = (
        f"When does an MSE teacher help? {kind}, preset '{cfg.preset}' ({fixed}); "
        f"teachers at their tuned lr; {summary['n_draws']} draws"
    )
    fig = plot_regimes(summary, loss=loss, lr_rule="tuned", title=title)
    for suffix in (".png", ".pdf"):
        io.save_figure(fig, run_dir / f"regimes{suffix}", dpi=120)
    plt.close(fig)
    return summary
