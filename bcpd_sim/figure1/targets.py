"""Simulated teachers: soft targets at controlled distances from the BCPD.

Each returns (n, K) float64 probabilities for the given labels y and BCPD p*.
"""

from __future__ import annotations

import numpy as np

from ..simplex import label_smoothing, onehot, tempered

__all__ = [
    "dirichlet_noise",
    "eta_mix",
    "gaussian_noise",
    "label_smoothing",
    "onehot",
    "tempered",
    "wrong_mass",
]


def eta_mix(y: np.ndarray, p_star: np.ndarray, eta: float) -> np.ndarray:
    """The paper's p_tar = eta e_y + (1 - eta) p*: eta = 0 is p* itself, eta = 1 the hard label."""
    return eta * onehot(y, p_star.shape[1]) + (1.0 - eta) * p_star


def dirichlet_noise(p_star: np.ndarray, weight: float, rng: np.random.Generator) -> np.ndarray:
    """(1 - w) p* + w d with d ~ Dirichlet(1) per point: noise that stays on the simplex."""
    noise = rng.dirichlet(np.ones(p_star.shape[1]), size=len(p_star))
    return (1.0 - weight) * p_star + weight * noise


def gaussian_noise(p_star: np.ndarray, sd: float, rng: np.random.Generator) -> np.ndarray:
    """p* + N(0, sd^2), clipped at a small floor and renormalised (the paper code's noisy
    targets: additive Gaussian noise on p*, clamped, renormalised)."""
    noisy = np.clip(p_star + sd * rng.standard_normal(p_star.shape), 1e-6, None)
    return noisy / noisy.sum(axis=1, keepdims=True)


def wrong_mass(
    p_star: np.ndarray, mse: float, *, spread: bool, rng: np.random.Generator
) -> np.ndarray:
    """Move a fraction c of each point's top-class mass m = c max_k p*_k to the wrong classes.

    ``spread=False`` puts all of m on one wrong class (drawn uniformly per point), so that
    ||p_tar - p*||^2 = 2 m^2; ``spread=True`` spreads it evenly over all K - 1 wrong classes, so
    that ||p_tar - p*||^2 = m^2 K / (K - 1). c is chosen so that the mean over points equals
    ``mse`` (c is capped at 1, which caps the reachable distance). At matched MSE the two differ in
    KL(p* || p_tar) and in how often the arg-max flips: a family on which the MSE and KL distances
    do not rank students alike.
    """
    n, k = p_star.shape
    top = p_star.argmax(axis=1)
    p1 = p_star[np.arange(n), top]
    per_c2 = float(np.mean(p1**2)) * (k / (k - 1) if spread else 2.0)  # mean MSE per unit c^2
    c = min(1.0, float(np.sqrt(mse / per_c2)))
    m = c * p1
    out = p_star.copy()
    if spread:
        out += (m / (k - 1))[:, None]
        out[np.arange(n), top] -= m + m / (k - 1)
    else:
        wrong = (top + rng.integers(1, k, n)) % k
        out[np.arange(n), top] -= m
        out[np.arange(n), wrong] += m
    return np.clip(out, 0.0, None)
