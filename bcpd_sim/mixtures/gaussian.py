"""Gaussian families with exact BCPD: isotropic, full-covariance and multi-modal classes.

All three are views on one engine, :class:`GaussianComponents`: a list of Gaussian components,
each owned by a class with a weight inside that class. log p(x|k) is the log-sum-exp over the
components of class k.
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import solve_triangular
from scipy.special import logsumexp

from ..errors import ConfigError
from ..validation import check_finite_array, check_int, check_positive
from .base import ClassConditionalDistribution, check_dims, check_priors

LOG_2PI = float(np.log(2.0 * np.pi))


def cholesky_spd(cov: np.ndarray, name: str) -> np.ndarray:
    """Lower Cholesky factor of a symmetric positive definite matrix, or a ConfigError."""
    if not np.allclose(cov, cov.T, rtol=1e-10, atol=1e-12):
        raise ConfigError(f"{name} must be symmetric")
    try:
        return np.linalg.cholesky(cov)
    except np.linalg.LinAlgError:
        raise ConfigError(f"{name} must be positive definite") from None


class GaussianComponents(ClassConditionalDistribution):
    """Class-conditional densities that are finite Gaussian mixtures.

    Args:
        means: (C, d) component means.
        owner: (C,) class index of each component (every class owns at least one).
        weights: (C,) weight of each component within its class (per class they sum to 1).
        variances: (C,) isotropic variances, or None when ``covariances`` is given.
        covariances: (C, d, d) symmetric positive definite matrices, or None.
        priors: (K,) class priors; uniform when None.
    """

    def __init__(self, means, owner, weights, *, variances=None, covariances=None, priors=None):
        means = check_finite_array("means", means, ndim=2)
        owner = np.asarray(owner, dtype=np.int64)
        num_classes = int(owner.max()) + 1 if owner.size else 0
        self.num_classes, self.dim = check_dims(num_classes, means.shape[1])
        if owner.shape != (len(means),) or set(owner.tolist()) != set(range(self.num_classes)):
            raise ConfigError("every class must own at least one component")
        weights = check_finite_array("weights", weights, ndim=1)
        if weights.shape != owner.shape or np.any(weights < 0):
            raise ConfigError("component weights must be non-negative, one per component")
        for k in range(self.num_classes):
            total = weights[owner == k].sum()
            if not np.isclose(total, 1.0, atol=1e-9):
                raise ConfigError(f"component weights of class {k} must sum to 1, got {total:.12g}")
        self.priors = check_priors(priors, self.num_classes)
        self._means = means
        self._owner = owner
        self._log_w = np.log(weights)
        self._weights = weights
        self._single = len(means) == self.num_classes and np.array_equal(
            owner, np.arange(self.num_classes)
        )
        if (variances is None) == (covariances is None):
            raise ConfigError("give exactly one of variances or covariances")
        if variances is not None:
            var = np.broadcast_to(np.asarray(variances, dtype=np.float64), owner.shape).copy()
            for v in var:
                check_positive("noise_var", v)
            self._var = var
            self._chol = None
            self._mean_sq = np.einsum("cd,cd->c", means, means)
        else:
            cov = check_finite_array("covariances", covariances, ndim=3)
            if cov.shape != (len(means), self.dim, self.dim):
                raise ConfigError(
                    f"covariances must have shape ({len(means)}, {self.dim}, {self.dim}), got {cov.shape}"
                )
            self._var = None
            self._chol = np.stack([cholesky_spd(c, f"covariances[{i}]") for i, c in enumerate(cov)])
            self._half_logdet = np.log(np.diagonal(self._chol, axis1=1, axis2=2)).sum(axis=1)

    # --------------------------------------------------------------- densities
    def _scratch_per_class(self) -> int:
        return max(1, len(self._means) // self.num_classes)

    def component_log_density(self, x: np.ndarray) -> np.ndarray:
        """log N(x; mu_c, Sigma_c) for every component, shape (n, C)."""
        d = self.dim
        if self._var is not None:
            sq = x @ self._means.T
            sq *= -2.0
            sq += np.einsum("nd,nd->n", x, x)[:, None]
            sq += self._mean_sq[None, :]
            np.maximum(sq, 0.0, out=sq)
            sq /= -2.0 * self._var
            sq -= 0.5 * d * (LOG_2PI + np.log(self._var))
            return sq
        out = np.empty((len(x), len(self._means)))
        for c, (mu, chol) in enumerate(zip(self._means, self._chol)):
            z = solve_triangular(chol, (x - mu).T, lower=True, check_finite=False)
            out[:, c] = (
                -0.5 * np.einsum("dn,dn->n", z, z) - self._half_logdet[c] - 0.5 * d * LOG_2PI
            )
        return out

    def _class_log_density(self, x: np.ndarray) -> np.ndarray:
        comp = self.component_log_density(x)
        if self._single:
            return comp
        comp += self._log_w
        out = np.empty((len(x), self.num_classes))
        for k in range(self.num_classes):
            out[:, k] = logsumexp(comp[:, self._owner == k], axis=1)
        return out

    # --------------------------------------------------------------- sampling
    def _sample_components(self, y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if self._single:
            return y
        u = rng.random(len(y))
        comp = np.empty(len(y), dtype=np.int64)
        for k in range(self.num_classes):
            members = np.flatnonzero(self._owner == k)
            mask = y == k
            cum = np.cumsum(self._weights[members])
            idx = np.searchsorted(cum, u[mask] * cum[-1], side="right")
            comp[mask] = members[np.minimum(idx, len(members) - 1)]
        return comp

    def _sample_given_labels(self, y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        comp = self._sample_components(y, rng)
        eps = rng.standard_normal((len(y), self.dim))
        if self._var is not None:
            eps *= np.sqrt(self._var)[comp][:, None]
        else:
            for c in np.unique(comp):
                mask = comp == c
                eps[mask] = eps[mask] @ self._chol[c].T
        eps += self._means[comp]
        return eps


class IsotropicGaussianMixture(GaussianComponents):
    """p(x | y=k) = N(mu_k, noise_var * I): the paper's synthetic family.

    p*(k | x) = softmax_k(log pi_k - ||x - mu_k||^2 / (2 noise_var)) when noise_var is shared.
    ``noise_var`` may be a scalar or one variance per class.
    """

    def __init__(self, means, noise_var, priors=None):
        means = check_finite_array("means", means, ndim=2)
        check_dims(len(means), means.shape[1])
        nv = np.asarray(noise_var, dtype=np.float64)
        if nv.ndim > 1 or (nv.ndim == 1 and nv.shape != (len(means),)):
            raise ConfigError(f"noise_var must be a scalar or have shape ({len(means)},)")
        for v in np.atleast_1d(nv):
            check_positive("noise_var", v)
        k = len(means)
        super().__init__(means, np.arange(k), np.ones(k), variances=nv, priors=priors)
        self.means = means
        self.noise_var = float(nv) if nv.ndim == 0 else nv

    @classmethod
    def lattice(
        cls,
        num_classes: int = 10,
        dim: int = 30,
        delta: float = 1.0,
        noise_var: float = 6.0,
        seed: int = 0,
        priors=None,
    ) -> IsotropicGaussianMixture:
        """Means with entries drawn uniformly from {-delta, 0, delta} (distinct rows)."""
        num_classes, dim = check_dims(num_classes, dim)
        delta = check_positive("delta", delta)
        rng = np.random.default_rng(seed)
        for _ in range(1000):
            means = delta * rng.integers(-1, 2, size=(num_classes, dim)).astype(np.float64)
            if len(np.unique(means, axis=0)) == num_classes:
                return cls(means, noise_var, priors)
        raise ConfigError(
            f"cannot draw {num_classes} distinct lattice means in dim={dim}; increase dim"
        )


class GaussianMixture(GaussianComponents):
    """p(x | y=k) = N(mu_k, Sigma_k) with a full covariance per class."""

    def __init__(self, means, covariances, priors=None):
        means = check_finite_array("means", means, ndim=2)
        check_dims(len(means), means.shape[1])
        k = len(means)
        super().__init__(means, np.arange(k), np.ones(k), covariances=covariances, priors=priors)
        self.means = means
        self.covariances = np.asarray(covariances, dtype=np.float64)

    @classmethod
    def random(
        cls,
        num_classes: int = 10,
        dim: int = 30,
        separation: float = 1.0,
        scale: float = 6.0,
        seed: int = 0,
        priors=None,
    ) -> GaussianMixture:
        """Random means (sd ``separation``) and random SPD covariances with trace ~ ``scale * dim``."""
        num_classes, dim = check_dims(num_classes, dim)
        rng = np.random.default_rng(seed)
        means = separation * rng.standard_normal((num_classes, dim))
        covs = []
        for _ in range(num_classes):
            a = rng.standard_normal((dim, dim)) / np.sqrt(dim)
            c = scale * (0.5 * np.eye(dim) + 0.5 * a @ a.T)
            covs.append(0.5 * (c + c.T))
        return cls(means, np.stack(covs), priors)


class MultiModalGaussianMixture(GaussianComponents):
    """Each class is itself a mixture of M isotropic Gaussians (multi-modal classes).

    Args:
        component_means: (K, M, d) means of the M modes of each class.
        component_var: scalar, (K,) or (K, M) isotropic variances.
        component_weights: (K, M) mode weights per class (rows sum to 1); equal when None.
        priors: (K,) class priors; uniform when None.
    """

    def __init__(self, component_means, component_var, component_weights=None, priors=None):
        cm = check_finite_array("component_means", component_means, ndim=3)
        k, m, d = cm.shape
        check_dims(k, d)
        check_int("modes_per_class", m, minimum=1)
        if component_weights is None:
            component_weights = np.full((k, m), 1.0 / m)
        w = check_finite_array("component_weights", component_weights, ndim=2)
        if w.shape != (k, m):
            raise ConfigError(f"component_weights must have shape ({k}, {m}), got {w.shape}")
        var = np.asarray(component_var, dtype=np.float64)
        try:
            var = np.broadcast_to(var if var.ndim != 1 else var[:, None], (k, m))
        except ValueError:
            raise ConfigError(f"component_var must be a scalar, ({k},) or ({k}, {m})") from None
        super().__init__(
            cm.reshape(k * m, d),
            np.repeat(np.arange(k), m),
            w.reshape(-1),
            variances=var.reshape(-1),
            priors=priors,
        )
        self.component_means = cm
        self.component_var = var
        self.component_weights = w

    @classmethod
    def random(
        cls,
        num_classes: int = 10,
        dim: int = 30,
        modes_per_class: int = 3,
        spread: float = 2.0,
        noise_var: float = 2.0,
        seed: int = 0,
        priors=None,
    ) -> MultiModalGaussianMixture:
        """Modes scattered with standard deviation ``spread``; random Dirichlet mode weights."""
        num_classes, dim = check_dims(num_classes, dim)
        modes = check_int("modes_per_class", modes_per_class, minimum=1)
        spread = check_positive("spread", spread)
        rng = np.random.default_rng(seed)
        means = spread * rng.standard_normal((num_classes, modes, dim))
        weights = rng.dirichlet(np.full(modes, 5.0), size=num_classes)
        return cls(means, noise_var, weights, priors)
