"""Run directories: one writer at a time, and cached results only reused by the config that made them.

``with open_run_dir(path, config_text=...) as run:`` takes an exclusive lock on the folder (a
``filelock`` lock, released by the operating system even if the process is killed), records who
holds it (pid, host, start time, command) so that a second writer is refused with one line naming
the holder, removes temporary files that :mod:`bcpd_sim.io` left behind in a killed run, and, when
``config_text`` is given, refuses a folder whose recorded config differs. Cached tables carry the
config's fingerprint (:meth:`RunDir.write_table` / :meth:`RunDir.cached_table`), so a cell made by
another config is never reused.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock, Timeout

from . import io
from .errors import ConfigError

LOCK_NAME = ".bcpd-sim.lock"
HOLDER_NAME = ".bcpd-sim.lock.json"
FINGERPRINT_COLUMN = "config_fingerprint"
#: Temporary files named by :func:`bcpd_sim.io.atomic_path` (``tempfile.mkstemp`` adds 8 chars).
TEMP_PATTERN = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp$")
#: How deep below the run root stale temporary files are looked for (root, cells/, runs/x/checkpoints/).
SWEEP_DEPTH = 3


class RunDirBusy(RuntimeError):
    """Another process holds the run directory's lock."""


def fingerprint(config: str | bytes | dict) -> str:
    """A stable 16-hex-digit hash of a config (its text, or a JSON-able dict with sorted keys)."""
    if isinstance(config, dict):
        config = json.dumps(config, sort_keys=True, default=str)
    if isinstance(config, str):
        config = config.encode("utf-8")
    return hashlib.sha256(config).hexdigest()[:16]


def sweep_temporaries(root: str | os.PathLike, depth: int = SWEEP_DEPTH) -> list[Path]:
    """Delete ``.NAME.XXXXXXXX.tmp`` files left by killed atomic writes; return what was removed."""
    root = Path(root)
    removed = []
    for folder, dirs, files in os.walk(root):
        level = len(Path(folder).relative_to(root).parts)
        if level >= depth:
            dirs[:] = []
        for name in files:
            if TEMP_PATTERN.match(name):
                path = Path(folder) / name
                try:
                    path.unlink()
                    removed.append(path)
                except FileNotFoundError:
                    pass
    return removed


def _holder(path: Path) -> str:
    try:
        info = json.loads((path / HOLDER_NAME).read_text())
        return f"pid {info['pid']} on {info['host']}, started {info['started']}: {info['command']}"
    except (OSError, ValueError, KeyError):
        return "another process (no holder record)"


@dataclass
class RunDir:
    """An open, locked run directory. ``fingerprint`` is None when no config was given."""

    path: Path
    fingerprint: str | None

    def write_table(self, path: str | os.PathLike, frame) -> Path:
        """Write ``frame`` atomically with a ``config_fingerprint`` column."""
        if self.fingerprint is not None:
            frame = frame.assign(**{FINGERPRINT_COLUMN: self.fingerprint})
        return io.write_table(path, frame)

    def cached_table(self, path: str | os.PathLike):
        """The table at ``path`` if it exists and this config made it, else None."""
        import pandas as pd

        path = Path(path)
        if not path.exists():
            return None
        frame = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
        if self.fingerprint is not None:
            stamps = frame.get(FINGERPRINT_COLUMN)
            if stamps is None or len(frame) == 0 or not (stamps == self.fingerprint).all():
                return None
        return frame


@contextmanager
def open_run_dir(
    path: str | os.PathLike,
    config_text: str | None = None,
    *,
    config_name: str = "config.toml",
    command: str | None = None,
) -> Iterator[RunDir]:
    """Lock ``path`` for this process, sweep stale temporaries, and check or record the config.

    Raises :class:`RunDirBusy` when another process holds the lock, and
    :class:`~bcpd_sim.errors.ConfigError` when ``path/config_name`` records a different config.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"run directory {path} exists and is not a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise io.name_os_error(exc, path) from exc
    lock = FileLock(str(path / LOCK_NAME), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise RunDirBusy(
            f"{path} is in use by {_holder(path)}; wait for it to finish or choose another --out"
        ) from None
    try:
        io.write_json(
            path / HOLDER_NAME,
            {
                "pid": os.getpid(),
                "host": socket.gethostname(),
                "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "command": command or " ".join(["bcpd-sim", *sys.argv[1:]]),
            },
        )
        sweep_temporaries(path)
        fp = None
        if config_text is not None:
            config_path = path / config_name
            if config_path.exists() and config_path.read_text() != config_text:
                raise ConfigError(
                    f"{path} holds a run with a different config; choose another --out, "
                    f"or rerun with the settings in {config_path}"
                )
            io.write_text(config_path, config_text)
            fp = fingerprint(config_text)
        yield RunDir(path, fp)
    finally:
        try:
            (path / HOLDER_NAME).unlink()
        except OSError:
            pass
        lock.release()
