"""Classical knowledge distillation (Hinton et al. 2015): 0.1 CE + 0.9 KL at T = 4, times T^2."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .base import Distiller, register


def kd_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    temperature: float = 4.0,
    reduction: str = "mean",
) -> torch.Tensor:
    """``T^2 * KL(softmax(t/T) || softmax(s/T))`` per sample, averaged over the batch by default."""
    log_ps = F.log_softmax(student_logits / temperature, dim=1)
    log_pt = F.log_softmax(teacher_logits / temperature, dim=1)
    per_sample = (log_pt.exp() * (log_pt - log_ps)).sum(dim=1) * temperature**2
    return per_sample.mean() if reduction == "mean" else per_sample


@register("kd")
class KD(Distiller):
    """Total loss ``ce_weight * CE + kd_weight * T^2 KL`` (defaults 0.1, 0.9, T = 4)."""

    DEFAULTS = {"ce_weight": 0.1, "kd_weight": 0.9, "temperature": 4.0}

    def distill_loss(self, s, t, targets, sf, tf, epoch):
        return {"kd": (self.hparams["kd_weight"], kd_loss(s, t, self.hparams["temperature"]))}


def optional_kd(distiller: Distiller, s: torch.Tensor, t: torch.Tensor) -> dict:
    """The KD term for feature methods combined with KD (``kd_weight`` > 0), else nothing."""
    w = distiller.hparams.get("kd_weight", 0.0)
    if w <= 0:
        return {}
    return {"kd": (w, kd_loss(s, t, distiller.hparams.get("temperature", 4.0)))}
