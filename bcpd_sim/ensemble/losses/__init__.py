"""Training losses by name, each one small class with a closed-form gradient w.r.t. the logits.

Every loss maps logits ``z`` of shape ``(E, B, K)`` (one row of B samples per member) to per-sample
losses ``(E, B)`` and their gradient ``dL/dz`` ``(E, B, K)``. The trainer averages over the valid
samples of each member's batch and back-propagates the gradient by hand, so no loss ever mixes
members. A loss says which inputs it needs (``Loss.needs``); the trainer asks it, never its name.
Tests check every gradient against autograd, and every value against an independent formula.

Registered losses (one module each; defaults in :data:`LOSS_DEFAULTS`): ``ce`` (:mod:`.ce`),
``mse`` (:mod:`.mse`, Theorem 1's Brier loss), ``mse_logits`` (:mod:`.mse_logits`), ``ls``
(:mod:`.ls`), ``soft`` (:mod:`.soft`, to given soft targets), ``kd`` (:mod:`.kd`, from teacher
logits). :data:`TEACHER_LOSSES` names the settings teachers are trained with (the losses that need
only labels, and their named variants such as ``mse_mean``); the CIFAR side uses the same names.

To add a loss: a module here with a :class:`Loss` subclass decorated with :func:`register`, and
its import below.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from ...validation import check_choice
from .base import LOSSES, Loss, register

# isort: off
# Each module registers its loss; this order is the order of LOSS_NAMES and TEACHER_LOSSES.
from . import ce, mse, mse_logits, ls, soft, kd  # noqa: E402, F401
# isort: on

#: Kept for callers written against the earlier name of a configured loss.
LossSpec = Loss

LOSS_NAMES = tuple(LOSSES)
LOSS_DEFAULTS: dict[str, dict[str, Any]] = {n: dict(c.defaults) for n, c in LOSSES.items()}
#: What each loss needs besides logits: labels ``y``, soft ``targets`` or ``teacher_logits``.
LOSS_NEEDS: dict[str, tuple[str, ...]] = {n: c.needs for n, c in LOSSES.items()}


def _teacher_losses() -> dict[str, tuple[str, dict[str, Any]]]:
    out: dict[str, tuple[str, dict[str, Any]]] = {}
    for name, cls in LOSSES.items():
        if cls.needs != ("y",):
            continue
        out[name] = (name, dict(cls.defaults))
        for variant, options in cls.variants.items():
            out[variant] = (name, {**cls.defaults, **options})
    return out


#: Teacher losses by name -> (registered loss, its full options): results record these names.
TEACHER_LOSSES: dict[str, tuple[str, dict[str, Any]]] = _teacher_losses()


def make_loss(name: str, options: Mapping[str, Any] | None = None) -> Loss:
    """The loss called ``name`` with ``options`` validated; unknown names or options raise
    ConfigError listing the valid ones."""
    check_choice("loss", name, LOSSES)
    return LOSSES[name](options)


def loss_and_grad(
    spec: Loss,
    z: torch.Tensor,
    *,
    y: torch.Tensor | None = None,
    targets: torch.Tensor | None = None,
    teacher_logits: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample loss ``(..., B)`` and its gradient w.r.t. ``z`` ``(..., B, K)``."""
    return spec.value_and_grad(z, y=y, targets=targets, teacher_logits=teacher_logits)


__all__ = [
    "LOSSES",
    "LOSS_DEFAULTS",
    "LOSS_NAMES",
    "LOSS_NEEDS",
    "Loss",
    "LossSpec",
    "TEACHER_LOSSES",
    "loss_and_grad",
    "make_loss",
    "register",
]
