"""Run the Theorem-1 check and write its table, summary and figure into a folder."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from .. import io
from ..mixtures import make_mixture
from ..provenance import environment
from .plot import plot_theorem1
from .verify import Theorem1Check, verify_theorem1


def run_theorem1(
    out: str | Path,
    *,
    mixture: str = "paper",
    mixture_seed: int = 0,
    n: int = 100_000,
    seed: int = 1,
    train_n: int = 5_000,
) -> Theorem1Check:
    """Check Theorem 1 on a named mixture; write theorem1.csv, rank_agreement.csv,
    summary.json and theorem1.png/.pdf into ``out``."""
    dist = make_mixture(mixture, seed=mixture_seed)
    result = verify_theorem1(dist, n=n, seed=seed, train_n=train_n)
    out = Path(out)
    config = {
        "mixture": mixture,
        "mixture_seed": mixture_seed,
        "n": n,
        "seed": seed,
        "train_n": train_n,
    }
    table = result.table.assign(**{k: v for k, v in config.items()})
    io.write_table(out / "theorem1.csv", table)
    io.write_table(out / "rank_agreement.csv", result.rank_agreement)
    honest = result.honest()
    io.write_json(
        out / "summary.json",
        {
            "config": config,
            "max_abs_residual_z_honest": float(honest.residual_z.abs().max()),
            "control_residual_z": result.table[result.table.peeks_at_label]
            .set_index("loss")
            .residual_z.to_dict(),
            "rank_agreement": result.rank_agreement.to_dict(orient="records"),
            "environment": environment(),
        },
    )
    fig = plot_theorem1(
        table, title=f"Theorem 1 on the '{mixture}' mixture, n = {n:,} test points (seed {seed})"
    )
    for suffix in (".png", ".pdf"):
        io.save_figure(fig, out / f"theorem1{suffix}", dpi=150)
    plt.close(fig)
    return result


def format_table(result: Theorem1Check) -> str:
    """The table as aligned text for the terminal."""
    cols = [
        "predictor",
        "loss",
        "empirical_risk",
        "risk_se",
        "predicted_risk",
        "distance",
        "model_free",
        "residual_z",
    ]
    with pd.option_context(
        "display.width", 200, "display.max_columns", 20, "display.max_colwidth", 40
    ):
        text = result.table[cols].to_string(index=False, float_format=lambda v: f"{v:.4f}")
        ranks = result.rank_agreement.to_string(index=False, float_format=lambda v: f"{v:.3f}")
    return f"{text}\n\nRank agreement of risk with distance across honest predictors:\n{ranks}"
