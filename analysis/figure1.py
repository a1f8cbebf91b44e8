"""Regenerate figures/figure1.png, figures/figure1_paired.png and the tables from the quick preset.

    python analysis/figure1.py [--out runs/figure1-quick]
    python analysis/figure1.py --preset paper     # figures/figure1_paper*.png (about 10 min on 2 cores)

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
    ap.add_argument("--out", default=None, help="run directory (default runs/figure1-<preset>)")
    ap.add_argument("--preset", default="quick")
    args = ap.parse_args()
    args.out = args.out or f"runs/figure1-{args.preset}"
    tag = "" if args.preset == "quick" else f"_{args.preset}"
    run_figure1(load_config(args.preset), args.out)
    summary = render(args.out)
    FIGURES.mkdir(exist_ok=True)
    for src, dst in (
        ("figure1.png", f"figure1{tag}.png"),
        ("paired.png", f"figure1{tag}_paired.png"),
        ("correlations.csv", f"figure1{tag}_correlations.csv"),
        ("summary.json", f"figure1{tag}_summary.json"),
    ):
        shutil.copy(Path(args.out) / src, FIGURES / dst)
    print(format_summary(summary))
    print(f"wrote {FIGURES}/figure1{tag}.png and its _paired.png, _correlations.csv, _summary.json")


if __name__ == "__main__":
    main()
