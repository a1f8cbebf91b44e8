"""Evaluation of a classifier on a loader, and the mixed-precision context the trainers share."""

from __future__ import annotations

from contextlib import nullcontext

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..distributed import SINGLE, DistContext, all_reduce_sum
from .pipeline import DeviceLoader


def autocast(device: torch.device, enabled: bool):
    """bf16 autocast on CUDA when ``enabled``; a no-op context otherwise (CPU runs stay fp32)."""
    if enabled and device.type == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return nullcontext()


@torch.no_grad()
def evaluate(
    model: nn.Module,
    loader: DeviceLoader,
    *,
    p_star: np.ndarray | None = None,
    bf16: bool = False,
    dist: DistContext = SINGLE,
) -> dict[str, float]:
    """Accuracy, top-5 accuracy (the label among the 5 largest logits; ties count as found), NLL
    and Brier score on a loader; with ``p_star`` (rows aligned with the loader's
    dataset) also ``mse_pstar`` = mean_n sum_k (p_nk - p*_nk)^2 and ``kl_pstar`` = mean_n
    KL(p*_n || p_n), computed in float64. The loader must not shuffle unless it yields indices.
    Under DDP (``dist``) each rank evaluates its shard and the sums are reduced over ranks."""
    was_training = model.training
    model.eval()
    device = loader.device
    ps = None if p_star is None else torch.as_tensor(p_star, dtype=torch.float64, device=device)
    sums = torch.zeros(7, dtype=torch.float64, device=device)
    offset = 0
    for batch in loader:
        x, y = batch[0], batch[1]
        # Rows of p_star: the loader's indices, or (in-order loaders) a running offset.
        idx = batch[2] if len(batch) > 2 else torch.arange(offset, offset + len(y), device=device)
        offset += len(y)
        with autocast(device, bf16):
            logits = model(x)
        logp = torch.log_softmax(logits.double(), dim=1)
        p = logp.exp()
        onehot = F.one_hot(y, p.shape[1]).double()
        sums[0] += (logits.argmax(1) == y).sum()
        sums[1] += -(logp.gather(1, y[:, None])).sum()
        sums[2] += (p - onehot).pow(2).sum()
        above = (logits > logits.gather(1, y[:, None])).sum(1)
        sums[5] += (above < min(5, logits.shape[1])).sum()
        if ps is not None:
            q = ps.index_select(0, idx)
            sums[3] += (p - q).pow(2).sum()
            sums[4] += (torch.xlogy(q, q) - q * logp).sum()
    model.train(was_training)
    sums[6] = loader.num_images
    all_reduce_sum(sums, dist)
    s = (sums[:6] / sums[6]).tolist()
    out = {"acc": s[0], "top5": s[5], "nll": s[1], "brier": s[2]}
    if ps is not None:
        out.update(mse_pstar=s[3], kl_pstar=s[4])
    return out
