"""``bcpd-sim imagenet teacher``: train a CE- or MSE-trained ImageNet teacher (torchrun for DDP).

Rerunning the same command with the same ``--out`` resumes an interrupted run, on any number of
processes.
"""

from __future__ import annotations

import argparse
from typing import Any

NAME = "teacher"
HELP = "train an ImageNet teacher (resnet18/34/50, mobilenetv1) with the ce, mse or mse_logits loss"
DESCRIPTION = (
    "Train an ImageNet teacher with mdistiller's recipe (SGD 0.9, lr 0.2 at global batch 512, wd "
    "1e-4, 100 epochs, x0.1 at 30/60/90; bf16 + channels_last on GPU). Run it under "
    "'torchrun --nproc_per_node=N -m bcpd_sim imagenet teacher ...' for DDP: the global batch and "
    "lr stay the recipe's. The official val/ is the test set; the best epoch is chosen on images "
    "held out of train/. Rerun the same command to resume. Every flag is also a key of --config "
    "FILE.toml and of --set KEY=VALUE; --print-config shows the validated config."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ...vision.configs import add_config_flags
    from ..train import ImageNetTeacherConfig

    add_config_flags(parser, ImageNetTeacherConfig)


def run(args: argparse.Namespace) -> int:
    from ...vision.configs import run_command
    from ..train import ImageNetTeacherConfig, train_imagenet_teacher

    return run_command(ImageNetTeacherConfig, args, train_imagenet_teacher, report)


def report(config: Any, summary: dict[str, Any]) -> None:
    """The run's headline numbers, on stdout."""
    best = summary["best_epoch_test_acc"]
    best_text = "n/a (no held-out split)" if best is None else f"{best:.4f}"
    print(
        f"imagenet {config.arch} loss={config.loss} seed={config.seed} "
        f"({summary['world_size']} process(es), {summary['per_rank_batch_size']} per process): "
        f"last-epoch ({summary['last_epoch']}) top-1 {summary['last_epoch_test_acc']:.4f}; "
        f"best-epoch ({summary['best_epoch']}) top-1 {best_text}"
    )
    print(f"run written to {config.out}")
