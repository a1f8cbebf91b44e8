"""``bcpd-sim info``: versions, device and threads."""

from __future__ import annotations

import argparse

NAME = "info"
HELP = "print package versions, the compute device and the thread count"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    del parser


def run(args: argparse.Namespace) -> int:
    from ..provenance import environment

    info = environment()
    width = max(map(len, info))
    for key, value in info.items():
        print(f"{key:<{width}}  {value}")
    return 0
