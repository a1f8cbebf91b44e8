"""Regenerate figures/theorem1.png (and .csv) with the default settings.

python analysis/theorem1.py
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from bcpd_sim.theory.report import format_table, run_theorem1

FIGURES = Path(__file__).resolve().parent.parent / "figures"


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        result = run_theorem1(tmp, mixture="paper", n=100_000, seed=1)
        FIGURES.mkdir(exist_ok=True)
        for name in ("theorem1.png", "theorem1.csv"):
            shutil.copy(Path(tmp) / name, FIGURES / name)
    print(format_table(result))
    print(f"wrote {FIGURES / 'theorem1.png'}")


if __name__ == "__main__":
    main()
