"""Similarity-preserving KD (Tung & Mori, ICCV 2019) on the last stage outputs.

``G = normalize_rows(F F^T)`` with ``F`` the flattened last-stage feature maps of a batch of size b;
the term is ``||G_t - G_s||_F^2 / b^2``, weighted by ``feat_weight`` (3000), as in the CRD code.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .base import Distiller, as_float, register
from .kd import optional_kd


def similarity_matrix(f: torch.Tensor) -> torch.Tensor:
    """Row-L2-normalised Gram matrix of the flattened features: (batch, batch)."""
    f = as_float(f).flatten(1)
    return F.normalize(f @ f.t(), dim=1)


def sp_loss(student_feature, teacher_feature) -> torch.Tensor:
    """``||G_t - G_s||_F^2 / batch^2``."""
    b = student_feature.shape[0]
    diff = similarity_matrix(teacher_feature) - similarity_matrix(student_feature)
    return diff.pow(2).sum() / (b * b)


@register("sp")
class SP(Distiller):
    """``ce_weight * CE + feat_weight * SP`` (1 and 3000; add KD with ``kd_weight``)."""

    needs_features = True
    DEFAULTS = {"ce_weight": 1.0, "feat_weight": 3000.0, "kd_weight": 0.0, "temperature": 4.0}

    def distill_loss(self, s, t, targets, sf, tf, epoch):
        out = {"sp": (self.hparams["feat_weight"], sp_loss(sf.blocks[-1], tf.blocks[-1]))}
        out.update(optional_kd(self, s, t))
        return out
