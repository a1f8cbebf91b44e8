"""``bcpd-sim cifar100 sweep``: teachers and distillation runs for a grid, then the table.

Pairs x methods x teacher losses x seeds; finished runs are skipped, interrupted ones resumed.
Local (one run after another) by default; ``--ray-address`` runs the same jobs on a Ray cluster.
"""

from __future__ import annotations

import argparse
import json
import sys

from ._options import add_recipe_overrides

NAME = "sweep"
HELP = "run a grid of teacher->student pairs x methods x teacher losses x seeds (local or Ray)"


def _pair(text: str) -> tuple[str, str]:
    parts = text.replace("->", ":").split(":")
    if len(parts) != 2 or not all(parts):
        raise argparse.ArgumentTypeError(f"expected TEACHER:STUDENT, got {text!r}")
    return parts[0].strip(), parts[1].strip()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..recipes import list_recipes

    parser.add_argument("--out", required=True, help="sweep folder (teachers/, runs/, table.md)")
    parser.add_argument(
        "--pair",
        dest="pairs",
        action="append",
        type=_pair,
        required=True,
        metavar="TEACHER:STUDENT",
        help="e.g. --pair resnet56:resnet20 (repeatable)",
    )
    parser.add_argument("--methods", nargs="+", default=["kd"], help="distillation methods")
    parser.add_argument("--teacher-losses", nargs="+", default=["ce", "mse"], help="teacher losses")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2], help="student seeds")
    parser.add_argument(
        "--teacher-seeds",
        type=int,
        default=1,
        help="distinct teachers per (arch, loss); student seed s uses teacher seed s %% N",
    )
    parser.add_argument("--recipe", default="standard", help=f"one of {', '.join(list_recipes())}")
    parser.add_argument("--data", default="cifar100", help="cifar100 or synthetic")
    parser.add_argument(
        "--data-dir", default=None, help="CIFAR-100 folder (default: $BCPD_SIM_CIFAR100)"
    )
    parser.add_argument("--synthetic-preset", default="easy", help="synthetic data preset")
    parser.add_argument("--num-classes", type=int, default=None, help="synthetic data: classes")
    parser.add_argument(
        "--data-seed", type=int, default=0, help="validation split / synthetic world seed"
    )
    add_recipe_overrides(parser)
    parser.add_argument(
        "--teacher-epochs", type=int, default=None, help="teachers' epochs (default --epochs)"
    )
    parser.add_argument(
        "--method-options",
        default=None,
        metavar="JSON",
        help='per-method hyper-parameters, e.g. \'{"dkd": {"beta": 4}}\'',
    )
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda[:N] (local runs)")
    parser.add_argument(
        "--ray-address",
        default=None,
        help="run on Ray: 'auto', 'ray://HOST:10001', ... (one GPU per run when GPUs exist)",
    )
    parser.add_argument("--dry-run", action="store_true", help="list the jobs and exit")


def spec_from_args(args: argparse.Namespace):
    from ...errors import ConfigError
    from ..sweep import SweepSpec

    try:
        options = json.loads(args.method_options) if args.method_options else {}
    except json.JSONDecodeError as exc:
        raise ConfigError(f"--method-options is not valid JSON ({exc})") from None
    if not isinstance(options, dict) or not all(isinstance(v, dict) for v in options.values()):
        raise ConfigError('--method-options must be a JSON object {"method": {"option": value}}')
    return SweepSpec(
        out=args.out,
        pairs=args.pairs,
        methods=args.methods,
        teacher_losses=args.teacher_losses,
        seeds=args.seeds,
        teacher_seeds=args.teacher_seeds,
        recipe=args.recipe,
        data=args.data,
        data_dir=args.data_dir,
        synthetic_preset=args.synthetic_preset,
        num_classes=args.num_classes,
        data_seed=args.data_seed,
        epochs=args.epochs,
        teacher_epochs=args.teacher_epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        val_size=args.val_size,
        train_limit=args.train_limit,
        test_limit=args.test_limit,
        method_options=options,
        device=args.device,
    )


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ...rundir import open_run_dir
    from ..sweep import plan, run_sweep
    from ..table import build_table, collect_runs, write_outputs

    spec = spec_from_args(args)
    if args.dry_run:
        teachers, runs = plan(spec)
        for job in [*teachers, *runs]:
            print(f"{'done' if job.done else 'todo'}  {job.kind:8s} {job.name}")
        return 0
    log = lambda msg: print(msg, file=sys.stderr)  # noqa: E731
    with open_run_dir(spec.validate().out):  # one writer at a time
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
