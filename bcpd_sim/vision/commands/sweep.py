"""``bcpd-sim cifar100 sweep``: teachers and distillation runs for a grid, then the table.

Pairs x methods x teacher losses x seeds; finished runs are skipped, interrupted ones resumed.
Local (one run after another) by default; ``--ray-address`` runs the same jobs on a Ray cluster.
"""

from __future__ import annotations

import argparse
import json
import sys

NAME = "sweep"
HELP = "run a grid of teacher->student pairs x methods x teacher losses x seeds (local or Ray)"


def _pair(text: str) -> tuple[str, str]:
    parts = text.replace("->", ":").split(":")
    if len(parts) != 2 or not all(parts):
        raise argparse.ArgumentTypeError(f"expected TEACHER:STUDENT, got {text!r}")
    return parts[0].strip(), parts[1].strip()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..configs import add_config_flags
    from ..sweep import SweepSpec

    add_config_flags(parser, SweepSpec)
    parser.add_argument(
        "--pair",
        dest="pairs",
        action="append",
        type=_pair,
        default=None,
        metavar="TEACHER:STUDENT",
        help="e.g. --pair resnet56:resnet20 (repeatable; config key pairs)",
    )
    parser.add_argument(
        "--method-options",
        default=None,
        metavar="JSON",
        help='per-method hyper-parameters, e.g. \'{"dkd": {"beta": 4}}\' (config key method_options)',
    )
    parser.add_argument(
        "--ray-address",
        default=None,
        help="run on Ray: 'auto', 'ray://HOST:10001', ... (one GPU per run when GPUs exist)",
    )
    parser.add_argument("--dry-run", action="store_true", help="list the jobs and exit")


def spec_from_args(args: argparse.Namespace):
    """The validated :class:`SweepSpec` for parsed command-line arguments."""
    from ...errors import ConfigError
    from ..configs import config_from_args
    from ..sweep import SweepSpec

    options = None
    if args.method_options:
        try:
            options = json.loads(args.method_options)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"--method-options is not valid JSON ({exc})") from None
    pairs = None if args.pairs is None else [list(p) for p in args.pairs]
    return config_from_args(SweepSpec, args, {"pairs": pairs, "method_options": options})


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ...rundir import open_run_dir
    from ..configs import print_config
    from ..sweep import plan, run_sweep
    from ..table import build_table, collect_runs, write_outputs

    spec = spec_from_args(args)
    if args.print_config:
        print_config(spec)
        return 0
    if args.dry_run:
        teachers, runs = plan(spec)
        for job in [*teachers, *runs]:
            print(f"{'done' if job.done else 'todo'}  {job.kind:8s} {job.name}")
        return 0
    log = lambda msg: print(msg, file=sys.stderr)  # noqa: E731
    with open_run_dir(spec.out):  # one writer at a time
        report = run_sweep(spec, ray_address=args.ray_address, log=log)
    print(
        f"sweep: {len(report.ran)} run, {len(report.skipped)} already finished, "
        f"{len(report.failed)} failed"
    )
    for name, err in report.failed.items():
        print(f"  FAILED {name}: {err}", file=sys.stderr)
    runs_dir = Path(spec.out) / "runs"
    losses = set(spec.teacher_losses)
    if runs_dir.is_dir() and {"ce", "mse"} <= losses:
        try:
            table = build_table(collect_runs([runs_dir]))
        except (ValueError, FileNotFoundError) as exc:
            print(f"sweep: no table yet ({exc})", file=sys.stderr)
        else:
            for path in write_outputs(table, Path(spec.out) / "table.md"):
                print(f"wrote {path}")
    return 0 if report.ok else 1
