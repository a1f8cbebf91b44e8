"""``bcpd-sim cifar100 distill``: distil a trained teacher checkpoint into a student.

Rerunning the same command with the same ``--out`` resumes an interrupted run (or just reports a
finished one).
"""

from __future__ import annotations

import argparse
import json

from ._options import add_recipe_overrides, add_run_options

NAME = "distill"
HELP = "distil a teacher checkpoint into a student with KD, DKD, CRD, AT, PKT, SP, RKD or FitNet"
DESCRIPTION = (
    "Train a student from a frozen teacher checkpoint (written by 'bcpd-sim cifar100 teacher'). "
    "Methods: kd (0.1 CE + 0.9 KL at T=4), dkd (CE + alpha TCKD + beta NCKD, beta by teacher, "
    "20-epoch warm-up), crd (CE + 0.8 NCE over a 16,384-negative memory bank; add KD with "
    "--option kd_weight=1), at, pkt, sp, rkd, fitnet (CE + feature term, CRD-benchmark weights). "
    "Override a method's hyper-parameters with --option KEY=VALUE. Data settings default to the "
    "teacher's (same data source, synthetic world and validation split)."
)


def _option(text: str) -> tuple[str, object]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    key, value = text.split("=", 1)
    try:
        parsed: object = json.loads(value)
    except json.JSONDecodeError:
        parsed = value
    return key.strip(), parsed


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..distill import list_methods
    from ..recipes import list_recipes
    from ..train import DATA_SOURCES

    parser.add_argument(
        "--teacher", required=True, help="teacher checkpoint (e.g. RUN/checkpoints/last.pt)"
    )
    parser.add_argument("--student", default="resnet20", help="student model name")
    parser.add_argument("--method", default="kd", help=f"one of {', '.join(list_methods())}")
    parser.add_argument(
        "--option",
        action="append",
        type=_option,
        default=[],
        metavar="KEY=VALUE",
        help="method hyper-parameter, e.g. --option beta=4 --option temperature=2 (repeatable)",
    )
    parser.add_argument("--out", required=True, help="run directory (created; resumed if present)")
    parser.add_argument("--recipe", default="standard", help=f"one of {', '.join(list_recipes())}")
    parser.add_argument("--seed", type=int, default=0, help="training seed (init, data order)")
    parser.add_argument(
        "--data", default=None, help=f"one of {', '.join(DATA_SOURCES)} (default: the teacher's)"
    )
    parser.add_argument(
        "--data-dir", default=None, help="CIFAR-100 folder (default: $BCPD_SIM_CIFAR100)"
    )
    parser.add_argument("--download", action="store_true", help="download CIFAR-100 if missing")
    parser.add_argument(
        "--synthetic-preset", default=None, help="synthetic data preset (default: the teacher's)"
    )
    parser.add_argument(
        "--num-classes",
        type=int,
        default=None,
        help="synthetic data: classes (default: the teacher's)",
    )
    parser.add_argument(
        "--data-seed",
        type=int,
        default=None,
        help="validation split / synthetic world seed (default: the teacher's)",
    )
    add_recipe_overrides(parser)
    add_run_options(parser)


def config_from_args(args: argparse.Namespace):
    """The :class:`DistillConfig` for parsed command-line arguments."""
    from ..distill.trainer import DistillConfig

    return DistillConfig(
        out=args.out,
        teacher=args.teacher,
        student=args.student,
        method=args.method,
        method_options=dict(args.option),
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


def run(args: argparse.Namespace) -> int:
    from ..distill.trainer import distill

    result = distill(config_from_args(args))
    best = result["test_acc_best"]
    print(
        f"{result['method']} {result['teacher_arch']}({result['teacher_loss']}) -> "
        f"{result['student_arch']} seed {result['seed']}: test acc last epoch "
        f"{100 * result['test_acc_last']:.2f}%, best-val epoch "
        + ("n/a" if best is None else f"{100 * best:.2f}% (epoch {result['best_epoch']})")
        + f"; teacher {100 * result['teacher_test_acc']:.2f}%  [{args.out}]"
    )
    return 0
