"""``bcpd-sim bound``: check the distillation bound with exact p* for many teachers and students."""

from __future__ import annotations

import argparse

NAME = "bound"
HELP = "Monte Carlo check of the distillation bound (Menon et al. 2021) with exact p*"
DESCRIPTION = (
    "For fixed students and many teachers (simulated and trained with CE / MSE), estimates "
    "E_S[(R~ - R)^2] by Monte Carlo over many sets S and compares it with Var/N + "
    "(E||p_t - p*|| ||l||)^2; writes results.parquet, summary.json, bound.png/.pdf, config.toml."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..config import add_config_arguments
    from ..studies.bound.study import PRESETS

    add_config_arguments(parser, presets=sorted(PRESETS), default_preset="quick")
    parser.add_argument("--out", default=None, help="run directory (default runs/bound-<preset>)")
    parser.add_argument(
        "--plot-only", action="store_true", help="redraw from an existing --out, no training"
    )


def run(args: argparse.Namespace) -> int:
    from ..rundir import open_run_dir
    from ..studies.bound.plot import render
    from ..studies.bound.study import load_config, run_bound
    from ..studies.config import to_toml

    cfg = load_config(args.preset, file=args.config, overrides=args.overrides)
    if args.print_config:
        print(to_toml(cfg))
        return 0
    out = args.out or f"runs/bound-{args.preset}"
    if not args.plot_only:
        with open_run_dir(out):  # one writer at a time
            run_bound(cfg, out)
    s = render(out)
    ratio = s["slack_ratio_rhs_over_lhs"]
    print(
        f"bound holds in {s['holds']} / {s['cases']} cases "
        f"({s['holds_within_2se']} within 2 standard errors; worst z = {s['max_z_lhs_above_rhs']:+.2f})\n"
        f"RHS / LHS: min {ratio['min']:.3g}, median {ratio['median']:.3g}, max {ratio['max']:.3g}\n"
        f"Monte Carlo within 3 se of the exact identity: {s['identity_within_3se']} / {s['cases']}\n"
        f"Spearman(bias term, teacher MSE to p*), median over students: "
        f"{s['spearman_bias_term_vs_teacher_mse_median']:+.3f}"
    )
    print(f"wrote {out}/results.parquet, summary.json, bound.png, bound.pdf")
    return 0
