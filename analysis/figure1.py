"""Regenerate figures/figure1.png, figures/figure1_paired.png and the tables from the quick preset.

    python analysis/figure1.py [--out runs/figure1-quick] [--workers 4]
    python analysis/figure1.py --preset paper     # figures/figure1_paper*.png (5 draws)

Trains (or resumes) the run in --out, then copies the figure, the correlation tables and the
summary into figures/. Rerunning reuses finished cells. ``--workers N`` trains N cells at once, each
in its own single-threaded process (cells are independent: same seeds and data as a serial run;
floating-point sums may differ in the last bits with the thread count).
"""

from __future__ import annotations

import argparse
import multiprocessing
import shutil
from pathlib import Path

from bcpd_sim.figure1 import load_config, render, run_figure1
from bcpd_sim.figure1.study import check_scheme, plan_cells, run_cell
from bcpd_sim.figure1.summary import format_summary
from bcpd_sim.rundir import open_run_dir

FIGURES = Path(__file__).resolve().parent.parent / "figures"


def _one_thread() -> None:
    import torch

    torch.set_num_threads(1)


def _run_cell(job) -> str:
    cfg, cell, out, fingerprint = job
    run_cell(cfg, cell, Path(out), fingerprint=fingerprint)
    return f"draw {cell.draw}: {cell.id}"


def run_parallel(cfg, out: str, workers: int) -> None:
    """Train the run's missing cells in ``workers`` single-threaded processes (this process holds
    the run directory's lock meanwhile)."""
    check_scheme(out)
    with open_run_dir(out, cfg.to_toml()) as run:
        todo = [c for c in plan_cells(cfg) if run.cached_table(run.path / "cells" / c.file) is None]
        # big cells first, so that the last wave is short
        todo.sort(key=lambda c: (c.study != "trained", c.kind not in ("eta_uniform", "wrong_mass")))
        jobs = [(cfg, c, out, run.fingerprint) for c in todo]
        ctx = multiprocessing.get_context("spawn")
        with ctx.Pool(workers, initializer=_one_thread) as pool:
            for done in pool.imap_unordered(_run_cell, jobs):
                print(f"finished {done}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--out", default=None, help="run directory (default runs/figure1-<preset>)")
    ap.add_argument("--preset", default="quick")
    ap.add_argument("--workers", type=int, default=1, help="cells trained at once (processes)")
    args = ap.parse_args()
    args.out = args.out or f"runs/figure1-{args.preset}"
    tag = "" if args.preset == "quick" else f"_{args.preset}"
    cfg = load_config(args.preset)
    if args.workers > 1:
        run_parallel(cfg, args.out, args.workers)
    run_figure1(cfg, args.out)
    summary = render(args.out)
    FIGURES.mkdir(exist_ok=True)
    for src, dst in (
        ("figure1.png", f"figure1{tag}.png"),
        ("paired.png", f"figure1{tag}_paired.png"),
        ("correlations.csv", f"figure1{tag}_correlations.csv"),
        ("partial_correlations.csv", f"figure1{tag}_partial_correlations.csv"),
        ("summary.json", f"figure1{tag}_summary.json"),
    ):
        shutil.copy(Path(args.out) / src, FIGURES / dst)
    print(format_summary(summary))
    print(f"wrote {FIGURES}/figure1{tag}.png and its _paired.png, _correlations.csv, _summary.json")


if __name__ == "__main__":
    main()
