"""Regenerate figures/regimes.png (and .pdf, and the table of gains) from the regimes quick preset.

    python analysis/regimes.py [--preset quick] [--out runs/regimes-quick]

Trains (or resumes) the run in --out, then copies the figure and a table of the paired gains per
map cell into figures/ (the full summary.json stays in the run directory). Rerunning reuses finished cells.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import pandas as pd

from bcpd_sim import io
from bcpd_sim.regimes.config import load_config
from bcpd_sim.regimes.report import render
from bcpd_sim.regimes.study import run_regimes
from bcpd_sim.regimes.summary import format_summary

FIGURES = Path(__file__).resolve().parent.parent / "figures"


def gain_table(summary: dict) -> pd.DataFrame:
    """One row per map cell, lr rule, student inputs, student loss and compared loss."""
    x, y = summary["map"]["x"], summary["map"]["y"]
    rows = []
    for rec in summary["cells"]:
        a = rec["student_acc"]["across_draws"]
        rows.append(
            {
                x: rec[x],
                y: rec[y],
                "loss": f"{rec['loss_a']} - {rec['loss_b']}",
                "lr_rule": rec["lr_rule"],
                "student_inputs": rec["student_inputs"],
                "student_loss": rec["student_loss"],
                "student_gain_pts": 100 * a["mean"],
                "ci_low_pts": 100 * a["ci_low"],
                "ci_high_pts": 100 * a["ci_high"],
                "gain_last_epoch_pts": 100 * rec["student_acc_last"]["across_draws"]["mean"],
                "teacher_acc_diff_pts": 100 * rec["teacher_acc"]["across_draws"]["mean"],
                "mse_to_bcpd_ratio": rec["distance_ratio"],
                "ce_train_acc": rec["ce_train_acc"],
                "n_pairs": rec["n_pairs"],
            }
        )
    return pd.DataFrame(rows)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--preset", default="quick")
    ap.add_argument("--out", default=None, help="run directory (default runs/regimes-<preset>)")
    args = ap.parse_args()
    out = Path(args.out or f"runs/regimes-{args.preset}")
    tag = "" if args.preset == "quick" else f"_{args.preset}"
    run_regimes(load_config(args.preset), out)
    summary = render(out)
    FIGURES.mkdir(exist_ok=True)
    for src, dst in (
        ("regimes.png", f"regimes{tag}.png"),
        ("regimes.pdf", f"regimes{tag}.pdf"),
    ):
        shutil.copy(out / src, FIGURES / dst)
    io.write_table(FIGURES / f"regimes{tag}_gains.csv", gain_table(summary))
    print(format_summary(summary))
    print(f"wrote {FIGURES}/regimes{tag}.png, .pdf, _gains.csv")


if __name__ == "__main__":
    main()
