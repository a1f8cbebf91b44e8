"""``soft``: ``T^2 KL(p || softmax(z / T))`` to given soft targets ``p``.

Options ``temperature`` and ``scale_t2`` (multiply by T^2, default true); the targets are used as
given, not re-tempered.
"""

from __future__ import annotations

from ...errors import ConfigError
from ...validation import check_positive
from .base import Loss, kl_rows, log_softmax, register


@register
class SoftTargets(Loss):
    name = "soft"
    defaults = {"temperature": 1.0, "scale_t2": True}
    needs = ("targets",)

    def check(self, options):
        options["temperature"] = check_positive("temperature", options["temperature"])
        if not isinstance(options["scale_t2"], bool):
            raise ConfigError(f"scale_t2 must be True or False, got {options['scale_t2']!r}")
        return options

    def value_and_grad(self, z, *, y=None, targets=None, teacher_logits=None):
        temp = self.options["temperature"]
        s = temp * temp if self.options["scale_t2"] else 1.0
        logq_t = log_softmax(z / temp)
        return s * kl_rows(targets, logq_t), (s / temp) * (logq_t.exp() - targets)
