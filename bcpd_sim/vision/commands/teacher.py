"""``bcpd-sim cifar100 teacher``: train one CE- or MSE-trained teacher on CIFAR-100 or synthetic data.

Rerunning the same command with the same ``--out`` resumes an interrupted run (or just reports a
finished one).
"""

from __future__ import annotations

import argparse

from ._options import add_recipe_overrides, add_run_options

NAME = "teacher"
HELP = "train a teacher (ce, mse or mse_logits loss) on CIFAR-100 or the exact-BCPD synthetic data"
DESCRIPTION = (
    "Train a CIFAR teacher. Losses: ce (cross-entropy); mse (Brier: squared error between softmax "
    "probabilities and one-hot labels, summed over classes, times --mse-scale); mse_logits (the "
    "official code's variant: raw logits regressed onto one-hot). Recipes: standard (the KD "
    "benchmark recipe, 240 epochs at batch 64), fast (batch 512, 120 epochs, bf16), tiny (CPU "
    "demo). The validation split is carved from the training set; last-epoch and best-epoch "
    "test accuracy are both reported. Rerun the same command to resume."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..losses import list_losses
    from ..recipes import list_recipes
    from ..synthetic import list_presets
    from ..train import DATA_SOURCES

    parser.add_argument("--arch", default="resnet56", help="model name (see the model registry)")
    parser.add_argument("--loss", default="ce", help=f"one of {', '.join(list_losses())}")
    parser.add_argument("--mse-scale", type=float, default=1.0, help="multiplier of the mse losses")
    parser.add_argument("--recipe", default="standard", help=f"one of {', '.join(list_recipes())}")
    parser.add_argument("--data", default="cifar100", help=f"one of {', '.join(DATA_SOURCES)}")
    parser.add_argument(
        "--data-dir", default=None, help="CIFAR-100 folder (default: $BCPD_SIM_CIFAR100)"
    )
    parser.add_argument(
        "--download", action="store_true", help="download CIFAR-100 if missing (needs internet)"
    )
    parser.add_argument(
        "--synthetic-preset", default="easy", help=f"synthetic data: {', '.join(list_presets())}"
    )
    parser.add_argument(
        "--num-classes", type=int, default=None, help="synthetic data: classes (default 100)"
    )
    parser.add_argument("--out", required=True, help="run directory (created; resumed if present)")
    parser.add_argument("--seed", type=int, default=0, help="training seed (init, data order)")
    parser.add_argument(
        "--data-seed", type=int, default=0, help="seed of the validation split / synthetic world"
    )
    add_recipe_overrides(parser)
    add_run_options(parser)


def run(args: argparse.Namespace) -> int:
    from ...rundir import open_run_dir
    from ..train import TeacherConfig, train_teacher

    config = TeacherConfig(
        out=args.out,
        arch=args.arch,
        loss=args.loss,
        mse_scale=args.mse_scale,
        recipe=args.recipe,
        data=args.data,
        data_dir=args.data_dir,
        download=args.download,
        synthetic_preset=args.synthetic_preset,
        num_classes=args.num_classes,
        seed=args.seed,
        data_seed=args.data_seed,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        val_size=args.val_size,
        train_limit=args.train_limit,
        test_limit=args.test_limit,
        checkpoint_every=args.checkpoint_every,
        augment=args.augment,
        compile=args.compile,
        device=args.device,
    )
    with open_run_dir(config.validate().out):  # one writer at a time
        summary = train_teacher(config)
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
    return 0
