"""A case with a closed form: a fixed linear student on a two-class Gaussian mixture.

Classes k = 0, 1 with priors pi_k and x | k ~ N(mu_k, s^2 I). On the direction
u = (mu_1 - mu_0) / ||mu_1 - mu_0||, t = u^T x is a sufficient statistic: t | k ~ N(u^T mu_k, s^2)
and p*(x) depends on x through t alone. A linear student whose weight vector is a multiple of u,
f(x) = softmax([0, a t + b]), and a teacher that is a function of p* (here tempered p*) make every
term of the bound a one-dimensional integral over t, computed by adaptive quadrature (scipy).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import integrate, stats
from scipy.special import log_expit

from ...validation import check_choice, check_int, check_positive


@dataclass(frozen=True)
class TwoGaussianLine:
    """The 1-D reduction: class means ``m0, m1`` of t, variance ``s2``, prior of class 1."""

    m0: float
    m1: float
    s2: float
    prior1: float = 0.5

    def density(self, t: float) -> float:
        s = np.sqrt(self.s2)
        return (1 - self.prior1) * stats.norm.pdf(t, self.m0, s) + self.prior1 * stats.norm.pdf(
            t, self.m1, s
        )

    def p_star(self, t: float) -> np.ndarray:
        s = np.sqrt(self.s2)
        a = np.log(1 - self.prior1) + stats.norm.logpdf(t, self.m0, s)
        b = np.log(self.prior1) + stats.norm.logpdf(t, self.m1, s)
        p1 = float(np.exp(log_expit(b - a)))
        return np.array([1.0 - p1, p1])


def closed_form_terms(
    line: TwoGaussianLine,
    *,
    a: float,
    b: float,
    temperature: float,
    n_set: int,
    loss: str = "ce",
) -> dict[str, float]:
    """Every term of the bound for student softmax([0, a t + b]) and teacher tempered p*.

    Returns ``risk`` R, ``distilled_mean`` E[p^t^T l], ``variance_term`` Var/N, ``bias_sq``,
    ``exact`` = E_S[(R~ - R)^2] = Var/N + bias_sq, ``bias_term`` and ``rhs``.
    """
    check_choice("loss", loss, ("ce", "mse"))
    temperature = check_positive("temperature", temperature)
    n_set = check_int("n_set", n_set, minimum=1)

    def student_losses(t: float) -> np.ndarray:
        z = a * t + b
        log_f = np.array([log_expit(-z), log_expit(z)])
        if loss == "ce":
            return -log_f
        f = np.exp(log_f)
        return (f * f).sum() - 2 * f + 1

    def teacher(t: float) -> np.ndarray:
        p = line.p_star(t)
        w = np.exp(np.log(np.clip(p, 1e-300, None)) / temperature)
        return w / w.sum()

    lo = min(line.m0, line.m1) - 14 * np.sqrt(line.s2)
    hi = max(line.m0, line.m1) + 14 * np.sqrt(line.s2)
    points = [line.m0, line.m1]

    def expect(fn) -> float:
        val, _ = integrate.quad(
            lambda t: fn(t) * line.density(t), lo, hi, points=points, limit=400, epsabs=1e-13
        )
        return float(val)

    risk = expect(lambda t: line.p_star(t) @ student_losses(t))
    mean_g = expect(lambda t: teacher(t) @ student_losses(t))
    second = expect(lambda t: (teacher(t) @ student_losses(t)) ** 2)
    cs = expect(
        lambda t: np.linalg.norm(teacher(t) - line.p_star(t)) * np.linalg.norm(student_losses(t))
    )
    variance_term = (second - mean_g**2) / n_set
    bias_sq = (mean_g - risk) ** 2
    return {
        "risk": risk,
        "distilled_mean": mean_g,
        "variance_term": variance_term,
        "bias_sq": bias_sq,
        "exact": variance_term + bias_sq,
        "bias_term": cs**2,
        "rhs": variance_term + cs**2,
    }
