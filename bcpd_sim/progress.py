"""Progress bars that show on a terminal and stay quiet in logs, tests and CI."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable

from tqdm.auto import tqdm


def progress_enabled() -> bool:
    """True when stderr is a terminal and BCPD_SIM_PROGRESS is not "0"."""
    env = os.environ.get("BCPD_SIM_PROGRESS")
    if env is not None:
        return env not in ("0", "false", "no", "")
    return sys.stderr.isatty()


def progress(iterable: Iterable | None = None, **kwargs) -> tqdm:
    """tqdm with ``disable`` chosen by :func:`progress_enabled` unless given."""
    kwargs.setdefault("disable", not progress_enabled())
    kwargs.setdefault("dynamic_ncols", True)
    kwargs.setdefault("leave", False)
    return tqdm(iterable, **kwargs)
