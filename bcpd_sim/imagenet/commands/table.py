"""``bcpd-sim imagenet table RUN_DIRS...``: the CE-vs-MSE teacher table (the CIFAR table's layout)."""

from __future__ import annotations

from ...vision.commands.table import add_arguments, run

NAME = "table"
HELP = "paper-style table of student top-1 with CE vs MSE teachers, from ImageNet distillation runs"

__all__ = ["NAME", "HELP", "add_arguments", "run"]
