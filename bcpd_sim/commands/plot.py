"""``bcpd-sim plot RUN_DIR``: redraw a Figure-1 run's summary and figures without training."""

from __future__ import annotations

import argparse

NAME = "plot"
HELP = "redraw figure1.png/.pdf and summary.json of a finished figure1 run (no training)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", help="a directory written by `bcpd-sim figure1`")


def run(args: argparse.Namespace) -> int:
    from ..figure1.report import render
    from ..figure1.summary import format_summary

    print(format_summary(render(args.run_dir)))
    print(f"\nwrote {args.run_dir}/summary.json, figure1.png, figure1.pdf")
    return 0
