"""``bcpd-sim imagenet ...``: ImageNet teachers, distillation, evaluation and the table.

The sub-commands live in :mod:`bcpd_sim.imagenet.commands`, one module each. Every training
command runs as one process or under ``torchrun --nproc_per_node=N -m bcpd_sim imagenet ...``.
"""

from __future__ import annotations

import argparse

from ..cli import add_command_group
from ..cli import run_group as run

NAME = "imagenet"
HELP = "ImageNet teachers (ce / mse), KD / DKD students and evaluation, one GPU or torchrun DDP"

__all__ = ["NAME", "HELP", "add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_command_group(parser, "bcpd_sim.imagenet.commands", "imagenet commands")
