"""Theorem 1 and its cross-entropy analogue, term by term, with standard errors.

For a probability output q(x) and labels y drawn from the BCPD p*(x):

    E ||q(X) - e_Y||^2  = E ||q(X) - p*(X)||^2 + E [1 - ||p*(X)||^2]        (MSE, Theorem 1)
    E [-log q_Y(X)]     = E KL(p*(X) || q(X))  + E H(p*(X))                 (CE analogue)

On a sample, each side is a sample mean of per-point terms. The residual
risk - distance - model_free is the mean of terms whose expectation given x is zero, so the
theorem says it vanishes within its standard error. The "exact" risk replaces the sampled label by
its expectation under p*, so it needs no labels at all.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from ..errors import ConfigError
from ..validation import check_finite_array


def mean_se(values: np.ndarray) -> tuple[float, float]:
    """Sample mean and its standard error (sd with ddof=1 over sqrt(n)); inf-aware."""
    values = np.asarray(values, dtype=np.float64)
    mean = float(values.mean())
    if len(values) < 2 or not np.isfinite(mean):
        return mean, float("nan")
    return mean, float(values.std(ddof=1) / np.sqrt(len(values)))


def z_score(value: float, se: float, *, tiny: float = 1e-12) -> float:
    """value / se, except that a residual that is zero to rounding (e.g. for a constant predictor,
    where it vanishes identically, not just in expectation) scores 0 rather than noise / noise."""
    if abs(value) < tiny and se < tiny:
        return 0.0
    if se == 0 or not np.isfinite(se):
        return float("nan") if value == 0 else float(np.sign(value) * np.inf)
    return value / se


def _check_bcpd_and_labels(p_star, y) -> tuple[np.ndarray, np.ndarray]:
    p_star = _check_probabilities("p_star", p_star)
    y = np.asarray(y)
    if y.shape != (len(p_star),):
        raise ConfigError(f"y must have shape ({len(p_star)},), got {y.shape}")
    if not np.issubdtype(y.dtype, np.integer) or np.any((y < 0) | (y >= p_star.shape[1])):
        raise ConfigError(f"y must hold integer labels in [0, {p_star.shape[1] - 1}]")
    if len(y) < 2:
        raise ConfigError("need at least n >= 2 points for standard errors")
    return p_star, y.astype(np.int64)


def _check_probabilities(name: str, arr, shape: tuple[int, ...] | None = None) -> np.ndarray:
    arr = check_finite_array(name, arr, ndim=2)
    if shape is not None and arr.shape != shape:
        raise ConfigError(f"{name} must have the shape of p_star {shape}, got {arr.shape}")
    if np.any(arr < 0) or not np.allclose(arr.sum(axis=1), 1.0, atol=1e-6):
        raise ConfigError(f"{name} rows must be probability vectors (>= 0, summing to 1)")
    return arr


class _Decomposition:
    """What both decompositions share: risk = distance to p* + model-free term + residual."""

    residual: float
    residual_se: float

    @property
    def distance_term(self) -> float:  # pragma: no cover - overridden
        raise NotImplementedError

    @property
    def model_free_term(self) -> float:  # pragma: no cover - overridden
        raise NotImplementedError

    @property
    def prediction(self) -> float:
        """The theorem's prediction of the risk: distance + model-free term (= exact_risk)."""
        return self.distance_term + self.model_free_term

    @property
    def residual_z(self) -> float:
        """The residual in units of its standard error (see :func:`z_score`)."""
        return z_score(self.residual, self.residual_se)

    def as_dict(self) -> dict:
        return asdict(self) | {"prediction": self.prediction, "residual_z": self.residual_z}


@dataclass(frozen=True)
class MSEDecomposition(_Decomposition):
    """Sample-mean terms of Theorem 1 (per-sample squared L2, summed over classes)."""

    risk: float
    risk_se: float
    distance: float
    distance_se: float
    irreducible: float
    irreducible_se: float
    residual: float
    residual_se: float
    exact_risk: float
    exact_risk_se: float
    n: int

    @property
    def distance_term(self) -> float:
        return self.distance

    @property
    def model_free_term(self) -> float:
        return self.irreducible


@dataclass(frozen=True)
class CEDecomposition(_Decomposition):
    """Sample-mean terms of the CE analogue: risk = KL(p* || q) + H(p*) + residual."""

    risk: float
    risk_se: float
    kl: float
    kl_se: float
    entropy: float
    entropy_se: float
    residual: float
    residual_se: float
    exact_risk: float
    exact_risk_se: float
    n: int

    @property
    def distance_term(self) -> float:
        return self.kl

    @property
    def model_free_term(self) -> float:
        return self.entropy


def mse_decomposition(q, p_star, y) -> MSEDecomposition:
    """Theorem 1 on a sample: risk, distance to the BCPD, model-free term and residual.

    Args:
        q: (n, K) predicted probabilities.
        p_star: (n, K) the BCPD at the same inputs.
        y: (n,) sampled labels.
    """
    p_star, y = _check_bcpd_and_labels(p_star, y)
    q = _check_probabilities("q", q, p_star.shape)
    rows = np.arange(len(y))
    q_sq = np.einsum("nk,nk->n", q, q)
    risk = q_sq - 2.0 * q[rows, y] + 1.0  # ||q - e_y||^2
    diff = q - p_star
    distance = np.einsum("nk,nk->n", diff, diff)
    irreducible = 1.0 - np.einsum("nk,nk->n", p_star, p_star)
    residual = risk - distance - irreducible
    exact = distance + irreducible
    terms = [mean_se(t) for t in (risk, distance, irreducible, residual, exact)]
    return MSEDecomposition(*[v for pair in terms for v in pair], n=len(y))


def ce_decomposition(q, p_star, y, *, log_q=None) -> CEDecomposition:
    """The CE analogue on a sample: risk = mean -log q_y, KL(p*||q), H(p*), residual.

    Args:
        q: (n, K) predicted probabilities (may be None when ``log_q`` is given).
        p_star: (n, K) the BCPD at the same inputs.
        y: (n,) sampled labels.
        log_q: optional (n, K) log-probabilities, for precision when q underflows.
    """
    p_star, y = _check_bcpd_and_labels(p_star, y)
    if log_q is None:
        q = _check_probabilities("q", q, p_star.shape)
        with np.errstate(divide="ignore"):
            log_q = np.log(q)
    else:
        log_q = np.asarray(log_q, dtype=np.float64)
        if log_q.shape != p_star.shape or np.any(np.isnan(log_q)) or np.any(log_q > 1e-9):
            raise ConfigError(f"log_q must be {p_star.shape} log-probabilities (<= 0, no NaN)")
        if not np.allclose(np.exp(log_q).sum(axis=1), 1.0, atol=1e-6):
            raise ConfigError("log_q rows must exponentiate to probability vectors")
    rows = np.arange(len(y))
    risk = -log_q[rows, y]
    positive = p_star > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        log_p = np.where(positive, np.log(np.where(positive, p_star, 1.0)), 0.0)
        kl = np.where(positive, p_star * (log_p - log_q), 0.0).sum(axis=1)  # KL(p* || q)
    entropy = -(p_star * log_p).sum(axis=1)  # H(p*), with 0 log 0 = 0
    with np.errstate(invalid="ignore"):  # inf - inf when q gives a label zero probability
        residual = risk - kl - entropy
    cross = kl + entropy  # CE(p*, q), the exact-in-y risk
    terms = [mean_se(t) for t in (risk, kl, entropy, residual, cross)]
    return CEDecomposition(*[v for pair in terms for v in pair], n=len(y))
