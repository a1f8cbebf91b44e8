"""``bcpd-sim cifar100 table RUN_DIRS... [--out FILE]``: the CE-vs-MSE teacher table."""

from __future__ import annotations

import argparse
import sys

NAME = "table"
HELP = "paper-style table of student accuracy with CE vs MSE teachers, from distillation runs"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "run_dirs",
        nargs="+",
        metavar="RUN_DIR",
        help="distillation run directories, or folders (e.g. a sweep's) searched for them",
    )
    parser.add_argument(
        "--out",
        default=None,
        help="write FILE.md and FILE.csv (give either suffix); the Markdown also goes to stdout",
    )
    parser.add_argument("--baseline", default="ce", help="teacher loss of the baseline columns")
    parser.add_argument("--treatment", default="mse", help="teacher loss compared with it")
    parser.add_argument("--level", type=float, default=0.95, help="confidence level of intervals")


def run(args: argparse.Namespace) -> int:
    from ...validation import check_fraction
    from ..table import build_table, collect_runs, to_markdown, write_outputs

    level = check_fraction("level", args.level)
    runs = collect_runs(args.run_dirs)
    table = build_table(runs, baseline=args.baseline, treatment=args.treatment, level=level)
    sys.stdout.write(to_markdown(table))
    if args.out:
        for path in write_outputs(table, args.out):
            print(f"wrote {path}", file=sys.stderr)
    return 0
