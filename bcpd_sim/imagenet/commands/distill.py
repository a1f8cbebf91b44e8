"""``bcpd-sim imagenet distill``: distil an ImageNet teacher checkpoint into a student (KD, DKD).

Rerunning the same command with the same ``--out`` resumes an interrupted run, on any number of
processes.
"""

from __future__ import annotations

import argparse
from typing import Any

NAME = "distill"
HELP = "distil an ImageNet teacher checkpoint into a student with KD or DKD (mdistiller settings)"
DESCRIPTION = (
    "Train a student from a frozen ImageNet teacher checkpoint. Methods: kd (0.5 CE + 0.5 KL at "
    "T=1), dkd (CE 1, alpha 1, T 1, 1-epoch warm-up; beta 0.5 for resnet34->resnet18, 2.0 for "
    "resnet50->mobilenetv1). Data settings default to the teacher's. Run it under torchrun for "
    "DDP. Every flag is also a key of --config FILE.toml and of --set KEY=VALUE."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ...vision.commands.distill import add_option_flag
    from ...vision.configs import add_config_flags
    from ..train import ImageNetDistillConfig

    add_config_flags(parser, ImageNetDistillConfig)
    add_option_flag(parser, "--option beta=1.0")


def run(args: argparse.Namespace) -> int:
    from ...vision.commands.distill import option_values
    from ...vision.configs import run_command
    from ..train import ImageNetDistillConfig, distill_imagenet

    extra = option_values(args)
    return run_command(ImageNetDistillConfig, args, distill_imagenet, report, extra=extra)


def report(config: Any, result: dict[str, Any]) -> None:
    """The run's headline numbers, on stdout."""
    best = result["test_acc_best"]
    best_text = "n/a" if best is None else f"{best:.4f}"
    print(
        f"imagenet {config.method} {result['teacher_arch']}({result['teacher_loss']}) -> "
        f"{config.student} seed={config.seed}: last-epoch top-1 {result['test_acc_last']:.4f}; "
        f"best-epoch top-1 {best_text}; teacher {result['teacher_test_acc']:.4f}"
    )
    print(f"run written to {config.out}")
