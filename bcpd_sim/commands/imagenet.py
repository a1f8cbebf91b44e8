"""``bcpd-sim imagenet ...``: ImageNet teachers, distillation, evaluation and the table.

The sub-commands live in :mod:`bcpd_sim.imagenet.commands`, one module each. Every training
command runs as one process or under ``torchrun --nproc_per_node=N -m bcpd_sim imagenet ...``.
"""

from __future__ import annotations

import argparse

NAME = "imagenet"
HELP = "ImageNet teachers (ce / mse), KD / DKD students and evaluation, one GPU or torchrun DDP"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..cli import OneLineArgumentParser, add_commands

    sub = parser.add_subparsers(
        title="imagenet commands", metavar="COMMAND", parser_class=OneLineArgumentParser
    )
    add_commands(sub, "bcpd_sim.imagenet.commands")
    global _PARSER
    _PARSER = parser


_PARSER: argparse.ArgumentParser | None = None


def run(args: argparse.Namespace) -> int:
    """Reached only when no sub-command was given: show the group's help."""
    if _PARSER is not None:
        _PARSER.print_help()
    return 2
