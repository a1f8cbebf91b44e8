"""Simulated teachers: soft targets at controlled distances from the BCPD.

Each returns (n, K) float64 probabilities for the given labels y and BCPD p*.
"""

from __future__ import annotations

import numpy as np
from scipy.special import softmax


def onehot(y: np.ndarray, k: int) -> np.ndarray:
    out = np.zeros((len(y), k))
    out[np.arange(len(y)), y] = 1.0
    return out


def eta_mix(y: np.ndarray, p_star: np.ndarray, eta: float) -> np.ndarray:
    """The paper's p_tar = eta e_y + (1 - eta) p*: eta = 0 is p* itself, eta = 1 the hard label."""
    return eta * onehot(y, p_star.shape[1]) + (1.0 - eta) * p_star


def tempered(p_star: np.ndarray, temperature: float) -> np.ndarray:
    """softmax(log p* / T): sharper than p* for T < 1, flatter for T > 1."""
    with np.errstate(divide="ignore"):
        return softmax(np.log(p_star) / temperature, axis=1)


def dirichlet_noise(p_star: np.ndarray, weight: float, rng: np.random.Generator) -> np.ndarray:
    """(1 - w) p* + w d with d ~ Dirichlet(1) per point: noise that stays on the simplex."""
    noise = rng.dirichlet(np.ones(p_star.shape[1]), size=len(p_star))
    return (1.0 - weight) * p_star + weight * noise


def gaussian_noise(p_star: np.ndarray, sd: float, rng: np.random.Generator) -> np.ndarray:
    """p* + N(0, sd^2), clipped at a small floor and renormalised."""
    noisy = np.clip(p_star + sd * rng.standard_normal(p_star.shape), 1e-6, None)
    return noisy / noisy.sum(axis=1, keepdims=True)


def label_smoothing(y: np.ndarray, k: int, eps: float) -> np.ndarray:
    """(1 - eps) e_y + eps / K: the usual smoothed label, blind to p*."""
    return (1.0 - eps) * onehot(y, k) + eps / k
