"""``bcpd-sim imagenet distill``: distil an ImageNet teacher checkpoint into a student (KD, DKD).

Rerunning the same command with the same ``--out`` resumes an interrupted run, on any number of
processes.
"""

from __future__ import annotations

import argparse

from ...vision.commands.distill import _option
from ._options import add_data_options, add_training_options, data_settings, run_options

NAME = "distill"
HELP = "distil an ImageNet teacher checkpoint into a student with KD or DKD (mdistiller settings)"
DESCRIPTION = (
    "Train a student from a frozen ImageNet teacher checkpoint. Methods: kd (0.5 CE + 0.5 KL at "
    "T=1), dkd (CE 1, alpha 1, T 1, 1-epoch warm-up; beta 0.5 for resnet34->resnet18, 2.0 for "
    "resnet50->mobilenetv1). Data settings default to the teacher's. Run it under torchrun for DDP."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..models import list_imagenet_models

    parser.add_argument(
        "--teacher", required=True, help="teacher checkpoint (RUN/checkpoints/last.pt)"
    )
    parser.add_argument(
        "--student", default="resnet18", help=f"one of {', '.join(list_imagenet_models())}"
    )
    parser.add_argument("--method", default="kd", help="kd or dkd")
    parser.add_argument(
        "--option",
        action="append",
        type=_option,
        default=[],
        metavar="KEY=VALUE",
        help="method hyper-parameter, e.g. --option beta=1.0 (repeatable)",
    )
    add_data_options(parser, inherit=True)
    add_training_options(parser)


def run(args: argparse.Namespace) -> int:
    from ... import distributed
    from ..train import ImageNetDistillConfig, distill_imagenet

    config = ImageNetDistillConfig(
        teacher=args.teacher,
        student=args.student,
        method=args.method,
        method_options=dict(args.option),
        data=data_settings(args, inherit=True),
        **run_options(args),
    )
    result = distill_imagenet(config)
    if distributed.environment_world()[0] == 0:
        best = result["test_acc_best"]
        best_text = "n/a" if best is None else f"{best:.4f}"
        print(
            f"imagenet {config.method} {result['teacher_arch']}({result['teacher_loss']}) -> "
            f"{config.student} seed={config.seed}: last-epoch top-1 {result['test_acc_last']:.4f}; "
            f"best-epoch top-1 {best_text}; teacher {result['teacher_test_acc']:.4f}"
        )
        print(f"run written to {config.out}")
    return 0
