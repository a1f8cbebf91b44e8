"""``bcpd-sim imagenet distill``: distil an ImageNet teacher checkpoint into a student (KD, DKD).

Rerunning the same command with the same ``--out`` resumes an interrupted run, on any number of
processes.
"""

from __future__ import annotations

import argparse

NAME = "distill"
HELP = "distil an ImageNet teacher checkpoint into a student with KD or DKD (mdistiller settings)"
DESCRIPTION = (
    "Train a student from a frozen ImageNet teacher checkpoint. Methods: kd (0.5 CE + 0.5 KL at "
    "T=1), dkd (CE 1, alpha 1, T 1, 1-epoch warm-up; beta 0.5 for resnet34->resnet18, 2.0 for "
    "resnet50->mobilenetv1). Data settings default to the teacher's. Run it under torchrun for "
    "DDP. Every flag is also a key of --config FILE.toml and of --set KEY=VALUE."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ...config import parse_override
    from ...vision.configs import add_config_flags
    from ..train import ImageNetDistillConfig

    add_config_flags(parser, ImageNetDistillConfig)
    parser.add_argument(
        "--option",
        action="append",
        type=parse_override,
        default=[],
        metavar="KEY=VALUE",
        help="method hyper-parameter, e.g. --option beta=1.0 (repeatable; same as --set "
        "method_options.KEY=VALUE)",
    )


def run(args: argparse.Namespace) -> int:
    from ... import distributed
    from ...vision.configs import config_from_args, print_config
    from ..train import ImageNetDistillConfig, distill_imagenet

    options = {"method_options": dict(args.option)} if args.option else None
    config = config_from_args(ImageNetDistillConfig, args, options)
    if args.print_config:
        print_config(config)
        return 0
    with distributed.main_process_lock(config.out):  # rank 0 holds the lock
        result = distill_imagenet(config)
    if distributed.is_main_process():
        best = result["test_acc_best"]
        best_text = "n/a" if best is None else f"{best:.4f}"
        print(
            f"imagenet {config.method} {result['teacher_arch']}({result['teacher_loss']}) -> "
            f"{config.student} seed={config.seed}: last-epoch top-1 {result['test_acc_last']:.4f}; "
            f"best-epoch top-1 {best_text}; teacher {result['teacher_test_acc']:.4f}"
        )
        print(f"run written to {config.out}")
    return 0
