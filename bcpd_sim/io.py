"""Atomic file output: write to a temporary file in the same folder, then rename over the target.

A run killed mid-write leaves either the old file or the new one, never a corrupt mix.
"""

from __future__ import annotations

import errno
import json
import os
import tempfile
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Any


@contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary path next to ``path``; on success, fsync and rename it onto ``path``."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise name_os_error(exc, path) from exc
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; results should be readable like any file
    try:
        yield Path(tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise name_os_error(exc, path) from exc
        raise


def name_os_error(exc: OSError, path: Path) -> OSError:
    """The same error, naming the file the caller asked for (not a temporary name)."""
    if exc.errno is None:
        return OSError(f"{path}: {exc}")
    blocker = Path(exc.filename) if exc.filename is not None else None
    if isinstance(exc, FileExistsError) and blocker is not None and blocker.is_file():
        return NotADirectoryError(
            errno.ENOTDIR, "Not a directory (a file is in the way)", str(blocker)
        )
    if exc.filename is not None and Path(exc.filename) in (path, path.parent):
        return exc
    return type(exc)(exc.errno, exc.strerror, str(path))


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: str | os.PathLike, writer: Callable[[Path], Any]) -> Path:
    """Call ``writer(tmp_path)`` and atomically move the result to ``path``."""
    with atomic_path(path) as tmp:
        writer(tmp)
    return Path(path)


def write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write(path, lambda p: p.write_text(text))


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    return write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def write_table(path: str | os.PathLike, frame) -> Path:
    """Write a pandas DataFrame as Parquet or CSV, chosen by the file suffix."""
    suffix = Path(path).suffix.lower()
    if suffix == ".parquet":
        return atomic_write(path, lambda p: frame.to_parquet(p, index=False))
    if suffix == ".csv":
        return atomic_write(path, lambda p: frame.to_csv(p, index=False))
    raise ValueError(f"table path must end in .parquet or .csv, got {path}")


def save_figure(fig, path: str | os.PathLike, **kwargs) -> Path:
    """Save a matplotlib figure atomically; the format follows the suffix."""
    fmt = Path(path).suffix.lstrip(".") or "png"
    kwargs.setdefault("bbox_inches", "tight")
    return atomic_write(path, lambda p: fig.savefig(p, format=fmt, **kwargs))


def save_torch(path: str | os.PathLike, obj: Any) -> Path:
    """torch.save, atomically.

    The bytes are serialised in memory and written with ordinary file writes, so a full disk
    raises ``OSError(ENOSPC)`` naming ``path`` (torch's own writer only says "unexpected pos").
    """
    import io as _io

    import torch

    buffer = _io.BytesIO()
    torch.save(obj, buffer)
    return atomic_write(path, lambda p: p.write_bytes(buffer.getbuffer()))


def _json_default(obj: Any):
    import numpy as np

    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
