"""Render a run directory's summary and figures from its results (no training)."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from .. import io
from .config import Figure1Config
from .plot import plot_figure1, plot_paired
from .study import load_run
from .summary import write_summary


def render(
    run_dir: str | Path,
    *,
    cfg: Figure1Config | None = None,
    results: pd.DataFrame | None = None,
) -> dict:
    """Write summary.json, correlations.csv, partial_correlations.csv, figure1.png/.pdf and
    paired.png into ``run_dir``.

    A run passes its config and results in memory; ``bcpd-sim plot`` gives neither, and they are
    read from ``config.toml`` and ``results.parquet``.
    """
    run_dir = Path(run_dir)
    if cfg is None or results is None:
        cfg, results = load_run(run_dir)
    summary = write_summary(run_dir, results, resamples=cfg.bootstrap)
    d = cfg.data
    title = (
        f"Student accuracy vs teacher distance to p*: preset '{cfg.preset}', mixture '{d.mixture}', "
        f"{d.n_train:,} training points, {len(results)} students"
    )
    title += f", {results.draw.nunique()} draw(s) of the data"
    fig = plot_figure1(results, pd.DataFrame(summary["correlations_across_draws"]), title=title)
    for suffix in (".png", ".pdf"):
        io.save_figure(fig, run_dir / f"figure1{suffix}", dpi=140)
    plt.close(fig)
    if (
        "trained" in set(results.study)
        and results[results.study == "trained"].teacher_loss.nunique() > 1
    ):
        fig = plot_paired(results, summary)
        io.save_figure(fig, run_dir / "paired.png", dpi=140)
        plt.close(fig)
    return summary
