"""``bcpd-sim imagenet eval``: top-1 accuracy of a checkpoint on the official validation set."""

from __future__ import annotations

import argparse

NAME = "eval"
HELP = "evaluate a checkpoint (ours, torchvision's or mdistiller's weights) on ImageNet val/"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ...vision.configs import add_config_flags
    from ..train import ImageNetEvalConfig

    add_config_flags(parser, ImageNetEvalConfig)


def run(args: argparse.Namespace) -> int:
    from ... import distributed
    from ...io import write_json
    from ...vision.configs import config_from_args, print_config
    from ..train import ImageNetEvalConfig, evaluate_checkpoint

    config = config_from_args(ImageNetEvalConfig, args)
    if args.print_config:
        print_config(config)
        return 0
    metrics = evaluate_checkpoint(config)
    if distributed.is_main_process():
        print(
            f"{metrics['arch']}: top-1 {metrics['test_acc']:.4f}, nll {metrics['test_nll']:.4f} "
            f"on {metrics['n_images']} images of val/"
        )
        if config.out:
            write_json(config.out, metrics)
    return 0
