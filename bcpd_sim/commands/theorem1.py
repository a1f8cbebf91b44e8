"""``bcpd-sim theorem1``: check Theorem 1 and its CE analogue over many predictors."""

from __future__ import annotations

import argparse

NAME = "theorem1"
HELP = "check Theorem 1 (MSE risk = MSE to the BCPD + model-free term) and its CE analogue"
DESCRIPTION = (
    "Scores many predictors (the BCPD, degraded and random ones, trained models and a "
    "label-peeking control) on a sample with known p*, prints risk vs the theorem's prediction, "
    "and writes theorem1.csv, summary.json and theorem1.png/.pdf."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..mixtures import list_mixtures

    parser.add_argument(
        "--mixture", default="paper", choices=list_mixtures(), help="distribution preset"
    )
    parser.add_argument(
        "--mixture-seed", type=int, default=0, help="seed of the distribution's parameters"
    )
    parser.add_argument("--n", type=int, default=100_000, help="test points sampled")
    parser.add_argument("--seed", type=int, default=1, help="sampling seed")
    parser.add_argument(
        "--train-n", type=int, default=5_000, help="training points for the trained predictors"
    )
    parser.add_argument("--out", default="runs/theorem1", help="output folder")


def run(args: argparse.Namespace) -> int:
    from ..rundir import open_run_dir
    from ..theory.report import check_settings, format_table, run_theorem1

    settings = {
        "mixture": args.mixture,
        "mixture_seed": args.mixture_seed,
        "n": args.n,
        "seed": args.seed,
        "train_n": args.train_n,
    }
    check_settings(**settings)  # before the folder is created
    with open_run_dir(args.out):  # one writer at a time
        result = run_theorem1(args.out, **settings)
    print(format_table(result))
    print(f"\nwrote {args.out}/theorem1.csv, summary.json, theorem1.png, theorem1.pdf")
    return 0
