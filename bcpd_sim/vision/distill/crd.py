"""Contrastive representation distillation (Tian, Krishnan & Isola, ICLR 2020), as in RepDistiller.

Student and teacher embeddings (the pooled penultimate vectors) are each mapped by a trainable
linear layer to ``feat_dim`` = 128 dimensions and L2-normalised. Two memory banks hold one
normalised vector per training image: the students' and the teachers'. For every image of a batch
the positive is its own row and ``nce_k`` = 16,384 negatives are rows of images of other classes
(RepDistiller's ``mode='exact'`` sampling, with replacement). Scores
``exp(<memory row, anchor> / nce_t)`` with ``nce_t`` = 0.07 are divided by a constant ``Z`` fixed
at the first batch (mean score times the number of images); the NCE loss of each direction is

    -(1/B) sum_i [ log(P_i0 / (P_i0 + K/N + eps)) + sum_j log((K/N) / (P_ij + K/N + eps)) ]

with eps = 1e-7, N the number of training images, and the two directions (student anchor against
the teacher bank, teacher anchor against the student bank) are added. After the scores, each bank
row of the batch moves to ``normalise(nce_m * row + (1 - nce_m) * embedding)`` with ``nce_m`` = 0.5.
Total loss ``ce_weight * CE + crd_weight * NCE (+ kd_weight * KD)``: 1, 0.8 and 0 as in
RepDistiller's ``train_student.py --distill crd -a 0 -b 0.8``; ``kd_weight=1`` gives its CRD+KD.

The memory banks need the dataset index of every image of a batch (the trainer passes it) and the
training labels (for the negatives); the banks and ``Z`` are buffers, so checkpoints and resume
keep them.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ...errors import ConfigError
from .base import Distiller, as_float, feature_shapes, register
from .kd import optional_kd

EPS = 1e-7


def nce_loss(scores: torch.Tensor, n_data: int) -> torch.Tensor:
    """RepDistiller's ``ContrastLoss``: ``scores`` is ``(B, 1 + K)``, the positive first."""
    k = scores.shape[1] - 1
    noise = k / n_data
    log_pos = torch.log(scores[:, 0] / (scores[:, 0] + noise + EPS))
    log_neg = torch.log(noise / (scores[:, 1:] + noise + EPS))
    return -(log_pos.sum() + log_neg.sum()) / scores.shape[0]


def contrast_scores(
    anchor: torch.Tensor,
    memory: torch.Tensor,
    contrast_idx: torch.Tensor,
    temperature: float,
    gather: bool | None = None,
) -> torch.Tensor:
    """``exp(<memory[contrast_idx[i, j]], anchor[i]> / T)``, shape ``(B, 1 + K)`` (unnormalised).

    When the bank has fewer rows than the batch draws (``N <= B (1 + K)``, e.g. 50,000 against
    64 x 16,385) all ``N x B`` products are one matrix product, read from the bank once, and the
    drawn ones are picked out; otherwise the drawn rows are gathered (RepDistiller's way). Both
    give the same numbers. ``gather`` forces one way (None: the cheaper).
    """
    memory = memory.detach()
    if gather is None:
        gather = memory.shape[0] > contrast_idx.numel()
    if not gather:
        # a copy: autograd keeps it for the backward pass, and the bank is updated in place
        dots = (anchor @ memory.t().clone()).gather(1, contrast_idx)
    else:
        rows = memory.index_select(0, contrast_idx.reshape(-1)).view(*contrast_idx.shape, -1)
        dots = torch.bmm(rows, anchor.unsqueeze(2)).squeeze(2)
    return torch.exp(dots / temperature)


