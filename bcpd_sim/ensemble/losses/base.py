"""The base class of a named training loss, the registry, and the small tensor helpers they share."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import torch

from ...errors import ConfigError

#: Every registered loss by name, in registration order.
LOSSES: dict[str, type[Loss]] = {}


class Loss:
    """A training loss with its options filled in (recorded with every result).

    A subclass sets ``name``, ``defaults`` (its options and their defaults), ``needs`` (the
    inputs besides the logits: ``"y"`` labels, ``"targets"`` soft probabilities,
    ``"teacher_logits"``), optionally ``variants`` (named settings of its options that teachers
    are trained with, e.g. ``mse_mean``), and implements :meth:`check` (validate options) and
    :meth:`value_and_grad`; :func:`register` adds it to :data:`LOSSES`.
    """

    name: ClassVar[str] = ""
    defaults: ClassVar[Mapping[str, Any]] = {}
    needs: ClassVar[tuple[str, ...]] = ("y",)
    variants: ClassVar[Mapping[str, Mapping[str, Any]]] = {}

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        opts = dict(self.defaults)
        for key, value in dict(options or {}).items():
            if key not in opts:
                valid = ", ".join(opts) or "(none)"
                raise ConfigError(f"unknown option {key!r} for loss {self.name!r}; valid: {valid}")
            opts[key] = value
        self.options: dict[str, Any] = self.check(opts)

    def check(self, options: dict[str, Any]) -> dict[str, Any]:
        """Validate (and normalise) the filled-in options; raise ConfigError naming the option."""
        return options

    def value_and_grad(
        self,
        z: torch.Tensor,
        *,
        y: torch.Tensor | None = None,
        targets: torch.Tensor | None = None,
        teacher_logits: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-sample loss ``(..., B)`` and its gradient w.r.t. the logits ``z`` ``(..., B, K)``."""
        raise NotImplementedError

    def value(
        self,
        z: torch.Tensor,
        *,
        y: torch.Tensor | None = None,
        targets: torch.Tensor | None = None,
        teacher_logits: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Per-sample loss ``(..., B)`` alone (validation); a loss may skip its gradient here."""
        return self.value_and_grad(z, y=y, targets=targets, teacher_logits=teacher_logits)[0]

    def as_dict(self) -> dict[str, Any]:
        """Name and options as a plain dict, for run records."""
        return {"name": self.name, **self.options}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Loss) and self.as_dict() == other.as_dict()

    def __hash__(self) -> int:
        return hash(repr(self))

    def __repr__(self) -> str:
        opts = ", ".join(f"{k}={v!r}" for k, v in self.options.items())
        return f"{type(self).__name__}({opts})"


def register(cls: type[Loss]) -> type[Loss]:
    """Class decorator: add a loss to :data:`LOSSES` under its ``name``."""
    if cls.name in LOSSES:
        raise ValueError(f"a loss named {cls.name!r} is already registered")
    LOSSES[cls.name] = cls
    return cls


def onehot(y: torch.Tensor, k: int, dtype: torch.dtype) -> torch.Tensor:
    """One-hot rows of ``y``."""
    # A comparison rather than F.one_hot, which checks its input on the host (a device sync
    # that would break CUDA-graph capture).
    return (y.unsqueeze(-1) == torch.arange(k, device=y.device)).to(dtype)


def log_softmax(z: torch.Tensor) -> torch.Tensor:
    """``z - logsumexp(z)`` over the last axis."""
    # The same quantity as torch.log_softmax, several times faster on the CPU for the short
    # class axis of these models.
    return z - torch.logsumexp(z, -1, keepdim=True)


def kl_rows(p: torch.Tensor, log_q: torch.Tensor) -> torch.Tensor:
    """sum_k p_k (log p_k - log q_k) with 0 log 0 = 0."""
    return (torch.xlogy(p, p) - p * log_q).sum(-1)
