"""``bcpd-sim cifar100 ...``: the CIFAR-100 scale-up (teacher, distill, table, sweep).

The sub-commands live in :mod:`bcpd_sim.vision.commands`, one module each, discovered like the
top-level commands.
"""

from __future__ import annotations

import argparse

NAME = "cifar100"
HELP = "CIFAR-100 (and CIFAR-shaped synthetic) teachers, distillation, tables and sweeps"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..cli import OneLineArgumentParser, add_commands

    sub = parser.add_subparsers(
        title="cifar100 commands", metavar="COMMAND", parser_class=OneLineArgumentParser
    )
    try:
        add_commands(sub, "bcpd_sim.vision.commands")
    except ModuleNotFoundError:
        pass
    global _PARSER
    _PARSER = parser


_PARSER: argparse.ArgumentParser | None = None


def run(args: argparse.Namespace) -> int:
    """Reached only when no sub-command was given: show the group's help."""
    if _PARSER is not None:
        _PARSER.print_help()
    return 2
