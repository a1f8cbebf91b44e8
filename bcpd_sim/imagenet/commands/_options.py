"""Command-line options shared by the ``imagenet`` sub-commands (not a command itself)."""

from __future__ import annotations

import argparse

from ...vision.commands._options import add_run_options


def add_data_options(parser: argparse.ArgumentParser, *, inherit: bool = False) -> None:
    """Where the ImageFolder tree is and which images are used (None: defaults or the teacher's)."""
    default = "the teacher's" if inherit else None
    parser.add_argument(
        "--data-dir", default=None, help="folder with train/ and val/ (default: $BCPD_SIM_IMAGENET)"
    )
    parser.add_argument(
        "--num-classes",
        type=int,
        default=None,
        help=f"class folders expected (default: {default or 1000})",
    )
    parser.add_argument(
        "--val-per-class",
        type=int,
        default=None,
        help=f"images per class held out of train/ to pick the best epoch (default: {default or 10})",
    )
    parser.add_argument(
        "--train-limit-per-class",
        type=int,
        default=None,
        help="use the first N train images per class",
    )
    parser.add_argument(
        "--test-limit-per-class",
        type=int,
        default=None,
        help="use the first N val/ images per class",
    )
    parser.add_argument("--data-seed", type=int, default=None, help="seed of the held-out split")
    parser.add_argument("--crop-size", type=int, default=None, help="crop side (default 224)")
    parser.add_argument("--resize-size", type=int, default=None, help="eval resize (default 256)")


def data_settings(args: argparse.Namespace, *, inherit: bool = False):
    """An :class:`ImageNetData` from the options; None when inheriting and nothing was given."""
    from ..train import ImageNetData

    keys = (
        "num_classes",
        "val_per_class",
        "train_limit_per_class",
        "test_limit_per_class",
        "data_seed",
        "crop_size",
        "resize_size",
    )
    given = {k: getattr(args, k) for k in keys if getattr(args, k) is not None}
    if inherit and not given:
        return None
    return ImageNetData(**given)


def add_training_options(parser: argparse.ArgumentParser) -> None:
    """--out, --recipe, --seed, --epochs, --batch-size, --lr, --workers and the run options."""
    from ..recipes import list_imagenet_recipes

    parser.add_argument("--out", required=True, help="run directory (created; resumed if present)")
    parser.add_argument(
        "--recipe", default="imagenet", help=f"one of {', '.join(list_imagenet_recipes())}"
    )
    parser.add_argument("--seed", type=int, default=0, help="training seed (init, data order)")
    parser.add_argument("--epochs", type=int, default=None, help="override the recipe's epochs")
    parser.add_argument(
        "--batch-size", type=int, default=None, help="global batch (split over the processes)"
    )
    parser.add_argument("--lr", type=float, default=None, help="override the base learning rate")
    parser.add_argument(
        "--workers", type=int, default=8, help="Pillow decoding processes per training process"
    )
    add_run_options(parser)


def run_options(args: argparse.Namespace) -> dict:
    """The :class:`RunOptions` fields from the parsed options."""
    return {
        "out": args.out,
        "data_dir": args.data_dir,
        "recipe": args.recipe,
        "seed": args.seed,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "checkpoint_every": args.checkpoint_every,
        "augment": args.augment,
        "compile": args.compile,
        "device": args.device,
        "workers": args.workers,
    }
