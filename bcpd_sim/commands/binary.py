"""``bcpd-sim binary``: CE vs MSE teachers for binary students on merged classes (paper Table 4)."""

from __future__ import annotations

import argparse

NAME = "binary"
HELP = "binary super-classes (paper Table 4): CE vs MSE teachers, KD students, exact p*"
DESCRIPTION = (
    "Merges a mixture's classes into two super-classes (first half vs second half by default), "
    "trains CE and MSE teachers on the merged labels, distils students (kd, soft), and writes "
    "results.parquet, summary.json, binary.png/.pdf and config.toml."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..studies.binary.mlp import PRESETS

    parser.add_argument("--preset", default="quick", choices=sorted(PRESETS))
    parser.add_argument("--config", help="a TOML file whose keys override the preset")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one key, e.g. seeds=4 (repeatable)",
    )
    parser.add_argument("--out", default=None, help="run directory (default runs/binary-<preset>)")
    parser.add_argument("--print-config", action="store_true", help="print the settings and exit")
    parser.add_argument(
        "--plot-only", action="store_true", help="redraw from an existing --out, no training"
    )


def run(args: argparse.Namespace) -> int:
    from ..studies.binary.mlp import load_config, run_binary, summarize
    from ..studies.binary.plot import format_table, render
    from ..studies.config import to_toml

    cfg = load_config(args.preset, file=args.config, overrides=args.overrides)
    if args.print_config:
        print(to_toml(cfg))
        return 0
    out = args.out or f"runs/binary-{args.preset}"
    if not args.plot_only:
        run_binary(cfg, out)
    print(format_table(render(out, summarize)))
    print(f"wrote {out}/results.parquet, summary.json, binary.png, binary.pdf")
    return 0
