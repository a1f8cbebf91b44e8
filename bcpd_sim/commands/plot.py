"""``bcpd-sim plot RUN_DIR``: redraw a Figure-1 run's summary and figures without training."""

from __future__ import annotations

import argparse

NAME = "plot"
HELP = "redraw the summary and figures of a finished figure1 or regimes run (no training)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "run_dir", help="a directory written by `bcpd-sim figure1` or `bcpd-sim regimes`"
    )


def run(args: argparse.Namespace) -> int:
    from ..regimes.study import is_regimes_run

    if is_regimes_run(args.run_dir):
        from ..regimes.report import render as render_regimes
        from ..regimes.summary import format_summary as format_regimes

        print(format_regimes(render_regimes(args.run_dir)))
        print(f"\nwrote {args.run_dir}/summary.json, regimes.png, regimes.pdf")
        return 0
    from ..figure1.report import render
    from ..figure1.summary import format_summary

    print(format_summary(render(args.run_dir)))
    print(f"\nwrote {args.run_dir}/summary.json, figure1.png, figure1.pdf")
    return 0
