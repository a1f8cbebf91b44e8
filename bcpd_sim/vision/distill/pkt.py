"""Probabilistic knowledge transfer (Passalis & Tefas, ECCV 2018) on the pooled embeddings.

Cosine similarities between the samples of a batch, mapped to [0, 1] by ``(c + 1) / 2`` and
normalised per row into conditional distributions; the term is
``mean over all entries of  P_t * log((P_t + eps) / (P_s + eps))`` with eps = 1e-7, weighted by
``feat_weight`` (30000), as in the CRD benchmark code.
"""

from __future__ import annotations

import torch

from .base import Distiller, as_float, register
from .kd import optional_kd


def _conditional_similarity(x: torch.Tensor, eps: float) -> torch.Tensor:
    x = as_float(x).flatten(1)
    x = x / (x.norm(dim=1, keepdim=True) + eps)
    x = torch.nan_to_num(x)
    sim = (x @ x.t() + 1.0) / 2.0
    return sim / sim.sum(dim=1, keepdim=True)


def pkt_loss(student_embedding, teacher_embedding, eps: float = 1e-7) -> torch.Tensor:
    """PKT's KL-style divergence between the two batches' similarity distributions."""
    ps = _conditional_similarity(student_embedding, eps)
    pt = _conditional_similarity(teacher_embedding, eps)
    return (pt * torch.log((pt + eps) / (ps + eps))).mean()


@register("pkt")
class PKT(Distiller):
    """``ce_weight * CE + feat_weight * PKT`` (1 and 30000; add KD with ``kd_weight``)."""

    needs_features = True
    DEFAULTS = {"ce_weight": 1.0, "feat_weight": 30000.0, "kd_weight": 0.0, "temperature": 4.0}

    def distill_loss(self, s, t, targets, sf, tf, epoch):
        out = {"pkt": (self.hparams["feat_weight"], pkt_loss(sf.embedding, tf.embedding))}
        out.update(optional_kd(self, s, t))
        return out
