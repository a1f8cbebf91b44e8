"""Probability-vector constructions against direct formulas."""

from __future__ import annotations

import numpy as np

from bcpd_sim.simplex import label_smoothing, onehot, tempered


def test_onehot_and_label_smoothing():
    y = np.array([2, 0, 1])
    np.testing.assert_array_equal(onehot(y, 3), np.eye(3)[y])
    ls = label_smoothing(y, 3, 0.3)
    np.testing.assert_allclose(ls, 0.7 * np.eye(3)[y] + 0.1)
    np.testing.assert_array_equal(label_smoothing(y, 3, 0.0), np.eye(3)[y])


def test_tempered_is_normalised_power():
    p = np.random.default_rng(0).dirichlet(np.ones(5), size=20)
    for t in (0.25, 0.5, 1.0, 3.0):
        direct = p ** (1 / t) / (p ** (1 / t)).sum(1, keepdims=True)
        np.testing.assert_allclose(tempered(p, t), direct, atol=1e-12)
    # zero-probability classes stay at zero
    q = tempered(np.array([[0.0, 0.4, 0.6]]), 2.0)
    assert q[0, 0] == 0.0 and np.isclose(q.sum(), 1.0)
