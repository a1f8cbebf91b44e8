"""Relational knowledge distillation (Park et al., CVPR 2019) on the pooled embeddings.

Distance term: pairwise Euclidean distances, each divided by the mean of the positive ones, compared
with the smooth-L1 (Huber, beta 1) loss; angle term: cosines of the angles ``e_i - e_j, e_k - e_j``
for all triples, compared with smooth-L1. ``feat_weight * (25 * distance + 50 * angle)``, as in the
CRD benchmark code.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .base import Distiller, as_float, register
from .kd import optional_kd


def pairwise_distances(e: torch.Tensor, eps: float = 1e-12, squared: bool = False) -> torch.Tensor:
    """Euclidean distance matrix with a zero diagonal (squared distances clamped at ``eps``)."""
    e = as_float(e).flatten(1)
    sq = e.pow(2).sum(dim=1)
    d = (sq[:, None] + sq[None, :] - 2 * e @ e.t()).clamp(min=eps)
    if not squared:
        d = d.sqrt()
    eye = torch.eye(len(e), dtype=torch.bool, device=e.device)
    return d.masked_fill(eye, 0.0)


def positive_mean(d: torch.Tensor) -> torch.Tensor:
    """Mean of the positive entries of a non-negative tensor, as two sums (no boolean indexing,
    so no host synchronisation on the GPU)."""
    return d.sum() / (d > 0).sum()


def rkd_distance_loss(student_embedding, teacher_embedding, eps: float = 1e-12) -> torch.Tensor:
    """Smooth-L1 between the distance matrices, each divided by the mean of its positive entries."""
    with torch.no_grad():
        td = pairwise_distances(teacher_embedding, eps)
        td = td / positive_mean(td)
    sd = pairwise_distances(student_embedding, eps)
    sd = sd / positive_mean(sd)
    return F.smooth_l1_loss(sd, td)


def _angles(e: torch.Tensor) -> torch.Tensor:
    e = as_float(e).flatten(1)
    diff = F.normalize(e.unsqueeze(0) - e.unsqueeze(1), p=2, dim=2)
    return torch.bmm(diff, diff.transpose(1, 2)).flatten()


def rkd_angle_loss(student_embedding, teacher_embedding) -> torch.Tensor:
    """Smooth-L1 between the cosines of all angles formed by triples of samples."""
    with torch.no_grad():
        ta = _angles(teacher_embedding)
    return F.smooth_l1_loss(_angles(student_embedding), ta)


@register("rkd")
class RKD(Distiller):
    """``ce_weight * CE + feat_weight * (distance_weight * D + angle_weight * A)``."""

    needs_features = True
    DEFAULTS = {
        "ce_weight": 1.0,
        "feat_weight": 1.0,
        "distance_weight": 25.0,
        "angle_weight": 50.0,
        "kd_weight": 0.0,
        "temperature": 4.0,
    }

    def distill_loss(self, s, t, targets, sf, tf, epoch):
        w = self.hparams["feat_weight"]
        out = {
            "rkd_distance": (
                w * self.hparams["distance_weight"],
                rkd_distance_loss(sf.embedding, tf.embedding),
            ),
            "rkd_angle": (
                w * self.hparams["angle_weight"],
                rkd_angle_loss(sf.embedding, tf.embedding),
            ),
        }
        out.update(optional_kd(self, s, t))
        return out
