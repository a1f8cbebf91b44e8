"""Decoupled knowledge distillation (Zhao et al., CVPR 2022).

The KD loss splits into a target-class part (TCKD: KL between the binary distributions
``[p_target, 1 - p_target]``) and a non-target part (NCKD: KL between the distributions over the
other classes, renormalised); classical KD equals ``TCKD + (1 - p_target^teacher) * NCKD``. DKD
weights them freely: ``CE + warmup * (alpha * TCKD + beta * NCKD)``, both times ``T^2``, where
``warmup = min((epoch + 1) / warmup_epochs, 1)`` (epochs counted from 0).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..models.registry import DEFAULT_DKD_BETA as DEFAULT_BETA
from ..models.registry import settings_of
from .base import Distiller, register


def default_beta(teacher: Any) -> float:
    """DKD's beta for a teacher (its model, registered name or ``ArchConfig``): the
    architecture's ``dkd_beta`` (mdistiller's ``configs/cifar100/dkd/*.yaml``: 2 for resnet56 /
    resnet110, 6 for wrn_40_2 / vgg13), 8 for anything else."""
    cfg = settings_of(teacher)
    return DEFAULT_BETA if cfg is None else cfg.dkd_beta


def _target_log_probs(logits: torch.Tensor, targets: torch.Tensor, temperature: float):
    """log p_target, log (1 - p_target) and the log-softmax over the non-target classes."""
    z = logits / temperature
    lse_all = torch.logsumexp(z, dim=1)
    # A scatter, not F.one_hot: one_hot checks the labels' range with a host sync on CPU.
    mask = torch.zeros_like(z, dtype=torch.bool).scatter_(1, targets[:, None], True)
    z_other = z.masked_fill(mask, float("-inf"))
    lse_other = torch.logsumexp(z_other, dim=1)
    log_p_target = z.gather(1, targets[:, None]).squeeze(1) - lse_all
    log_p_other = lse_other - lse_all
    log_q_other = z_other - lse_other[:, None]  # -inf at the target class
    return log_p_target, log_p_other, log_q_other, mask


def tckd_loss(student_logits, teacher_logits, targets, temperature=4.0, reduction="mean"):
    """Target-class KD: ``T^2 * KL(b_teacher || b_student)`` with ``b = [p_target, 1 - p_target]``."""
    s_t, s_o, _, _ = _target_log_probs(student_logits, targets, temperature)
    t_t, t_o, _, _ = _target_log_probs(teacher_logits, targets, temperature)
    per = t_t.exp() * (t_t - s_t) + t_o.exp() * (t_o - s_o)
    per = per * temperature**2
    return per.mean() if reduction == "mean" else per


def nckd_loss(student_logits, teacher_logits, targets, temperature=4.0, reduction="mean"):
    """Non-target KD: ``T^2 * KL(q_teacher || q_student)`` over the classes other than the target."""
    _, _, s_q, mask = _target_log_probs(student_logits, targets, temperature)
    _, _, t_q, _ = _target_log_probs(teacher_logits, targets, temperature)
    terms = t_q.exp() * (t_q - s_q)
    per = terms.masked_fill(mask, 0.0).sum(dim=1) * temperature**2
    return per.mean() if reduction == "mean" else per


@register("dkd")
class DKD(Distiller):
    """``ce_weight * CE + warmup * (alpha * TCKD + beta * NCKD)``; beta from the teacher's
    ``arch_cfg`` unless given (``teacher_arch`` names an architecture when no model is at hand)."""

    DEFAULTS = {
        "ce_weight": 1.0,
        "alpha": 1.0,
        "beta": DEFAULT_BETA,
        "temperature": 4.0,
        "warmup_epochs": 20.0,
    }

    @classmethod
    def extra_keys(cls):
        return ("teacher_arch",)

    def __init__(self, teacher: nn.Module, student: nn.Module, **kwargs: Any) -> None:
        arch = kwargs.pop("teacher_arch", None)
        if "beta" not in kwargs:
            kwargs["beta"] = default_beta(arch if arch is not None else teacher)
        super().__init__(teacher, student, **kwargs)
        cfg = settings_of(arch if arch is not None else teacher)
        self.teacher_arch = arch if cfg is None else cfg.name

    def warmup_factor(self, epoch: int) -> float:
        w = self.hparams["warmup_epochs"]
        return 1.0 if w <= 0 else min((epoch + 1) / w, 1.0)

    def distill_loss(self, s, t, targets, sf, tf, epoch):
        temp = self.hparams["temperature"]
        factor = self.warmup_factor(epoch)
        return {
            "tckd": (factor * self.hparams["alpha"], tckd_loss(s, t, targets, temp)),
            "nckd": (factor * self.hparams["beta"], nckd_loss(s, t, targets, temp)),
        }
