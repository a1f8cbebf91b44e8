"""Gaussian families with exact BCPD: isotropic, full-covariance and multi-modal classes.

All three are views on one engine, :class:`GaussianComponents`: a list of Gaussian components,
each owned by a class with a weight inside that class. log p(x|k) is the log-sum-exp over the
components of class k.
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import cho_solve, solve_triangular
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
            raise ConfigError(
                f"owner must give one class per component ({len(means)}) and every class "
                f"0..{self.num_classes - 1} must own at least one, got {owner.tolist()}"
            )
        weights = check_finite_array("weights", weights, ndim=1)
        if weights.shape != owner.shape or np.any(weights < 0):
            raise ConfigError(
                f"weights must be non-negative, one per component ({len(owner)}), "
                f"got {weights.tolist()}"
            )
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
        else:
            cov = check_finite_array("covariances", covariances, ndim=3)
            if cov.shape != (len(means), self.dim, self.dim):
                raise ConfigError(
                    f"covariances must have shape ({len(means)}, {self.dim}, {self.dim}), got {cov.shape}"
                )
            self._var = None
            self._chol = np.stack([cholesky_spd(c, f"covariances[{i}]") for i, c in enumerate(cov)])
            self._half_logdet = np.log(np.diagonal(self._chol, axis1=1, axis2=2)).sum(axis=1)
            eye = np.eye(self.dim)
            self._precisions = np.stack(
                [cho_solve((chol, True), eye, check_finite=False) for chol in self._chol]
            )
            self._precisions = 0.5 * (self._precisions + self._precisions.transpose(0, 2, 1))

    # --------------------------------------------------------------- densities
    def _scratch_per_class(self) -> int:
        return max(1, len(self._means) // self.num_classes)

    def component_log_density(self, x: np.ndarray) -> np.ndarray:
        """log N(x; mu_c, Sigma_c) for every component, shape (n, C)."""
        rel, base = self._component_log_density_shifted(x)
        rel += base[:, None]
        return rel

    def _component_log_density_shifted(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(rel, base)`` with log N(x; mu_c, Sigma_c) = rel[:, c] + base, computed stably.

        Each row is expressed relative to its nearest component r: with x' = x - mu_r and
        D_c = mu_c - mu_r, the difference of two quadratic forms is expanded so that the parts
        that cancel exactly (equal covariances) are never formed. ``rel`` then keeps float64
        round-off far from the origin (large ||x||, ||mu||) and when x is far from every mean,
        where the expansion ||x||^2 - 2 x.mu + ||mu||^2 loses every digit of the differences
        that decide p*. Squared distances that overflow float64 raise a ConfigError.
        """
        ref = self._nearest_component(x)
        rel = np.empty((len(x), len(self._means)))
        base = np.empty(len(x))
        for r in np.unique(ref):
            rows = np.flatnonzero(ref == r)
            xr = x[rows] - self._means[r]
            d_c = self._means - self._means[r]
            if self._var is not None:
                rel[rows], base[rows] = self._isotropic_shifted(xr, d_c, r)
            else:
                rel[rows], base[rows] = self._full_shifted(xr, d_c, r)
        return rel, base

    def _nearest_component(self, x: np.ndarray) -> np.ndarray:
        """Index of the (approximately) nearest component mean of each row."""
        if len(self._means) == 1:
            return np.zeros(len(x), dtype=np.int64)
        centre = self._means.mean(axis=0)
        m = self._means - centre
        xc = x - centre
        with np.errstate(over="ignore", invalid="ignore"):
            score = np.einsum("cd,cd->c", m, m)[None, :] - 2.0 * (xc @ m.T)
        score[np.isnan(score)] = np.inf
        return np.argmin(score, axis=1)

    def _isotropic_shifted(self, xr: np.ndarray, d_c: np.ndarray, r: int):
        var, d = self._var, self.dim
        with np.errstate(over="ignore", invalid="ignore"):
            t = xr @ d_c.T  # (n, C): D_c . x'
            dd = np.einsum("cd,cd->c", d_c, d_c)
            xx = np.einsum("nd,nd->n", xr, xr)
            lin = dd[None, :] - 2.0 * t  # ||x - mu_c||^2 - ||x - mu_r||^2
            self._check_finite(xr, xx, t, dd)
            rel = lin / var[r]
            unequal = var != var[r]
            if unequal.any():
                sq = np.maximum(xx[:, None] + lin[:, unequal], 0.0)  # ||x - mu_c||^2
                rel[:, unequal] += sq * (1.0 / var[unequal] - 1.0 / var[r])
            rel *= -0.5
            rel -= 0.5 * d * np.log(var / var[r])
        base = -0.5 * xx / var[r] - 0.5 * d * (LOG_2PI + np.log(var[r]))
        return rel, base

    def _full_shifted(self, xr: np.ndarray, d_c: np.ndarray, r: int):
        d = self.dim
        prec = self._precisions
        rel = np.empty((len(xr), len(self._means)))
        with np.errstate(over="ignore", invalid="ignore"):
            z = solve_triangular(self._chol[r], xr.T, lower=True, check_finite=False)
            q_r = np.einsum("dn,dn->n", z, z)
            self._check_finite(xr, q_r)
            for c in range(len(self._means)):
                if c == r:
                    rel[:, c] = 0.0
                    continue
                b = prec[c] @ d_c[c]
                diff = -2.0 * (xr @ b) + d_c[c] @ b  # q_c - q_r when the covariances are equal
                a = prec[c] - prec[r]
                if np.any(a):
                    diff += np.einsum("nd,nd->n", xr @ a, xr)
                self._check_finite(xr, diff)
                rel[:, c] = -0.5 * diff - (self._half_logdet[c] - self._half_logdet[r])
        base = -0.5 * q_r - self._half_logdet[r] - 0.5 * d * LOG_2PI
        return rel, base

    def _check_finite(self, xr: np.ndarray, *arrays: np.ndarray) -> None:
        if not all(np.isfinite(a).all() for a in arrays):
            raise ConfigError(
                "x is too far from the component means for float64: squared distances overflow "
                f"(|x - mean| up to {np.abs(xr).max():.3g}, largest finite square "
                f"{np.finfo(np.float64).max:.3g}); rescale x and the means"
            )

    def _class_log_density(self, x: np.ndarray) -> np.ndarray:
        rel, base = self._class_log_density_and_shift(x)
        rel += base[:, None]
        return rel

    def _class_log_density_shifted(self, x: np.ndarray) -> np.ndarray:
        return self._class_log_density_and_shift(x)[0]

    def _class_log_density_and_shift(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        comp, base = self._component_log_density_shifted(x)
        if self._single:
            return comp, base
        comp += self._log_w
        out = np.empty((len(x), self.num_classes))
        for k in range(self.num_classes):
            out[:, k] = logsumexp(comp[:, self._owner == k], axis=1)
        return out, base

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
