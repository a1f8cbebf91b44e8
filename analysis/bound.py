"""Regenerate figures/bound.png, bound_summary.json and bound_cases.csv (quick preset, ~2 min).

python analysis/bound.py [--preset quick|smoke]
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

import pandas as pd

from bcpd_sim.studies.bound.plot import render
from bcpd_sim.studies.bound.study import load_config, run_bound

FIGURES = Path(__file__).resolve().parent.parent / "figures"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--preset", default="quick")
    args = parser.parse_args()
    suffix = "" if args.preset == "quick" else f"_{args.preset}"
    with tempfile.TemporaryDirectory() as tmp:
        run_bound(load_config(args.preset), tmp)
        summary = render(tmp)
        FIGURES.mkdir(exist_ok=True)
        shutil.copy(Path(tmp) / "bound.png", FIGURES / f"bound{suffix}.png")
        shutil.copy(Path(tmp) / "summary.json", FIGURES / f"bound{suffix}_summary.json")
        frame = pd.read_parquet(Path(tmp) / "results.parquet")
        cols = [c for c in frame.columns if not c.startswith("cfg_")]
        frame[cols].to_csv(FIGURES / f"bound{suffix}_cases.csv", index=False, float_format="%.6g")
    print(json.dumps(summary, indent=2))
    print(f"wrote {FIGURES / f'bound{suffix}.png'}")


if __name__ == "__main__":
    main()
