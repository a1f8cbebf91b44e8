"""Probability vectors built from labels and from other probability vectors (float64 numpy)."""

from __future__ import annotations

import numpy as np
from scipy.special import softmax


def onehot(y: np.ndarray, k: int) -> np.ndarray:
    """(n, k) one-hot rows e_y."""
    out = np.zeros((len(y), k))
    out[np.arange(len(y)), y] = 1.0
    return out


def label_smoothing(y: np.ndarray, k: int, eps: float) -> np.ndarray:
    """(1 - eps) e_y + eps / k: the usual smoothed label (eps = 0 gives the one-hot label)."""
    return (1.0 - eps) * onehot(y, k) + eps / k


def tempered(p: np.ndarray, temperature: float) -> np.ndarray:
    """softmax(log p / T) row-wise: sharper than p for T < 1, flatter for T > 1."""
    with np.errstate(divide="ignore"):
        return softmax(np.log(p) / temperature, axis=1)
