"""``mse``: ``sum_k (softmax(z)_k - e_y,k)^2``, Theorem 1's Brier loss.

Option ``reduction_over_classes``: ``"sum"`` (default) or ``"mean"`` (divides by K, as the paper's
code did: a K-times-smaller gradient). The named teacher variant ``mse_mean`` is the latter.
"""

from __future__ import annotations

from ...validation import check_choice
from .base import Loss, log_softmax, onehot, register


@register
class Brier(Loss):
    name = "mse"
    defaults = {"reduction_over_classes": "sum"}
    variants = {"mse_mean": {"reduction_over_classes": "mean"}}

    def check(self, options):
        check_choice("reduction_over_classes", options["reduction_over_classes"], ("sum", "mean"))
        return options

    def value_and_grad(self, z, *, y=None, targets=None, teacher_logits=None):
        k = z.shape[-1]
        q = log_softmax(z).exp()
        r = q - onehot(y, k, z.dtype)
        scale = 1.0 / k if self.options["reduction_over_classes"] == "mean" else 1.0
        loss = (r * r).sum(-1) * scale
        grad = (2.0 * scale) * q * (r - (r * q).sum(-1, keepdim=True))
        return loss, grad
