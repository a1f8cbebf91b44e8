"""The common interface of every exact-BCPD distribution and its shared machinery.

A distribution over (x, y) with x in R^d and y in {0..K-1} is given by class priors pi_k and
class-conditional densities p(x | y=k). Its Bayes conditional probability density (BCPD) is
p*(k | x) = pi_k p(x|k) / sum_j pi_j p(x|j), computed here in float64 with log-sum-exp and in
chunks, so that millions of points never need more than a bounded amount of scratch memory.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np
from scipy.special import logsumexp

from ..errors import ConfigError
from ..validation import check_finite_array, check_int

#: Scratch memory (bytes) a chunk of a bcpd() computation may use.
CHUNK_BYTES = 64 * 2**20

#: Version of the scheme that turns a seed into train / validation / test splits, recorded with
#: every run. 1: one stream, all labels then all inputs, cut into consecutive pieces (the training
#: inputs depended on n_val and n_test). 2: each split from its own child stream
#: (``numpy.random.SeedSequence(seed).spawn``), so a split depends only on the seed, its position
#: and its own size.
SAMPLING_SCHEME = 2


@dataclass(frozen=True)
class Sample:
    """Draws from a distribution: inputs, labels and the exact BCPD at each input."""

    x: np.ndarray  # (n, d) float64
    y: np.ndarray  # (n,) int64
    p_star: np.ndarray  # (n, K) float64

    def __len__(self) -> int:
        return len(self.y)

    def split(self, *sizes: int) -> tuple[Sample, ...]:
        """Consecutive pieces of the given sizes (e.g. train / validation / test)."""
        if sum(sizes) > len(self):
            raise ConfigError(f"split sizes {sizes} exceed the sample size {len(self)}")
        edges = np.cumsum((0, *sizes))
        return tuple(
            Sample(self.x[a:b], self.y[a:b], self.p_star[a:b]) for a, b in zip(edges, edges[1:])
        )


@dataclass(frozen=True)
class Estimate:
    """A Monte Carlo estimate with its standard error."""

    value: float
    se: float
    n: int

    def __iter__(self):
        return iter((self.value, self.se))

    def __str__(self) -> str:
        return f"{self.value:.4f} ± {self.se:.4f} (n={self.n})"


def check_priors(priors, num_classes: int) -> np.ndarray:
    """Class priors as float64: uniform when None; otherwise non-negative and summing to 1."""
    if priors is None:
        return np.full(num_classes, 1.0 / num_classes)
    arr = np.asarray(priors, dtype=np.float64)
    if arr.shape != (num_classes,):
        raise ConfigError(f"priors must have shape ({num_classes},), got {arr.shape}")
    if not np.all(np.isfinite(arr)) or np.any(arr < 0):
        raise ConfigError(f"priors must be finite and non-negative, got {arr.tolist()}")
    if not np.isclose(arr.sum(), 1.0, atol=1e-9):
        raise ConfigError(f"priors must sum to 1, got {arr.sum():.12g}")
    return arr


def log_softmax_rows(logits: np.ndarray) -> np.ndarray:
    """Row-wise log-softmax in float64, in place where possible."""
    out = logits - logits.max(axis=1, keepdims=True)
    out -= np.log(np.exp(out).sum(axis=1, keepdims=True))
    return out


class ClassConditionalDistribution(ABC):
    """A joint distribution of (x, y) with an exactly computable BCPD.

    Subclasses provide :meth:`class_log_density` (log p(x | y=k), shape (n, K)) and
    :meth:`_sample_given_labels`; everything else is shared.
    """

    num_classes: int
    dim: int
    priors: np.ndarray

    # ----------------------------------------------------------------- to implement
    @abstractmethod
    def _class_log_density(self, x: np.ndarray) -> np.ndarray:
        """log p(x | y=k) for a chunk of validated float64 inputs, shape (n, K)."""

    @abstractmethod
    def _sample_given_labels(self, y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Inputs x ~ p(x | y) for the given labels, shape (len(y), d)."""

    def _class_log_density_shifted(self, x: np.ndarray) -> np.ndarray:
        """log p(x | y=k) minus any per-row constant (cancels in p*); families override it
        where a shifted form keeps more precision."""
        return self._class_log_density(x)

    def _chunk_rows(self) -> int:
        """Rows per chunk so that the scratch arrays stay under CHUNK_BYTES."""
        per_row = 8 * (self.dim + 4 * self.num_classes * max(1, self._scratch_per_class()))
        return max(1024, CHUNK_BYTES // per_row)

    def _scratch_per_class(self) -> int:
        return 1

    # ----------------------------------------------------------------- public API
    def class_log_density(self, x) -> np.ndarray:
        """log p(x | y=k) for every input and class, shape (n, K), float64."""
        x = self._check_x(x)
        return self._chunked(x, self._class_log_density)

    def log_joint(self, x) -> np.ndarray:
        """log pi_k + log p(x | y=k), shape (n, K)."""
        x = self._check_x(x)
        log_pi = np.log(self.priors)
        return self._chunked(x, lambda c: self._class_log_density(c) + log_pi)

    def log_bcpd(self, x) -> np.ndarray:
        """log p*(k | x), shape (n, K), float64, computed with log-sum-exp."""
        x = self._check_x(x)
        log_pi = np.log(self.priors)
        return self._chunked(
            x, lambda c: log_softmax_rows(self._class_log_density_shifted(c) + log_pi)
        )

    def bcpd(self, x) -> np.ndarray:
        """The Bayes conditional probability density p*(k | x), shape (n, K), float64."""
        out = self.log_bcpd(x)
        np.exp(out, out=out)
        return out

    def log_marginal_density(self, x) -> np.ndarray:
        """log p(x) = log sum_k pi_k p(x | k), shape (n,)."""
        return logsumexp(self.log_joint(x), axis=1)

    def sample_labels(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return rng.choice(self.num_classes, size=n, p=self.priors).astype(np.int64)

    def sample(self, n: int, seed: int | np.random.Generator | None = 0) -> Sample:
        """Draw n labelled points and their exact BCPD. The same seed gives the same sample."""
        n = check_int("n", n, minimum=1)
        rng = np.random.default_rng(seed)
        y = self.sample_labels(n, rng)
        x = self._sample_given_labels(y, rng)
        return Sample(x=x, y=y, p_star=self.bcpd(x))

    def sample_splits(self, sizes, seed: int) -> tuple[Sample, ...]:
        """Independent samples of the given sizes (e.g. train / validation / test), split i drawn
        from child stream i of ``SeedSequence(seed)``: changing one size never changes another
        split (sampling scheme 2, :data:`SAMPLING_SCHEME`)."""
        sizes = [check_int("split size", n, minimum=1) for n in sizes]
        children = np.random.SeedSequence(check_int("seed", seed, minimum=0)).spawn(len(sizes))
        return tuple(self.sample(n, seed=np.random.default_rng(c)) for n, c in zip(sizes, children))

    def bayes_accuracy(self, n: int = 200_000, seed: int = 0) -> Estimate:
        """Accuracy of the Bayes classifier argmax_k p*(k|x), by Monte Carlo.

        Uses E[max_k p*(k|X)] (the accuracy given x, averaged over sampled x), which is
        unbiased and has lower variance than counting argmax == y.
        """
        n = check_int("n", n, minimum=2)
        rng = np.random.default_rng(seed)
        y = self.sample_labels(n, rng)
        x = self._sample_given_labels(y, rng)
        best = self.bcpd(x).max(axis=1)
        return Estimate(float(best.mean()), float(best.std(ddof=1) / np.sqrt(n)), n)

    # ----------------------------------------------------------------- helpers
    def _check_x(self, x) -> np.ndarray:
        arr = np.asarray(x, dtype=np.float64)
        if arr.ndim != 2 or arr.shape[1] != self.dim:
            raise ConfigError(f"x must have shape (n, {self.dim}), got {arr.shape}")
        if not np.all(np.isfinite(arr)):
            raise ConfigError("x must contain only finite values (found NaN or inf)")
        return arr

    def _chunked(self, x: np.ndarray, fn) -> np.ndarray:
        rows = self._chunk_rows()
        if len(x) <= rows:
            return fn(x)
        out = np.empty((len(x), self.num_classes), dtype=np.float64)
        for start in range(0, len(x), rows):
            out[start : start + rows] = fn(x[start : start + rows])
        return out

    def __repr__(self) -> str:
        return f"{type(self).__name__}(num_classes={self.num_classes}, dim={self.dim})"


def check_dims(num_classes: int, dim: int) -> tuple[int, int]:
    num_classes = check_int("num_classes", num_classes, minimum=2)
    dim = check_int("dim", dim, minimum=1)
    return num_classes, dim


def check_means(means, *, name: str = "means", ndim: int = 2) -> np.ndarray:
    return check_finite_array(name, means, ndim=ndim)
