"""What a training run keeps on disk: checkpoints, RNG states, the summary, and the resume check.

Checkpoints are written and read by :mod:`bcpd_sim.vision.checkpoint` (plain tensors and Python
values: ``torch.load(path, weights_only=True)`` opens each). A run directory holds ``config.json`` (the run record), ``metrics.csv`` (one row per epoch),
``summary.json`` (last-epoch and best-epoch test metrics, labelled) and ``checkpoints/``
(``last.pt`` with everything needed to resume, ``best.pt`` with the best-validation weights,
``epoch_NNNN.pt`` every ``checkpoint_every`` epochs).
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import ConfigError
from .checkpoint import (  # noqa: F401  (re-exported: the trainer's checkpoint functions)
    CHECKPOINT_FORMAT,
    capture_rng_state,
    load_checkpoint,
    restore_rng_state,
)
from .configs import PROTOCOLS

#: Config keys that may change between a run and its resumption (they do not affect results).
RESUME_IGNORED = frozenset({"out", "device", "data_dir", "download", "progress", "tensorboard"})
#: Config keys added after runs were written, with the value an older run implicitly had.
ADDED_KEYS = {"full_train": False}
VAL_SELECTION = "best_epoch = highest validation accuracy (the test set is never used to select)"
FULL_TRAIN_SELECTION = (
    "full_train: every training image, no validation split; the last epoch is the result "
    "(as the CRD / DKD anchor tables report), there is no best epoch"
)
#: Test metrics the summary reports at the last and at the best epoch, when measured.
SUMMARY_METRICS = ("top5", "mse_pstar", "kl_pstar", "nll", "brier")


def seed_everything(seed: int) -> None:
    """Seed torch, numpy's global generator and Python's ``random`` for a fresh run."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


def model_from_checkpoint(
    ckpt: dict[str, Any],
    device: str | torch.device = "cpu",
    *,
    num_classes: int | None = None,
    source: str | Path = "checkpoint",
) -> nn.Module:
    """Rebuild the model stored in an already-read checkpoint, on ``device`` in eval mode.

    ``num_classes``, when given, must match the checkpoint (ConfigError otherwise).
    """
    from .models import create_model

    if num_classes is not None and ckpt["num_classes"] != num_classes:
        raise ConfigError(
            f"checkpoint {source} has {ckpt['num_classes']} classes, expected {num_classes}"
        )
    model = create_model(ckpt["arch"], num_classes=ckpt["num_classes"])
    model.load_state_dict(ckpt["model"])
    return model.to(device).eval()


def load_model_from_checkpoint(
    path: str | Path, device: str | torch.device = "cpu", *, num_classes: int | None = None
) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the model saved in ``path`` (``best.pt``, ``last.pt`` or ``epoch_NNNN.pt``).

    Returns ``(model, checkpoint)`` with the model on ``device`` in eval mode. ``num_classes``,
    when given, must match the checkpoint (ConfigError otherwise).
    """
    ckpt = load_checkpoint(path, device)
    return model_from_checkpoint(ckpt, device, num_classes=num_classes, source=path), ckpt


def config_mismatch(saved: dict, current: dict) -> list[str]:
    """Keys whose values differ between two run configs (ignoring :data:`RESUME_IGNORED`)."""
    keys = (set(saved) | set(current)) - RESUME_IGNORED
    return sorted(k for k in keys if saved.get(k, ADDED_KEYS.get(k)) != current.get(k))


def summarise(
    history: list[dict[str, float]],
    best: dict[str, Any],
    *,
    config: dict[str, Any],
    seed: int,
    info: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The run's headline numbers, labelled: last epoch and best-on-validation epoch.

    ``info`` is the data bundle's description (its ``bayes_test_acc`` is copied when present).
    """
    if not history:
        raise ConfigError("no epochs were trained")
    last = history[-1]
    out: dict[str, Any] = {
        "arch": config.get("arch"),
        "loss": config.get("loss"),
        "seed": seed,
        "epochs_trained": int(last["epoch"]),
        "protocol": PROTOCOLS[bool(config.get("full_train"))],
        "selection": FULL_TRAIN_SELECTION if config.get("full_train") else VAL_SELECTION,
        "last_epoch": int(last["epoch"]),
        "last_epoch_test_acc": last["test_acc"],
        "best_epoch": best["epoch"],
        "best_epoch_val_acc": None if best["epoch"] is None else best["val_acc"],
        "best_epoch_test_acc": None,
    }
    _copy_test_metrics(out, "last_epoch", last)
    if best["epoch"] is not None:
        row = history[best["epoch"] - 1]
        out["best_epoch_test_acc"] = row["test_acc"]
        _copy_test_metrics(out, "best_epoch", row)
    if info is not None and "bayes_test_acc" in info:
        out["bayes_test_acc"] = info["bayes_test_acc"]
    return out


def _copy_test_metrics(out: dict[str, Any], prefix: str, row: dict[str, float]) -> None:
    for key in SUMMARY_METRICS:
        if f"test_{key}" in row:
            out[f"{prefix}_test_{key}"] = row[f"test_{key}"]


def read_summary(run_dir: str | Path) -> dict[str, Any]:
    """The ``summary.json`` of a finished run."""
    path = Path(run_dir) / "summary.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist (run not finished?)")
    return json.loads(path.read_text())
