"""Command-line options shared by the ``cifar100`` sub-commands (not a command itself)."""

from __future__ import annotations

import argparse


def add_recipe_overrides(parser: argparse.ArgumentParser) -> None:
    """--epochs, --batch-size, --lr, --val-size, --train-limit, --test-limit (None: the recipe's)."""
    parser.add_argument("--epochs", type=int, default=None, help="override the recipe's epochs")
    parser.add_argument("--batch-size", type=int, default=None, help="override the batch size")
    parser.add_argument("--lr", type=float, default=None, help="override the base learning rate")
    parser.add_argument(
        "--val-size", type=int, default=None, help="validation images carved from train"
    )
    parser.add_argument(
        "--train-limit", type=int, default=None, help="use the first N train images"
    )
    parser.add_argument("--test-limit", type=int, default=None, help="use the first N test images")


def add_run_options(parser: argparse.ArgumentParser) -> None:
    """--checkpoint-every, --augment/--no-augment, --no-compile and --device for one training run."""
    parser.add_argument(
        "--checkpoint-every", type=int, default=None, help="periodic checkpoint interval (epochs)"
    )
    aug = parser.add_mutually_exclusive_group()
    aug.add_argument("--augment", dest="augment", action="store_true", default=None)
    aug.add_argument("--no-augment", dest="augment", action="store_false")
    parser.add_argument(
        "--no-compile",
        dest="compile",
        action="store_false",
        default=None,
        help="never torch.compile",
    )
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda[:N]")