class Embed(nn.Module):
    """Linear map to ``dim_out`` followed by L2 normalisation (RepDistiller's ``Embed``)."""

    def __init__(self, dim_in: int, dim_out: int) -> None:
        super().__init__()
        self.linear = nn.Linear(dim_in, dim_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.linear(x.flatten(1))
        return x / x.pow(2).sum(1, keepdim=True).sqrt()


class ClassNegativeSampler(nn.Module):
    """Uniform draws, with replacement, among the images whose label differs from a given one.

    Holds the training indices sorted by class; a draw ``r`` uniform in ``[0, N - n_y)`` skips
    the block of class ``y``. Without labels every image is a candidate (``mode='relax'``).
    """

    def __init__(self, labels: Any | None, n_data: int) -> None:
        super().__init__()
        self.n_data = n_data
        if labels is None:
            order = torch.arange(n_data)
            start = count = torch.zeros(1, dtype=torch.long)
        else:
            y = torch.as_tensor(np.asarray(labels), dtype=torch.long)
            if y.dim() != 1 or len(y) != n_data:
                raise ConfigError(f"crd: labels must be a vector of {n_data} training labels")
            order = torch.argsort(y, stable=True)
            count = torch.bincount(y)
            start = torch.cumsum(count, 0) - count
            if (count == n_data).any():
                raise ConfigError("crd: every training image has the same class; no negatives")
        self.exact = labels is not None
        self.register_buffer("order", order, persistent=False)
        self.register_buffer("start", start, persistent=False)
        self.register_buffer("count", count, persistent=False)

    def forward(self, targets: torch.Tensor, k: int) -> torch.Tensor:
        """``(B, k)`` dataset indices of negatives for labels ``targets``."""
        b = targets.shape[0]
        u = torch.rand(b, k, device=self.order.device, dtype=torch.float64)
        if not self.exact:
            return (u * self.n_data).long().clamp_(max=self.n_data - 1)
        n_y, s_y = self.count[targets][:, None], self.start[targets][:, None]
        r = torch.minimum((u * (self.n_data - n_y)).long(), self.n_data - n_y - 1)
        return self.order[r + n_y * (r >= s_y)]


@register("crd")
class CRD(Distiller):
    """``ce_weight * CE + crd_weight * (NCE_s + NCE_t)`` (+ optional KD); see the module doc.

    Needs ``n_data`` (training images) and, for class-aware negatives, ``labels``; the trainer
    passes both. Connectors: ``embed_s`` and ``embed_t`` (trained with the student).
    """

    needs_features = True
    needs_index = True
    DEFAULTS = {
        "ce_weight": 1.0,
        "crd_weight": 0.8,
        "kd_weight": 0.0,
        "temperature": 4.0,
        "nce_k": 16384.0,
        "nce_t": 0.07,
        "nce_m": 0.5,
        "feat_dim": 128.0,
    }

    @classmethod
    def extra_keys(cls):
        return ("n_data", "labels")

    def __init__(self, teacher: nn.Module, student: nn.Module, **kwargs: Any) -> None:
        n_data = kwargs.pop("n_data", None)
        labels = kwargs.pop("labels", None)
        super().__init__(teacher, student, **kwargs)
        if n_data is None:
            n_data = None if labels is None else len(labels)
        if not isinstance(n_data, int) or isinstance(n_data, bool) or n_data < 2:
            raise ConfigError(
                f"crd needs n_data, the number of training images (>= 2); got {n_data}"
            )
        for key in ("nce_k", "feat_dim"):
            value = self.hparams[key]
            if value < 1 or value != int(value):
                raise ConfigError(f"crd.{key} must be a positive integer, got {value}")
        if not 0 <= self.hparams["nce_m"] < 1 or self.hparams["nce_t"] <= 0:
            raise ConfigError("crd.nce_m must be in [0, 1) and crd.nce_t positive")
        self.n_data = n_data
        dim = int(self.hparams["feat_dim"])
        s_dim = feature_shapes(student).embedding[0]
        t_dim = feature_shapes(teacher).embedding[0]
        self.embed_s = Embed(s_dim, dim)
        self.embed_t = Embed(t_dim, dim)
        self.sampler = ClassNegativeSampler(labels, n_data)
        stdv = 1.0 / math.sqrt(dim / 3)
        self.register_buffer("memory_s", torch.rand(n_data, dim).mul_(2 * stdv).add_(-stdv))
        self.register_buffer("memory_t", torch.rand(n_data, dim).mul_(2 * stdv).add_(-stdv))
        self.register_buffer("z", torch.full((2,), -1.0))  # Z of the student / teacher scores
        self.gather_rows: bool | None = None  # contrast_scores' choice (True: RepDistiller's way)

    def contrast(
        self, f_s: torch.Tensor, f_t: torch.Tensor, index: torch.Tensor, contrast_idx: torch.Tensor
    ) -> torch.Tensor:
        """NCE loss of both directions for normalised embeddings; updates banks and Z."""
        temperature, momentum = self.hparams["nce_t"], self.hparams["nce_m"]
        out_s = contrast_scores(f_s, self.memory_t, contrast_idx, temperature, self.gather_rows)
        out_t = contrast_scores(f_t, self.memory_s, contrast_idx, temperature, self.gather_rows)
        with torch.no_grad():  # Z is set once, from the first batch (no host sync: torch.where)
            first = torch.stack([out_s.mean(), out_t.mean()]).to(self.z.dtype) * self.n_data
            self.z.copy_(torch.where(self.z < 0, first, self.z))
        loss = nce_loss(out_s / self.z[0], self.n_data) + nce_loss(out_t / self.z[1], self.n_data)
        with torch.no_grad():
            for bank, f in ((self.memory_s, f_s), (self.memory_t, f_t)):
                rows = bank.index_select(0, index) * momentum + f.detach() * (1 - momentum)
                bank.index_copy_(0, index, F.normalize(rows, dim=1, eps=0.0))
        return loss

    def distill_loss(self, s, t, targets, sf, tf, epoch, index=None):
        if index is None:
            raise ConfigError("crd needs the dataset index of every image of a batch")
        index = index.to(self.memory_s.device).long()
        negatives = self.sampler(targets.to(index.device), int(self.hparams["nce_k"]))
        contrast_idx = torch.cat([index[:, None], negatives], dim=1)
        f_s = self.embed_s(as_float(sf.embedding))
        f_t = self.embed_t(as_float(tf.embedding).detach())
        out = {"crd": (self.hparams["crd_weight"], self.contrast(f_s, f_t, index, contrast_idx))}
        out.update(optional_kd(self, s, t))
        return out
