"""``kd``: ``alpha CE(y, z) + beta T^2 KL(softmax(t / T) || softmax(z / T))`` from teacher logits
``t`` (Hinton et al. 2015; options ``alpha``, ``beta``, ``temperature``, ``hard_labels``).

``hard_labels`` says what the CE term's label is: ``"data"`` (default) the given labels ``y``;
``"teacher"`` the teacher's own argmax, for inputs that carry no label (distillation on fresh,
unlabelled inputs), so no drawn label reaches the student."""

from __future__ import annotations

from ...validation import check_choice, check_positive
from .base import Loss, kl_rows, log_softmax, onehot, register


@register
class Distillation(Loss):
    name = "kd"
    defaults = {"alpha": 0.1, "beta": 0.9, "temperature": 4.0, "hard_labels": "data"}
    needs = ("y", "teacher_logits")
    HARD_LABELS = ("data", "teacher")

    def check(self, options):
        options["hard_labels"] = check_choice(
            "hard_labels", options["hard_labels"], self.HARD_LABELS
        )
        options["temperature"] = check_positive("temperature", options["temperature"])
        for key in ("alpha", "beta"):
            options[key] = check_positive(key, options[key], allow_zero=True)
        return options

    def value_and_grad(self, z, *, y=None, targets=None, teacher_logits=None):
        o = self.options
        logp = log_softmax(z)
        if o["hard_labels"] == "teacher":
            y = teacher_logits.argmax(-1)
        t = onehot(y, z.shape[-1], z.dtype)
        ce, grad = -(t * logp).sum(-1), logp.exp() - t
        temp, alpha, beta = o["temperature"], o["alpha"], o["beta"]
        logq_t = log_softmax(z / temp)
        pt = log_softmax(teacher_logits / temp).exp()
        loss = alpha * ce + (beta * temp * temp) * kl_rows(pt, logq_t)
        return loss, alpha * grad + (beta * temp) * (logq_t.exp() - pt)
