"""``bcpd-sim cifar100 teacher``: train one CE- or MSE-trained teacher on CIFAR-100 or synthetic data.

Rerunning the same command with the same ``--out`` resumes an interrupted run (or just reports a
finished one).
"""

from __future__ import annotations

import argparse
from typing import Any

NAME = "teacher"
HELP = "train a teacher (ce, mse or mse_logits loss) on CIFAR-100 or the exact-BCPD synthetic data"
DESCRIPTION = (
    "Train a CIFAR teacher. Losses: ce (cross-entropy); mse (Brier: squared error between softmax "
    "probabilities and one-hot labels, summed over classes, times --mse-scale); mse_logits (the "
    "official code's variant: raw logits regressed onto one-hot). Recipes: standard (the KD "
    "benchmark recipe, 240 epochs at batch 64), fast (batch 512, 120 epochs, bf16), tiny (CPU "
    "demo). The validation split is carved from the training set; last-epoch and best-epoch "
    "test accuracy are both reported. Rerun the same command to resume. Every flag is also a key "
    "of --config FILE.toml and of --set KEY=VALUE; --print-config shows the validated config."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..configs import add_config_flags
    from ..train import TeacherConfig

    add_config_flags(parser, TeacherConfig)


def run(args: argparse.Namespace) -> int:
    from ..configs import run_command
    from ..train import TeacherConfig, train_teacher

    return run_command(TeacherConfig, args, train_teacher, report)


def report(config: Any, summary: dict[str, Any]) -> None:
    """The run's headline numbers, on stdout."""
    best = summary["best_epoch_test_acc"]
    best_text = "n/a (no validation split)" if best is None else f"{best:.4f}"
    print(
        f"{config.arch} loss={config.loss} seed={config.seed}: "
        f"last-epoch ({summary['last_epoch']}) test acc {summary['last_epoch_test_acc']:.4f}; "
        f"best-epoch ({summary['best_epoch']}, by val acc) test acc {best_text}"
    )
    if "last_epoch_test_kl_pstar" in summary:
        print(
            f"distance to p* (test, last epoch): mse {summary['last_epoch_test_mse_pstar']:.4f}, "
            f"kl {summary['last_epoch_test_kl_pstar']:.4f}; Bayes accuracy "
            f"{summary['bayes_test_acc']:.4f}"
        )
    print(f"run written to {config.out}")
