"""TensorBoard event files beside ``metrics.csv`` (``--tensorboard``), one scalar per column.

The dependency is optional: without the ``tensorboard`` package the option fails before any
training with one line saying how to install it. Columns are grouped by their prefix
(``train_loss`` -> ``train/loss``, ``val_acc`` -> ``val/acc``, ``test_top5`` -> ``test/top5``;
others under ``run/``), with the epoch as the step. A resumed run appends a new event file in the
same folder; TensorBoard merges them.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from ..errors import ConfigError

INSTALL_HINT = "--tensorboard needs the tensorboard package: pip install 'bcpd-sim[tensorboard]'"


def require_tensorboard() -> Any:
    """``torch.utils.tensorboard.SummaryWriter``; ConfigError with the install hint if missing."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # torch raises ImportError when the tensorboard package is absent
        raise ConfigError(INSTALL_HINT) from None
    return SummaryWriter


def tag(column: str) -> str:
    """The TensorBoard tag of a metrics.csv column."""
    for prefix in ("train", "val", "test"):
        if column.startswith(prefix + "_"):
            return f"{prefix}/{column[len(prefix) + 1 :]}"
    return f"run/{column}"


class EpochLogger:
    """Writes each epoch's row (the dict appended to ``metrics.csv``) as scalars.

    Usable as ``fit``'s ``on_epoch_end(epoch, row)`` callback; ``close()`` flushes the file.
    """

    def __init__(self, run_dir: str | Path) -> None:
        writer_cls = require_tensorboard()
        Path(run_dir).mkdir(parents=True, exist_ok=True)
        self.writer = writer_cls(log_dir=str(run_dir))

    def __call__(self, epoch: int, row: dict[str, Any]) -> None:
        for column, value in row.items():
            if column == "epoch" or isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            if math.isfinite(value):
                self.writer.add_scalar(tag(column), float(value), global_step=int(epoch))
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


def chain(*callbacks):
    """One ``on_epoch_end`` callback calling each non-None callback in order."""
    active = [c for c in callbacks if c is not None]
    if not active:
        return None

    def call(epoch: int, row: dict[str, Any]) -> None:
        for callback in active:
            callback(epoch, row)

    return call
