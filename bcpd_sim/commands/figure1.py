"""``bcpd-sim figure1``: student accuracy against teacher distance to the BCPD (the main job)."""

from __future__ import annotations

import argparse

NAME = "figure1"
HELP = "train simulated and real teachers, distil students, and plot accuracy vs distance to p*"
DESCRIPTION = (
    "Runs the Figure-1 studies (students on soft targets at controlled distances from p*, and "
    "students distilled from teachers trained with CE, MSE and variants), writes results.parquet, "
    "summary.json, figure1.png/.pdf and the config into --out. Rerunning the same command resumes."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..config import add_config_arguments
    from ..figure1.config import list_presets

    add_config_arguments(parser, presets=list_presets(), default_preset="quick")
    parser.add_argument("--out", default=None, help="run directory (default runs/figure1-<preset>)")


def run(args: argparse.Namespace) -> int:
    from ..figure1.config import load_config
    from ..figure1.report import render
    from ..figure1.study import run_figure1
    from ..figure1.summary import format_summary

    cfg = load_config(args.preset, file=args.config, overrides=args.overrides)
    if args.print_config:
        print(cfg.to_toml())
        return 0
    out = args.out or f"runs/figure1-{args.preset}"
    results = run_figure1(cfg, out)
    summary = render(out, cfg=cfg, results=results)
    print(format_summary(summary))
    print(f"\nwrote {out}/results.parquet, summary.json, figure1.png, figure1.pdf")
    return 0
