"""Evaluate a checkpoint on its own: top-1, top-5, NLL, Brier, ECE and, on the synthetic images,
the mean squared error and KL divergence to the exact BCPD p*.

:func:`evaluate_checkpoint` rebuilds the data the run trained on from the checkpoint's own record
(source, synthetic world, seeds, validation split and size limits), so its numbers equal those the
training run wrote to ``metrics.csv`` for the same epoch; options override any of them (e.g. an
imported teacher evaluated on synthetic data). The metrics come from :mod:`bcpd_sim.metrics` on the
model's float64 probabilities; top-k counts a label as found when fewer than k classes have a
strictly larger logit.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .. import metrics
from ..device import resolve_device
from ..validation import check_choice, check_int
from .checkpoint import load_model
from .pipeline import DeviceLoader

SPLITS = ("test", "val")
#: Metric names, in the order of the printed table, with a human label.
METRIC_LABELS = {
    "acc": "top-1 accuracy",
    "top5": "top-5 accuracy",
    "nll": "NLL",
    "brier": "Brier score",
    "ece": "ECE (15 bins)",
    "mse_pstar": "MSE to p*",
    "kl_pstar": "KL(p* || q)",
}


def topk_accuracy(logits: np.ndarray | torch.Tensor, y: Any, k: int = 5) -> float:
    """Fraction of rows whose label is among the ``k`` largest logits (ties count as found)."""
    z = torch.as_tensor(logits)
    y = torch.as_tensor(np.asarray(y), device=z.device).long()
    above = (z > z.gather(1, y[:, None])).sum(dim=1)
    return float((above < k).double().mean())


def metrics_from_logits(
    logits: np.ndarray, y: np.ndarray, p_star: np.ndarray | None = None, *, num_bins: int = 15
) -> dict[str, float]:
    """All of :data:`METRIC_LABELS` that the references allow, from ``(n, K)`` logits."""
    z = torch.as_tensor(logits, dtype=torch.float64)
    q = torch.softmax(z, dim=1).numpy()
    out = {
        "acc": float(np.mean(z.argmax(1).numpy() == y)),
        "top5": topk_accuracy(z, y, min(5, z.shape[1])),
        "nll": float(-torch.log_softmax(z, 1).gather(1, torch.as_tensor(y)[:, None].long()).mean()),
        "brier": float(metrics.brier(q, y)),
        "ece": float(metrics.ece(q, y, num_bins=num_bins)),
    }
    if p_star is not None:
        out["mse_pstar"] = float(metrics.mse_to_bcpd(q, p_star))
        out["kl_pstar"] = float(metrics.kl_to_bcpd(q, p_star))
    return out


@torch.no_grad()
def predict(model: nn.Module, loader: DeviceLoader, *, bf16: bool = False) -> np.ndarray:
    """Float64 logits of every image of an in-order loader, in dataset order."""
    from .evaluation import autocast

    model.eval()
    out = []
    for batch in loader:
        with autocast(loader.device, bf16):
            out.append(model(batch[0]).double().cpu())
    return torch.cat(out).numpy()


def run_data_settings(ckpt: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    """Keyword arguments of :func:`bcpd_sim.vision.bundle.load_data` that rebuild the data of the
    run that wrote ``ckpt`` (teacher, distillation or imported); non-None ``overrides`` win."""
    cfg = ckpt.get("config") or {}
    resolved = cfg.get("resolved_data") or {}
    recipe = ckpt.get("recipe") or {}

    def pick(key: str, default: Any = None) -> Any:
        for source in (overrides, resolved, cfg):
            if source.get(key) is not None:
                return source[key]
        return default

    def limit(key: str, default: Any = None) -> Any:
        return overrides[key] if overrides.get(key) is not None else recipe.get(key, default)

    data = pick("data", "cifar100")
    return {
        "data": data,
        "data_dir": pick("data_dir"),
        "synthetic_preset": pick("synthetic_preset", "easy"),
        "num_classes": pick("num_classes") if data == "synthetic" else None,
        "val_size": limit("val_size", 5000),
        "train_limit": limit("train_limit"),
        "test_limit": limit("test_limit"),
        "data_seed": pick("data_seed", 0),
    }


def evaluate_checkpoint(
    path: str | Path,
    *,
    split: str = "test",
    device: str | None = "auto",
    batch_size: int | None = None,
    **data_overrides: Any,
) -> dict[str, Any]:
    """Metrics of the model in ``path`` on the ``split`` of its run's data (or the overridden one).

    Returns ``{"checkpoint", "arch", "epoch", "split", "n", "data": {...}, "metrics": {...}}``.
    """
    from .bundle import load_data

    check_choice("split", split, SPLITS)
    dev = resolve_device(device)
    model, ckpt = load_model(path, dev)
    settings = run_data_settings(ckpt, **data_overrides)
    bundle = load_data(**settings)
    dataset = bundle.test if split == "test" else bundle.val
    if dataset is None:
        raise ValueError("split 'val' is empty for this run (val_size 0); use --split test")
    if bundle.num_classes != ckpt["num_classes"]:
        raise ValueError(
            f"the data has {bundle.num_classes} classes, the model {ckpt['num_classes']}"
        )
    recipe = ckpt.get("recipe") or {}
    size = check_int("batch_size", batch_size or recipe.get("eval_batch_size") or 500, minimum=1)
    cuda = dev.type == "cuda"  # the training run's evaluation settings
    bf16 = cuda and bool(recipe.get("bf16", False))
    loader = DeviceLoader(dataset, size, dev, channels_last=cuda and recipe.get("channels_last"))
    if loader.channels_last:
        model = model.to(memory_format=torch.channels_last)
    logits = predict(model, loader, bf16=bf16)
    return {
        "checkpoint": str(Path(path).resolve()),
        "arch": ckpt["arch"],
        "loss": ckpt.get("loss", (ckpt.get("config") or {}).get("loss")),
        "epoch": ckpt.get("epoch"),
        "split": split,
        "n": int(len(dataset)),
        "data": {k: v for k, v in settings.items() if k != "data_dir"},
        "metrics": metrics_from_logits(logits, dataset.labels, dataset.p_star),
    }


def format_table(result: dict[str, Any]) -> str:
    """The metrics as a two-column Markdown table, with a header line naming the run."""
    head = (
        f"{result['arch']} ({result['loss']}) epoch {result['epoch']}: "
        f"{result['split']} split of {result['data']['data']}, {result['n']} images"
    )
    rows = ["| metric | value |", "|---|---|"]
    for key, label in METRIC_LABELS.items():
        if key in result["metrics"]:
            rows.append(f"| {label} | {result['metrics'][key]:.6f} |")
    return head + "\n\n" + "\n".join(rows) + "\n"
