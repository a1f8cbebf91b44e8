"""``bcpd-sim regimes``: where, if anywhere, does an MSE teacher give a better student?"""

from __future__ import annotations

import argparse

NAME = "regimes"
HELP = "map the paired student gain of MSE over CE teachers over two axes (exact p*)"
DESCRIPTION = (
    "Trains CE, MSE and other teachers (each at its validation-tuned lr and at a shared lr) over "
    "two chosen axes (teacher width, depth, training-set size, epochs, label noise, classes, "
    "separation, mixture family), distils students on the teachers' own training inputs and on "
    "fresh inputs, and writes results.parquet, teachers.parquet, summary.json and "
    "regimes.png/.pdf into --out. Rerunning the same command resumes."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..config import add_config_arguments
    from ..regimes.config import list_presets

    add_config_arguments(parser, presets=list_presets(), default_preset="quick")
    parser.add_argument("--out", default=None, help="run directory (default runs/regimes-<preset>)")


def run(args: argparse.Namespace) -> int:
    from ..regimes.config import load_config
    from ..regimes.report import render
    from ..regimes.study import run_regimes
    from ..regimes.summary import format_summary

    cfg = load_config(args.preset, file=args.config, overrides=args.overrides)
    if args.print_config:
        print(cfg.to_toml())
        return 0
    out = args.out or f"runs/regimes-{args.preset}"
    run_regimes(cfg, out)  # locks the run directory itself
    print(format_summary(render(out)))
    print(
        f"\nwrote {out}/results.parquet, teachers.parquet, summary.json, regimes.png, regimes.pdf"
    )
    return 0
