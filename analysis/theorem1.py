"""Regenerate figures/theorem1.png (and .csv) with the default settings.

python analysis/theorem1.py              # recompute the check, then draw
python analysis/theorem1.py --replot     # redraw from the committed figures/theorem1.csv

"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from bcpd_sim import io
from bcpd_sim.theory.plot import plot_theorem1
from bcpd_sim.theory.report import format_table, run_theorem1

FIGURES = Path(__file__).resolve().parent.parent / "figures"


def replot() -> None:
    table = pd.read_csv(FIGURES / "theorem1.csv")
    c = table.iloc[0]
    fig = plot_theorem1(
        table,
        title=f"Theorem 1 on the '{c.mixture}' mixture, n = {c.n:,} test points (seed {c.seed})",
    )
    io.save_figure(fig, FIGURES / "theorem1.png", dpi=150)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--replot", action="store_true", help="redraw from figures/theorem1.csv")
    if ap.parse_args().replot:
        replot()
    else:
        with tempfile.TemporaryDirectory() as tmp:
            result = run_theorem1(tmp, mixture="paper", n=100_000, seed=1)
            FIGURES.mkdir(exist_ok=True)
            for name in ("theorem1.png", "theorem1.csv"):
                shutil.copy(Path(tmp) / name, FIGURES / name)
        print(format_table(result))
    print(f"wrote {FIGURES / 'theorem1.png'}")


if __name__ == "__main__":
    main()
