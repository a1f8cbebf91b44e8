"""``bcpd-sim semisup``: semi-supervised distillation from CE and MSE teachers (paper Figure 2)."""

from __future__ import annotations

import argparse

NAME = "semisup"
HELP = (
    "semi-supervised KD (paper Figure 2): teachers on a labelled fraction f, students on the pool"
)
DESCRIPTION = (
    "Teachers learn the labelled fraction f of a pool with CE or MSE; students learn the teachers' "
    "outputs on the unlabelled rest plus CE on the labelled part. Writes results.parquet, "
    "summary.json, semisup.png/.pdf and config.toml."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..config import add_config_arguments
    from ..studies.semisup import PRESETS

    add_config_arguments(parser, presets=sorted(PRESETS), default_preset="quick")
    parser.add_argument("--out", default=None, help="run directory (default runs/semisup-<preset>)")
    parser.add_argument(
        "--plot-only", action="store_true", help="redraw from an existing --out, no training"
    )


def run(args: argparse.Namespace) -> int:
    from ..rundir import open_run_dir
    from ..studies.config import to_toml
    from ..studies.semisup import load_config, run_semisup
    from ..studies.semisup_plot import format_table, render

    cfg = load_config(args.preset, file=args.config, overrides=args.overrides)
    if args.print_config:
        print(to_toml(cfg))
        return 0
    out = args.out or f"runs/semisup-{args.preset}"
    if not args.plot_only:
        with open_run_dir(out):  # one writer at a time
            run_semisup(cfg, out)
    print(format_table(render(out)))
    print(f"wrote {out}/results.parquet, summary.json, semisup.png, semisup.pdf")
    return 0
