"""Regenerate figures/figure1.png, figures/figure1_paired.png and the tables from the quick preset.

    python analysis/figure1.py [--out runs/figure1-quick]

Trains (or resumes) the run in --out, then copies the figure, the correlation table and the
summary into figures/. Rerunning reuses finished cells.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from bcpd_sim.figure1 import load_config, render, run_figure1
from bcpd_sim.figure1.summary import format_summary

FIGURES = Path(__file__).resolve().parent.parent / "figures"


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--out", default="runs/figure1-quick")
    ap.add_argument("--preset", default="quick")
    args = ap.parse_args()
    run_figure1(load_config(args.preset), args.out)
    summary = render(args.out)
    FIGURES.mkdir(exist_ok=True)
    for src, dst in (
        ("figure1.png", "figure1.png"),
        ("paired.png", "figure1_paired.png"),
        ("correlations.csv", "figure1_correlations.csv"),
        ("summary.json", "figure1_summary.json"),
    ):
        shutil.copy(Path(args.out) / src, FIGURES / dst)
    print(format_summary(summary))
    print(
        f"wrote {FIGURES}/figure1.png, figure1_paired.png, figure1_correlations.csv, figure1_summary.json"
    )


if __name__ == "__main__":
    main()
