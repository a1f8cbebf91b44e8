"""``bcpd-sim cifar100 eval CHECKPOINT``: a checkpoint's metrics on its run's data, on their own.

Prints a table (top-1, top-5, NLL, Brier, ECE and, on synthetic images, MSE and KL to p*) and
writes the same as JSON with ``--out``. The data settings default to those recorded in the
checkpoint, so the numbers equal the training run's ``metrics.csv`` for that epoch.
"""

from __future__ import annotations

import argparse
import json
import sys

NAME = "eval"
HELP = "evaluate a checkpoint: top-1, top-5, NLL, Brier, ECE (and MSE/KL to p* on synthetic data)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..bundle import DATA_SOURCES
    from ..checkpoint_eval import SPLITS

    parser.add_argument("checkpoint", metavar="CHECKPOINT", help="a .pt written by bcpd-sim")
    parser.add_argument("--split", default="test", choices=SPLITS, help="which split to score")
    parser.add_argument(
        "--data", default=None, help=f"one of {', '.join(DATA_SOURCES)} (default: the run's)"
    )
    parser.add_argument(
        "--data-dir",
        default=None,
        help="CIFAR-100 folder (default: the run's or $BCPD_SIM_CIFAR100)",
    )
    parser.add_argument("--synthetic-preset", default=None, help="default: the run's")
    parser.add_argument("--num-classes", type=int, default=None, help="synthetic data: classes")
    parser.add_argument("--data-seed", type=int, default=None, help="default: the run's")
    parser.add_argument("--val-size", type=int, default=None, help="default: the run's")
    parser.add_argument("--train-limit", type=int, default=None, help="default: the run's")
    parser.add_argument("--test-limit", type=int, default=None, help="default: the run's")
    parser.add_argument("--batch-size", type=int, default=None, help="evaluation batch size")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda[:N]")
    parser.add_argument("--out", default=None, help="also write the result as JSON to this file")
    parser.add_argument("--json", action="store_true", help="print JSON instead of the table")


def run(args: argparse.Namespace) -> int:
    from ...io import write_json
    from ..checkpoint_eval import evaluate_checkpoint, format_table

    result = evaluate_checkpoint(
        args.checkpoint,
        split=args.split,
        device=args.device,
        batch_size=args.batch_size,
        data=args.data,
        data_dir=args.data_dir,
        synthetic_preset=args.synthetic_preset,
        num_classes=args.num_classes,
        data_seed=args.data_seed,
        val_size=args.val_size,
        train_limit=args.train_limit,
        test_limit=args.test_limit,
    )
    if args.json:
        sys.stdout.write(json.dumps(result, indent=2, sort_keys=True) + "\n")
    else:
        sys.stdout.write(format_table(result))
    if args.out:
        write_json(args.out, result)
        print(f"wrote {args.out}", file=sys.stderr)
    return 0
