"""``bcpd-sim cifar100 distill``: distil a trained teacher checkpoint into a student.

Rerunning the same command with the same ``--out`` resumes an interrupted run (or just reports a
finished one).
"""

from __future__ import annotations

import argparse
from typing import Any

NAME = "distill"
HELP = "distil a teacher checkpoint into a student with KD, DKD, CRD, AT, PKT, SP, RKD or FitNet"
DESCRIPTION = (
    "Train a student from a frozen teacher checkpoint (written by 'bcpd-sim cifar100 teacher'). "
    "Methods: kd (0.1 CE + 0.9 KL at T=4), dkd (CE + alpha TCKD + beta NCKD, beta by teacher, "
    "20-epoch warm-up), crd (CE + 0.8 NCE over a 16,384-negative memory bank; add KD with "
    "--option kd_weight=1), at, pkt, sp, rkd, fitnet (CE + feature term, CRD-benchmark weights). "
    "Override a method's hyper-parameters with --option KEY=VALUE. Data settings default to the "
    "teacher's (same data source, synthetic world and validation split). Every flag is also a key "
    "of --config FILE.toml and of --set KEY=VALUE; --print-config shows the validated config."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..configs import add_config_flags
    from ..distill.trainer import DistillConfig

    add_config_flags(parser, DistillConfig)
    add_option_flag(parser, "--option beta=4 --option temperature=2")


def add_option_flag(parser: argparse.ArgumentParser, example: str) -> None:
    """``--option KEY=VALUE`` (repeatable): a method hyper-parameter, as ``method_options``."""
    from ...config import parse_override

    parser.add_argument(
        "--option",
        action="append",
        type=parse_override,
        default=[],
        metavar="KEY=VALUE",
        help=f"method hyper-parameter, e.g. {example} (repeatable; same as --set "
        "method_options.KEY=VALUE)",
    )


def option_values(args: argparse.Namespace) -> dict[str, Any] | None:
    """The ``--option`` values as config keys (None: none given)."""
    return {"method_options": dict(args.option)} if args.option else None


def run(args: argparse.Namespace) -> int:
    from ..configs import run_command
    from ..distill.trainer import DistillConfig, distill

    return run_command(DistillConfig, args, distill, report, extra=option_values(args))


def report(config: Any, result: dict[str, Any]) -> None:
    """The run's headline numbers, on stdout."""
    best = result["test_acc_best"]
    print(
        f"{result['method']} {result['teacher_arch']}({result['teacher_loss']}) -> "
        f"{result['student_arch']} seed {result['seed']}: test acc last epoch "
        f"{100 * result['test_acc_last']:.2f}%, best-val epoch "
        + ("n/a" if best is None else f"{100 * best:.2f}% (epoch {result['best_epoch']})")
        + f"; teacher {100 * result['teacher_test_acc']:.2f}%  [{config.out}]"
    )
