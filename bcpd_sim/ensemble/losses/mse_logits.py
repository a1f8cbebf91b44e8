"""``mse_logits``: ``(z - e_y)^2`` on raw logits (the official CIFAR code's variant).

Option ``reduction_over_classes``, default ``"mean"`` as in that code (``nn.MSELoss``).
"""

from __future__ import annotations

from ...validation import check_choice
from .base import Loss, onehot, register


@register
class LogitRegression(Loss):
    name = "mse_logits"
    defaults = {"reduction_over_classes": "mean"}

    def check(self, options):
        check_choice("reduction_over_classes", options["reduction_over_classes"], ("sum", "mean"))
        return options

    def value_and_grad(self, z, *, y=None, targets=None, teacher_logits=None):
        k = z.shape[-1]
        r = z - onehot(y, k, z.dtype)
        scale = 1.0 / k if self.options["reduction_over_classes"] == "mean" else 1.0
        return (r * r).sum(-1) * scale, (2.0 * scale) * r
