"""``bcpd-sim cifar100 distill``: distil a trained teacher checkpoint into a student.

Rerunning the same command with the same ``--out`` resumes an interrupted run (or just reports a
finished one).
"""

from __future__ import annotations

import argparse

NAME = "distill"
HELP = "distil a teacher checkpoint into a student with KD, DKD, AT, PKT, SP, RKD or FitNet"
DESCRIPTION = (
    "Train a student from a frozen teacher checkpoint (written by 'bcpd-sim cifar100 teacher'). "
    "Methods: kd (0.1 CE + 0.9 KL at T=4), dkd (CE + alpha TCKD + beta NCKD, beta by teacher, "
    "20-epoch warm-up), at, pkt, sp, rkd, fitnet (CE + feature term, CRD-benchmark weights). "
    "Override a method's hyper-parameters with --option KEY=VALUE. Data settings default to the "
    "teacher's (same data source, synthetic world and validation split). Every flag is also a key "
    "of --config FILE.toml and of --set KEY=VALUE; --print-config shows the validated config."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ...config import parse_override
    from ..configs import add_config_flags
    from ..distill.trainer import DistillConfig

    add_config_flags(parser, DistillConfig)
    parser.add_argument(
        "--option",
        action="append",
        type=parse_override,
        default=[],
        metavar="KEY=VALUE",
        help="method hyper-parameter, e.g. --option beta=4 --option temperature=2 (repeatable; "
        "same as --set method_options.KEY=VALUE)",
    )


def config_from_args(args: argparse.Namespace):
    """The validated :class:`DistillConfig` for parsed command-line arguments."""
    from ..configs import config_from_args as load
    from ..distill.trainer import DistillConfig

    options = {"method_options": dict(args.option)} if args.option else None
    return load(DistillConfig, args, options)


def run(args: argparse.Namespace) -> int:
    from ... import distributed
    from ..configs import print_config
    from ..distill.trainer import distill

    config = config_from_args(args)
    if args.print_config:
        print_config(config)
        return 0
    # One writer at a time; under torchrun rank 0 holds the lock and reports.
    with distributed.main_process_lock(config.out):
        result = distill(config)
    if not distributed.is_main_process():
        return 0
    best = result["test_acc_best"]
    print(
        f"{result['method']} {result['teacher_arch']}({result['teacher_loss']}) -> "
        f"{result['student_arch']} seed {result['seed']}: test acc last epoch "
        f"{100 * result['test_acc_last']:.2f}%, best-val epoch "
        + ("n/a" if best is None else f"{100 * best:.2f}% (epoch {result['best_epoch']})")
        + f"; teacher {100 * result['teacher_test_acc']:.2f}%  [{config.out}]"
    )
    return 0
