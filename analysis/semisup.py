"""Regenerate figures/semisup.png, semisup_table.md and semisup_summary.json (quick preset).

python analysis/semisup.py [--preset quick|smoke] [--out DIR]
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from bcpd_sim import io
from bcpd_sim.studies.semisup import load_config, run_semisup
from bcpd_sim.studies.semisup_plot import format_table, render

FIGURES = Path(__file__).resolve().parent.parent / "figures"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--preset", default="quick")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    out = Path(args.out or f"runs/semisup-{args.preset}")
    run_semisup(load_config(args.preset), out)
    summary = render(out)
    suffix = "" if args.preset == "quick" else f"_{args.preset}"
    FIGURES.mkdir(exist_ok=True)
    shutil.copy(out / "semisup.png", FIGURES / f"semisup{suffix}.png")
    shutil.copy(out / "summary.json", FIGURES / f"semisup{suffix}_summary.json")
    table = format_table(summary)
    io.write_text(FIGURES / f"semisup{suffix}_table.md", table + "\n")
    print(table)


if __name__ == "__main__":
    main()
