"""Training losses by name, each with an explicit closed-form gradient with respect to the logits.

Every loss maps logits ``z`` of shape ``(E, B, K)`` (one row of B samples per member) to per-sample
losses ``(E, B)`` and their gradient ``dL/dz`` ``(E, B, K)``. The trainer averages over the valid
samples of each member's batch and back-propagates the gradient by hand, so no loss ever mixes
members. Tests check every gradient against autograd on an independent direct formula.

Names and options (defaults in :data:`LOSS_DEFAULTS`):

- ``ce``: cross-entropy ``-log softmax(z)_y``.
- ``mse``: ``sum_k (softmax(z)_k - e_y,k)^2`` (Theorem 1's Brier loss); option
  ``reduction_over_classes="sum"`` (default) or ``"mean"`` (divides by K, as the paper's code did).
- ``mse_logits``: ``(z - e_y)^2`` on raw logits (the official CIFAR code's variant); option
  ``reduction_over_classes``, default ``"mean"`` as in that code (``nn.MSELoss``).
- ``ls``: cross-entropy to ``(1 - epsilon) e_y + epsilon / K`` (option ``epsilon``).
- ``soft``: ``T^2 KL(p || softmax(z / T))`` to given soft targets ``p`` (options ``temperature``,
  ``scale_t2``; the targets are used as given, not re-tempered).
- ``kd``: ``alpha CE(y, z) + beta T^2 KL(softmax(t / T) || softmax(z / T))`` from teacher logits
  ``t`` (options ``alpha``, ``beta``, ``temperature``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

from ..errors import ConfigError
from ..validation import check_choice, check_fraction, check_positive

LOSS_NAMES = ("ce", "mse", "mse_logits", "ls", "soft", "kd")
LOSS_DEFAULTS: dict[str, dict[str, Any]] = {
    "ce": {},
    "mse": {"reduction_over_classes": "sum"},
    "mse_logits": {"reduction_over_classes": "mean"},
    "ls": {"epsilon": 0.1},
    "soft": {"temperature": 1.0, "scale_t2": True},
    "kd": {"alpha": 0.1, "beta": 0.9, "temperature": 4.0},
}
#: What each loss needs besides logits: labels ``y``, soft ``targets`` or ``teacher_logits``.
LOSS_NEEDS = {
    "ce": ("y",),
    "mse": ("y",),
    "mse_logits": ("y",),
    "ls": ("y",),
    "soft": ("targets",),
    "kd": ("y", "teacher_logits"),
}


@dataclass(frozen=True)
class LossSpec:
    """A loss name with all of its options filled in (recorded with every result)."""

    name: str
    options: Mapping[str, Any]

    def as_dict(self) -> dict[str, Any]:
        """Name and options as a plain dict, for run records."""
        return {"name": self.name, **dict(self.options)}


def make_loss(name: str, options: Mapping[str, Any] | None = None) -> LossSpec:
    """Validate a loss name and its options; unknown names or option keys raise ConfigError."""
    check_choice("loss", name, LOSS_NAMES)
    opts = dict(LOSS_DEFAULTS[name])
    for key, value in dict(options or {}).items():
        if key not in opts:
            valid = ", ".join(opts) or "(none)"
            raise ConfigError(f"unknown option {key!r} for loss {name!r}; valid: {valid}")
        opts[key] = value
    if "reduction_over_classes" in opts:
        check_choice("reduction_over_classes", opts["reduction_over_classes"], ("sum", "mean"))
    if "epsilon" in opts:
        opts["epsilon"] = check_fraction("epsilon", opts["epsilon"], low=0.0, high=1.0)
    if "temperature" in opts:
        opts["temperature"] = check_positive("temperature", opts["temperature"])
    if "scale_t2" in opts and not isinstance(opts["scale_t2"], bool):
        raise ConfigError(f"scale_t2 must be True or False, got {opts['scale_t2']!r}")
    for key in ("alpha", "beta"):
        if key in opts:
            opts[key] = check_positive(key, opts[key], allow_zero=True)
    return LossSpec(name, opts)


def _onehot(y: torch.Tensor, k: int, dtype: torch.dtype) -> torch.Tensor:
    # A comparison rather than F.one_hot, which checks its input on the host (a device sync
    # that would break CUDA-graph capture).
    return (y.unsqueeze(-1) == torch.arange(k, device=y.device)).to(dtype)


def _log_softmax(z: torch.Tensor) -> torch.Tensor:
    # z - logsumexp(z): the same quantity as torch.log_softmax, several times faster on the CPU
    # for the short class axis of these models.
    return z - torch.logsumexp(z, -1, keepdim=True)


def _kl_rows(p: torch.Tensor, log_q: torch.Tensor) -> torch.Tensor:
    """sum_k p_k (log p_k - log q_k) with 0 log 0 = 0."""
    return (torch.xlogy(p, p) - p * log_q).sum(-1)


def loss_and_grad(
    spec: LossSpec,
    z: torch.Tensor,
    *,
    y: torch.Tensor | None = None,
    targets: torch.Tensor | None = None,
    teacher_logits: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample loss ``(..., B)`` and its gradient w.r.t. ``z`` ``(..., B, K)``."""
    name, o = spec.name, spec.options
    k = z.shape[-1]
    if name in ("ce", "ls", "kd"):
        logp = _log_softmax(z)
        q = logp.exp()
        t = _onehot(y, k, z.dtype)
        if name == "ls":
            eps = o["epsilon"]
            t = t * (1.0 - eps) + eps / k
        ce = -(t * logp).sum(-1)
        grad = q - t
        if name != "kd":
            return ce, grad
        temp, alpha, beta = o["temperature"], o["alpha"], o["beta"]
        logq_t = _log_softmax(z / temp)
        pt = _log_softmax(teacher_logits / temp).exp()
        kl = _kl_rows(pt, logq_t)
        loss = alpha * ce + (beta * temp * temp) * kl
        grad = alpha * grad + (beta * temp) * (logq_t.exp() - pt)
        return loss, grad
    if name == "mse":
        q = _log_softmax(z).exp()
        r = q - _onehot(y, k, z.dtype)
        scale = 1.0 / k if o["reduction_over_classes"] == "mean" else 1.0
        loss = (r * r).sum(-1) * scale
        grad = (2.0 * scale) * q * (r - (r * q).sum(-1, keepdim=True))
        return loss, grad
    if name == "mse_logits":
        r = z - _onehot(y, k, z.dtype)
        scale = 1.0 / k if o["reduction_over_classes"] == "mean" else 1.0
        return (r * r).sum(-1) * scale, (2.0 * scale) * r
    if name == "soft":
        temp = o["temperature"]
        s = temp * temp if o["scale_t2"] else 1.0
        logq_t = _log_softmax(z / temp)
        return s * _kl_rows(targets, logq_t), (s / temp) * (logq_t.exp() - targets)
    raise ConfigError(f"unknown loss {name!r}; valid: {', '.join(LOSS_NAMES)}")  # pragma: no cover
