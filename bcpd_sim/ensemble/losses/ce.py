"""``ce``: cross-entropy ``-log softmax(z)_y``."""

from __future__ import annotations

from .base import Loss, log_softmax, register


@register
class CrossEntropy(Loss):
    name = "ce"

    def value_and_grad(self, z, *, y=None, targets=None, teacher_logits=None):
        # The label's entry by gather / scatter rather than a one-hot product: the same numbers
        # (adding exact zeros changes nothing), with fewer passes over the logits.
        logp = log_softmax(z)
        yi = y.unsqueeze(-1)
        grad = logp.exp().scatter_(-1, yi, -1.0, reduce="add")
        return -logp.gather(-1, yi).squeeze(-1), grad

    def value(self, z, *, y=None, targets=None, teacher_logits=None):
        return -log_softmax(z).gather(-1, y.unsqueeze(-1)).squeeze(-1)
