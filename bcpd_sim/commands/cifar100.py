"""``bcpd-sim cifar100 ...``: the CIFAR-100 scale-up (teacher, distill, table, sweep).

The sub-commands live in :mod:`bcpd_sim.vision.commands`, one module each, discovered like the
top-level commands.
"""

from __future__ import annotations

import argparse

from ..cli import add_command_group
from ..cli import run_group as run

NAME = "cifar100"
HELP = "CIFAR-100 (and CIFAR-shaped synthetic) teachers, distillation, tables and sweeps"

__all__ = ["NAME", "HELP", "add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    try:
        add_command_group(parser, "bcpd_sim.vision.commands", "cifar100 commands")
    except ModuleNotFoundError:
        pass
