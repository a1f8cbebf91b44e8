"""Attention transfer (Zagoruyko & Komodakis, ICLR 2017), as in the CRD benchmark code.

For each paired stage output ``f`` (batch, C, H, W) the attention map is
``a(f) = normalize(mean_c f^p)`` flattened over H*W (L2 per sample); the term is
``sum over stage pairs of mean((a(f_s) - a(f_t))^2)``, weighted by ``feat_weight`` (1000).
Stages are paired from the last one backwards; a spatial mismatch is average-pooled away.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .base import Distiller, as_float, match_spatial, pair_blocks, register
from .kd import optional_kd


def attention_map(f: torch.Tensor, p: float = 2.0) -> torch.Tensor:
    """``normalize(f.pow(p).mean(channels))`` flattened: (batch, H*W), unit L2 norm per row."""
    return F.normalize(as_float(f).pow(p).mean(1).flatten(1), dim=1)


def at_loss(student_blocks, teacher_blocks, p: float = 2.0) -> torch.Tensor:
    """Sum over paired stages of the mean squared difference of the attention maps."""
    total = None
    for fs, ft in pair_blocks(student_blocks, teacher_blocks):
        fs, ft = match_spatial(fs, ft)
        term = (attention_map(fs, p) - attention_map(ft, p)).pow(2).mean()
        total = term if total is None else total + term
    return total


@register("at")
class AT(Distiller):
    """``ce_weight * CE + feat_weight * AT`` (1 and 1000; add KD with ``kd_weight``)."""

    needs_features = True
    DEFAULTS = {
        "ce_weight": 1.0,
        "feat_weight": 1000.0,
        "p": 2.0,
        "kd_weight": 0.0,
        "temperature": 4.0,
    }

    def distill_loss(self, s, t, targets, sf, tf, epoch):
        out = {
            "at": (self.hparams["feat_weight"], at_loss(sf.blocks, tf.blocks, self.hparams["p"]))
        }
        out.update(optional_kd(self, s, t))
        return out
