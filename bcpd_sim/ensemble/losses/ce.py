"""``ce``: cross-entropy ``-log softmax(z)_y``."""

from __future__ import annotations

from .base import Loss, log_softmax, onehot, register


@register
class CrossEntropy(Loss):
    name = "ce"

    def value_and_grad(self, z, *, y=None, targets=None, teacher_logits=None):
        logp = log_softmax(z)
        t = onehot(y, z.shape[-1], z.dtype)
        return -(t * logp).sum(-1), logp.exp() - t
