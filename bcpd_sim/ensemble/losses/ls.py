"""``ls``: cross-entropy to the smoothed label ``(1 - epsilon) e_y + epsilon / K``."""

from __future__ import annotations

from ...validation import check_fraction
from .base import Loss, log_softmax, onehot, register


@register
class LabelSmoothing(Loss):
    name = "ls"
    defaults = {"epsilon": 0.1}

    def check(self, options):
        options["epsilon"] = check_fraction("epsilon", options["epsilon"], low=0.0, high=1.0)
        return options

    def value_and_grad(self, z, *, y=None, targets=None, teacher_logits=None):
        k = z.shape[-1]
        logp = log_softmax(z)
        eps = self.options["epsilon"]
        t = onehot(y, k, z.dtype) * (1.0 - eps) + eps / k
        return -(t * logp).sum(-1), logp.exp() - t
