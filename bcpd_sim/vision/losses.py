"""Teacher training losses, chosen by name.

- ``ce``: cross-entropy, mean over the batch.
- ``mse``: the Brier score, ``mse_scale * mean_n sum_k (softmax(z_n)_k - onehot(y_n)_k)^2``:
  squared error between the softmax probabilities and the one-hot label, summed over classes.
- ``mse_logits``: the official code's variant: raw logits regressed onto one-hot vectors,
  ``mse_scale * mean over all N*K entries of (z_nk - onehot_nk)^2`` (``nn.MSELoss()`` default).
- ``ls``: label smoothing, cross-entropy to ``0.9 onehot + 0.1 / K`` (Szegedy et al. 2016).

The official teacher script compared a method object to a string, so it always trained with CE;
here the loss is looked up by its name in a table, and :func:`teacher_loss` fails loudly on any
name it does not know. Losses are computed in float32 even under bf16 autocast.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..validation import check_choice, check_positive


def ce_loss(logits: torch.Tensor, targets: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """Cross-entropy, mean over the batch (``scale`` multiplies it)."""
    return scale * F.cross_entropy(logits.float(), targets)


def mse_loss(logits: torch.Tensor, targets: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """Brier loss: ``scale * mean_n sum_k (softmax(logits)_nk - onehot_nk)^2``."""
    probs = torch.softmax(logits.float(), dim=1)
    onehot = F.one_hot(targets, probs.shape[1]).to(probs.dtype)
    return scale * (probs - onehot).pow(2).sum(dim=1).mean()


def mse_logits_loss(
    logits: torch.Tensor, targets: torch.Tensor, scale: float = 1.0
) -> torch.Tensor:
    """Official-code variant: ``scale * mean over all entries of (logits - onehot)^2``."""
    logits = logits.float()
    onehot = F.one_hot(targets, logits.shape[1]).to(logits.dtype)
    return scale * F.mse_loss(logits, onehot)


def ls_loss(logits: torch.Tensor, targets: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """Label smoothing: cross-entropy to ``0.9 e_y + 0.1 / K`` (the ensemble's ``ls``, epsilon
    0.1), mean over the batch."""
    return scale * F.cross_entropy(logits.float(), targets, label_smoothing=0.1)


LOSSES: dict[str, Callable[..., torch.Tensor]] = {
    "ce": ce_loss,
    "mse": mse_loss,
    "mse_logits": mse_logits_loss,
    "ls": ls_loss,
}


def list_losses() -> list[str]:
    return list(LOSSES)


@dataclass(frozen=True)
class TeacherLoss:
    """A named loss with its scale: ``loss(logits, targets) -> scalar``."""

    name: str
    scale: float = 1.0

    @property
    def fn(self) -> Callable[..., torch.Tensor]:
        return LOSSES[self.name]

    def __call__(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return self.fn(logits, targets, self.scale)


def teacher_loss(name: str, *, mse_scale: float = 1.0) -> TeacherLoss:
    """The loss called ``name`` (``ce``, ``mse``, ``mse_logits``); ``mse_scale`` scales the MSE ones.

    Raises ConfigError for an unknown name, or a non-unit scale given with ``ce``.
    """
    check_choice("loss", name, LOSSES)
    scale = check_positive("mse_scale", mse_scale)
    if name in ("ce", "ls") and scale != 1.0:
        from ..errors import ConfigError

        raise ConfigError(
            f"mse_scale applies to the mse losses only; leave it at 1 for loss {name!r}"
        )
    return TeacherLoss(name, scale)
