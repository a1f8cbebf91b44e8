"""``bcpd-sim imagenet eval``: top-1 accuracy of a checkpoint on the official validation set."""

from __future__ import annotations

import argparse

from ._options import add_data_options, data_settings

NAME = "eval"
HELP = "evaluate a checkpoint (ours, torchvision's or mdistiller's weights) on ImageNet val/"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..models import list_imagenet_models

    parser.add_argument("checkpoint", help="our checkpoint, or a state dict with --arch")
    parser.add_argument(
        "--arch", default=None, help=f"for foreign weights: {', '.join(list_imagenet_models())}"
    )
    parser.add_argument("--batch-size", type=int, default=1024, help="global evaluation batch")
    parser.add_argument("--workers", type=int, default=8, help="Pillow decoding processes")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda[:N]")
    parser.add_argument("--out", default=None, help="also write the metrics to this JSON file")
    add_data_options(parser)


def run(args: argparse.Namespace) -> int:
    from ... import distributed
    from ...io import write_json
    from ..train import evaluate_checkpoint

    metrics = evaluate_checkpoint(
        args.checkpoint,
        data_settings(args),
        data_dir=args.data_dir,
        arch=args.arch,
        device=args.device,
        batch_size=args.batch_size,
        workers=args.workers,
    )
    if distributed.environment_world()[0] == 0:
        print(
            f"{metrics['arch']}: top-1 {metrics['test_acc']:.4f}, nll {metrics['test_nll']:.4f} "
            f"on {metrics['n_images']} images of val/"
        )
        if args.out:
            write_json(args.out, metrics)
    return 0
