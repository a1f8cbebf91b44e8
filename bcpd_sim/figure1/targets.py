"""Simulated teachers: soft targets at controlled distances from the BCPD.

Each returns (n, K) float64 probabilities for the given labels y and BCPD p*.
"""

from __future__ import annotations

import numpy as np

from ..simplex import label_smoothing, onehot, tempered

__all__ = ["dirichlet_noise", "eta_mix", "gaussian_noise", "label_smoothing", "onehot", "tempered"]


def eta_mix(y: np.ndarray, p_star: np.ndarray, eta: float) -> np.ndarray:
    """The paper's p_tar = eta e_y + (1 - eta) p*: eta = 0 is p* itself, eta = 1 the hard label."""
    return eta * onehot(y, p_star.shape[1]) + (1.0 - eta) * p_star


def dirichlet_noise(p_star: np.ndarray, weight: float, rng: np.random.Generator) -> np.ndarray:
    """(1 - w) p* + w d with d ~ Dirichlet(1) per point: noise that stays on the simplex."""
    noise = rng.dirichlet(np.ones(p_star.shape[1]), size=len(p_star))
    return (1.0 - weight) * p_star + weight * noise


def gaussian_noise(p_star: np.ndarray, sd: float, rng: np.random.Generator) -> np.ndarray:
    """p* + N(0, sd^2), clipped at a small floor and renormalised."""
    noisy = np.clip(p_star + sd * rng.standard_normal(p_star.shape), 1e-6, None)
    return noisy / noisy.sum(axis=1, keepdims=True)
