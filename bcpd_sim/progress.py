"""Progress: bars on a terminal, one plain line per finished unit off a terminal.

On a terminal :func:`progress` draws a tqdm bar (on stderr). Under nohup, Slurm or a pipe the bar
is hidden and :class:`ProgressLog` prints one line per finished cell or epoch on stdout instead
(what finished, its headline metric, elapsed time, ETA). ``BCPD_SIM_PROGRESS=0`` silences both.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterable
from typing import TextIO

from tqdm.auto import tqdm

_OFF = ("0", "false", "no", "")


def silenced() -> bool:
    """True when BCPD_SIM_PROGRESS says "0" (or false / no / empty)."""
    env = os.environ.get("BCPD_SIM_PROGRESS")
    return env is not None and env.strip().lower() in _OFF


def progress_enabled() -> bool:
    """True when stderr is a terminal and BCPD_SIM_PROGRESS is not "0"."""
    env = os.environ.get("BCPD_SIM_PROGRESS")
    if env is not None:
        return env.strip().lower() not in _OFF
    return sys.stderr.isatty()


def progress(iterable: Iterable | None = None, **kwargs) -> tqdm:
    """tqdm with ``disable`` chosen by :func:`progress_enabled` unless given."""
    kwargs.setdefault("disable", not progress_enabled())
    kwargs.setdefault("dynamic_ncols", True)
    kwargs.setdefault("leave", False)
    return tqdm(iterable, **kwargs)


def format_seconds(seconds: float) -> str:
    """``42s``, ``3m05s`` or ``2h07m``."""
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


class ProgressLog:
    """One plain line per finished unit (cell, epoch) when stdout is not a terminal.

    ``log = ProgressLog("figure1", total=14, unit="cell")``; then ``log.finished("trained-ce",
    "student acc 0.712")`` after each unit (``cached=True`` counts a unit that was already done
    without printing it or letting it speed up the ETA). Prints nothing on a terminal (the bar
    shows there) or when ``BCPD_SIM_PROGRESS=0``; ``enabled`` overrides the choice.
    """

    def __init__(
        self,
        what: str,
        total: int,
        *,
        unit: str = "cell",
        done: int = 0,
        enabled: bool | None = None,
        stream: TextIO | None = None,
    ):
        self.what, self.total, self.unit, self.done = what, total, unit, done
        self._stream = stream
        self._start = time.perf_counter()
        self._timed = 0  # units finished (not cached) by this process
        if enabled is None:
            out = stream or sys.stdout
            enabled = not silenced() and not (hasattr(out, "isatty") and out.isatty())
        self.enabled = enabled

    def finished(self, name: str, metric: str = "", *, cached: bool = False) -> str | None:
        """Count one finished unit; print (and return) its line when enabled."""
        self.done += 1
        if cached:
            return None
        self._timed += 1
        elapsed = time.perf_counter() - self._start
        left = max(self.total - self.done, 0)
        eta = format_seconds(elapsed / self._timed * left) if left else "0s"
        line = (
            f"[{self.what}] {self.unit} {self.done}/{self.total}"
            + (f" {name}" if name else "")
            + " done"
            + (f": {metric}" if metric else "")
            + f"; elapsed {format_seconds(elapsed)}, ETA {eta}"
        )
        if self.enabled:
            print(line, file=self._stream or sys.stdout, flush=True)
        return line
