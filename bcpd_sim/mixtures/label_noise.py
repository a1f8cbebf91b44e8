"""Label noise through a transition matrix: y_noisy ~ T[y_clean, :].

The observed-label BCPD is p*_noisy(x) = p*(x) T, computed in log space as
log p*_noisy(j | x) = logsumexp_k(log p*(k | x) + log T[k, j]).
"""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp

from ..errors import ConfigError
from ..validation import check_finite_array, check_fraction, check_int
from .base import ClassConditionalDistribution, Sample


def symmetric_transition(num_classes: int, rate: float) -> np.ndarray:
    """Keep the label with probability 1 - rate, else move to each other class uniformly."""
    k = check_int("num_classes", num_classes, minimum=2)
    rate = check_fraction("rate", rate)
    t = np.full((k, k), rate / (k - 1))
    np.fill_diagonal(t, 1.0 - rate)
    return t


def pair_flip_transition(num_classes: int, rate: float) -> np.ndarray:
    """Asymmetric noise: class k becomes class (k + 1) mod K with probability ``rate``."""
    k = check_int("num_classes", num_classes, minimum=2)
    rate = check_fraction("rate", rate)
    t = (1.0 - rate) * np.eye(k)
    t[np.arange(k), (np.arange(k) + 1) % k] += rate
    return t


def check_transition(t, num_classes: int) -> np.ndarray:
    t = check_finite_array("transition", t, ndim=2)
    if t.shape != (num_classes, num_classes):
        raise ConfigError(
            f"transition must have shape ({num_classes}, {num_classes}), got {t.shape}"
        )
    if np.any(t < 0) or not np.allclose(t.sum(axis=1), 1.0, atol=1e-9):
        raise ConfigError(
            "transition must be non-negative with rows summing to 1, got row sums "
            f"{t.sum(axis=1).round(12).tolist()} and minimum entry {t.min():.6g}"
        )
    return t


class LabelNoiseMixture(ClassConditionalDistribution):
    """Observed labels are the base labels passed through the transition matrix ``transition``.

    Args:
        base: the clean distribution.
        transition: (K, K) row-stochastic matrix, T[k, j] = P(observed j | clean k).
    """

    def __init__(self, base: ClassConditionalDistribution, transition):
        if not isinstance(base, ClassConditionalDistribution):
            raise ConfigError("base must be a bcpd_sim.mixtures distribution")
        self.base = base
        self.transition = check_transition(transition, base.num_classes)
        self.num_classes = base.num_classes
        self.dim = base.dim
        self.priors = self.base.priors @ self.transition
        with np.errstate(divide="ignore"):
            self._log_t = np.log(self.transition)

    @classmethod
    def symmetric(cls, base: ClassConditionalDistribution, rate: float) -> LabelNoiseMixture:
        return cls(base, symmetric_transition(base.num_classes, rate))

    @classmethod
    def pair_flip(cls, base: ClassConditionalDistribution, rate: float) -> LabelNoiseMixture:
        return cls(base, pair_flip_transition(base.num_classes, rate))

    def _class_log_density(self, x: np.ndarray) -> np.ndarray:
        # log p(x | observed j) = logsumexp_k [log pi_k + log p(x|k) + log T_kj] - log pi'_j
        joint = self.base._class_log_density(x) + np.log(self.base.priors)
        out = logsumexp(joint[:, :, None] + self._log_t[None, :, :], axis=1)
        with np.errstate(divide="ignore"):
            return out - np.log(self.priors)

    def log_bcpd(self, x) -> np.ndarray:
        """log (p*(x) T), from the base's exact log-BCPD."""
        base = self.base.log_bcpd(x)
        return logsumexp(base[:, :, None] + self._log_t[None, :, :], axis=1)

    def sample(self, n: int, seed: int | np.random.Generator | None = 0) -> Sample:
        """Clean labels and inputs from the base, then labels flipped through T."""
        n = check_int("n", n, minimum=1)
        rng = np.random.default_rng(seed)
        clean = self.base.sample_labels(n, rng)
        x = self.base._sample_given_labels(clean, rng)
        y = self._flip(clean, rng)
        return Sample(x=x, y=y, p_star=self.bcpd(x))

    def _flip(self, clean: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        cum = np.cumsum(self.transition, axis=1)
        u = rng.random(len(clean))
        noisy = (u[:, None] * cum[clean, -1:] >= cum[clean]).sum(axis=1)
        return np.minimum(noisy, self.num_classes - 1).astype(np.int64)

    def _sample_given_labels(self, y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        # x | observed label j: draw the clean label from P(clean k | observed j), then x | k.
        post = self.base.priors[:, None] * self.transition  # (K clean, K observed)
        post = post / post.sum(axis=0, keepdims=True)
        cum = np.cumsum(post.T, axis=1)
        u = rng.random(len(y))
        clean = np.minimum((u[:, None] >= cum[y]).sum(axis=1), self.num_classes - 1)
        return self.base._sample_given_labels(clean.astype(np.int64), rng)

    def __repr__(self) -> str:
        return f"LabelNoiseMixture(base={self.base!r})"
