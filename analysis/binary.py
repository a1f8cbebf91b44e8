"""Regenerate the binary (merged-class) study's committed figures and tables.

python analysis/binary.py [--preset quick|cnn_tiny|...] [--out DIR]

quick (toy MLPs) writes figures/binary.png, binary_table.md, binary_summary.json; cnn_tiny
(resnet8 on synthetic images) writes the same with a _cnn_tiny suffix.
Runs resume from --out (default runs/binary-<preset>).
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from bcpd_sim import io
from bcpd_sim.studies.binary.cnn import CNN_PRESETS, load_cnn_config, run_binary_cnn
from bcpd_sim.studies.binary.mlp import load_config, run_binary, summarize
from bcpd_sim.studies.binary.plot import format_table, render

FIGURES = Path(__file__).resolve().parent.parent / "figures"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--preset", default="quick")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    out = Path(args.out or f"runs/binary-{args.preset}")
    if args.preset in CNN_PRESETS:
        run_binary_cnn(load_cnn_config(args.preset), out)
    else:
        run_binary(load_config(args.preset), out)
    summary = render(out, summarize)
    suffix = "" if args.preset == "quick" else f"_{args.preset}"
    FIGURES.mkdir(exist_ok=True)
    shutil.copy(out / "binary.png", FIGURES / f"binary{suffix}.png")
    shutil.copy(out / "summary.json", FIGURES / f"binary{suffix}_summary.json")
    table = format_table(summary)
    io.write_text(FIGURES / f"binary{suffix}_table.md", table + "\n")
    print(table)


if __name__ == "__main__":
    main()
