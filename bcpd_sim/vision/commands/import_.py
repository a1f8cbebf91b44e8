"""``bcpd-sim cifar100 import``: convert a RepDistiller or mdistiller teacher into our format.

Writes ``OUT/teacher.pt`` (our checkpoint; give it to ``cifar100 distill --teacher``) and
``OUT/import.json`` (where it came from: path, SHA-256, epoch and accuracy the file reports).
"""

from __future__ import annotations

import argparse
import sys

NAME = "import"
HELP = "convert a RepDistiller/mdistiller CIFAR-100 teacher checkpoint for 'distill --teacher'"
DESCRIPTION = (
    "Convert a teacher trained with RepDistiller (train_teacher.py: <arch>_best.pth, "
    "<arch>_last.pth, ckpt_epoch_N.pth) or downloaded from mdistiller (cifar_teachers: "
    "<arch>_vanilla/ckpt_epoch_240.pth) into a bcpd-sim checkpoint. Every tensor is checked to "
    "land on exactly one of ours with the same shape and role. Without --arch the architecture "
    "is read from the run folder's name, as RepDistiller's train_student.py does."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..interop import FORMATS

    parser.add_argument("path", metavar="PATH", help="the foreign checkpoint (.pth)")
    parser.add_argument("--format", required=True, choices=FORMATS, help="where it comes from")
    parser.add_argument(
        "--arch",
        default=None,
        help="architecture, theirs or ours (resnet32x4, wrn_40_2, ResNet50, MobileNetV2, ...); "
        "default: read from the folder name",
    )
    parser.add_argument(
        "--loss", default="ce", help="the loss the teacher was trained with (their scripts: ce)"
    )
    parser.add_argument("--out", required=True, help="output folder (teacher.pt, import.json)")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ...io import write_json
    from ..checkpoint import save_checkpoint
    from ..interop import import_checkpoint

    ckpt = import_checkpoint(args.path, args.format, args.arch, loss=args.loss)
    out = Path(args.out)
    path = save_checkpoint(out / "teacher.pt", ckpt)
    write_json(
        out / "import.json",
        {
            "arch": ckpt["arch"],
            "num_classes": ckpt["num_classes"],
            "loss": ckpt["loss"],
            **ckpt["source"],
        },
    )
    source = ckpt["source"]
    acc = source["reported_accuracy"]
    print(
        f"imported {source['format']} {source['arch']} -> {ckpt['arch']} "
        f"({len(ckpt['model'])} tensors, {ckpt['num_classes']} classes"
        + ("" if acc is None else f", reported accuracy {acc:.2f}")
        + f"): {path}",
        file=sys.stdout,
    )
    return 0
