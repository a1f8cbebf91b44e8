"""``bcpd-sim imagenet eval``: top-1 accuracy of a checkpoint on the official validation set."""

from __future__ import annotations

import argparse
from typing import Any

NAME = "eval"
HELP = "evaluate a checkpoint (ours, torchvision's or mdistiller's weights) on ImageNet val/"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ...vision.configs import add_config_flags
    from ..train import ImageNetEvalConfig

    add_config_flags(parser, ImageNetEvalConfig)


def run(args: argparse.Namespace) -> int:
    from ...vision.configs import run_command
    from ..train import ImageNetEvalConfig, evaluate_checkpoint

    return run_command(ImageNetEvalConfig, args, evaluate_checkpoint, report, lock=False)


def report(config: Any, metrics: dict[str, Any]) -> None:
    """The metrics on stdout, and in ``config.out`` when given."""
    from ...io import write_json

    print(
        f"{metrics['arch']}: top-1 {metrics['test_acc']:.4f}, nll {metrics['test_nll']:.4f} "
        f"on {metrics['n_images']} images of val/"
    )
    if config.out:
        write_json(config.out, metrics)
