"""p* of every family far from the origin and at extreme separations, against mpmath at 50 digits.

The reference takes the float64 inputs (x, means, covariances, warp weights) as exact numbers and
computes p* with 50-digit arithmetic, so the float64 result should agree to round-off wherever
the inputs are representable; where squared distances overflow float64 a ConfigError is raised.
"""

from __future__ import annotations

import mpmath as mp
import numpy as np
import pytest

from bcpd_sim.errors import ConfigError
from bcpd_sim.mixtures import (
    CouplingWarp,
    GaussianMixture,
    IsotropicGaussianMixture,
    LabelNoiseMixture,
    MultiModalGaussianMixture,
    WarpedMixture,
    symmetric_transition,
)

mp.mp.dps = 50


def _mpv(row) -> mp.matrix:
    return mp.matrix([mp.mpf(float(v)) for v in row])


def _mp_log_normal(x: mp.matrix, mu, cov) -> mp.mpf:
    """log N(x; mu, cov) in mpmath; ``cov`` a (d, d) array."""
    d = len(x)
    diff = x - _mpv(mu)
    c = mp.matrix([[mp.mpf(float(v)) for v in r] for r in cov])
    quad = (diff.T * mp.inverse(c) * diff)[0]
    return -quad / 2 - mp.log(mp.det(c)) / 2 - d * mp.log(2 * mp.pi) / 2


def _mp_softmax(logits) -> list[mp.mpf]:
    m = max(logits)
    e = [mp.exp(v - m) for v in logits]
    s = sum(e)
    return [v / s for v in e]


def mp_bcpd_components(x, means, covs, weights, owner, priors) -> np.ndarray:
    """p*(k | x) of Gaussian-mixture classes, every component in mpmath."""
    k = int(max(owner)) + 1
    out = []
    for row in x:
        xv = _mpv(row)
        comp = [
            mp.log(mp.mpf(float(w))) + _mp_log_normal(xv, mu, c) if w > 0 else -mp.inf
            for mu, c, w in zip(means, covs, weights)
        ]
        logits = []
        for j in range(k):
            terms = [comp[i] for i in range(len(comp)) if owner[i] == j]
            top = max(terms)
            logits.append(
                mp.log(mp.mpf(float(priors[j]))) + top + mp.log(sum(mp.exp(t - top) for t in terms))
            )
        out.append([float(v) for v in _mp_softmax(logits)])
    return np.array(out)


def mp_isotropic(x, means, var, priors=None) -> np.ndarray:
    k, d = means.shape
    var = np.broadcast_to(np.asarray(var, dtype=float), (k,))
    covs = [np.eye(d) * v for v in var]
    priors = np.full(k, 1.0 / k) if priors is None else priors
    return mp_bcpd_components(x, means, covs, np.ones(k), np.arange(k), priors)


def assert_close(p, ref, atol=1e-13):
    err = np.abs(p - ref).max()
    assert err <= atol, f"max |p* - mpmath| = {err:.3g} > {atol:.1g}"


# --------------------------------------------------------------------------- isotropic
@pytest.mark.parametrize("offset", [0.0, 1e5, 1e7, 1e12])
def test_isotropic_far_from_the_origin(offset):
    """The issue's example: two classes 0.1 apart, variance 0.01, shifted by ``offset``."""
    means = np.array([[offset], [offset + 0.1]])
    mix = IsotropicGaussianMixture(means, 0.01)
    s = mix.sample(400, seed=0)
    assert_close(s.p_star[:60], mp_isotropic(s.x[:60], means, 0.01))


def test_isotropic_bayes_accuracy_at_offset_1e7():
    """Phi(0.05 / 0.1) = 0.6915 for two unit-separated-in-sd classes, wherever they sit."""
    from scipy.stats import norm

    means = np.array([[1e7], [1e7 + 0.1]])
    acc = IsotropicGaussianMixture(means, 0.01).bayes_accuracy(100_000, seed=1)
    assert abs(acc.value - norm.cdf(0.5)) < 4 * acc.se + 1e-3


def test_isotropic_far_from_every_mean_in_an_orthogonal_direction():
    """||x - mu||^2 ~ 1e14 for both classes while their difference is 0.01: no digit may be lost."""
    means = np.array([[0.0, 0.0], [0.1, 0.0]])
    mix = IsotropicGaussianMixture(means, 0.01)
    x = np.array([[0.03, 1e7], [0.05, -3e6], [-0.2, 4e5]])
    assert_close(mix.bcpd(x), mp_isotropic(x, means, 0.01))


def test_isotropic_per_class_variances_far_away():
    rng = np.random.default_rng(1)
    means = 1e6 + rng.normal(size=(3, 4))
    var = np.array([0.5, 0.7, 1.1])
    mix = IsotropicGaussianMixture(means, var, priors=[0.2, 0.3, 0.5])
    x = mix.sample(30, seed=2).x
    assert_close(mix.bcpd(x), mp_isotropic(x, means, var, np.array([0.2, 0.3, 0.5])), 1e-12)


@pytest.mark.parametrize("scale", [1e3, 1e8])
def test_extreme_separations(scale):
    """Classes far apart (p* one-hot to the last digit) and a point exactly between them."""
    means = np.array([[0.0, 0.0], [scale, 0.0], [0.0, scale]])
    mix = IsotropicGaussianMixture(means, 1.0)
    x = np.array([[0.1, -0.2], [scale / 2, 0.0], [scale * 0.9, 0.3], [scale, scale]])
    p = mix.bcpd(x)
    assert_close(p, mp_isotropic(x, means, 1.0))
    assert p[1, 0] == pytest.approx(0.5, abs=1e-15)


def test_overflow_is_a_clear_error():
    mix = IsotropicGaussianMixture(np.array([[0.0, 0.0], [1.0, 0.0]]), 1.0)
    with pytest.raises(ConfigError, match="too far .* overflow"):
        mix.bcpd(np.array([[1e160, 0.0]]))
    with pytest.raises(ConfigError, match="too far .* overflow"):
        GaussianMixture(np.zeros((2, 2)) + [[0], [1]], np.stack([np.eye(2)] * 2)).bcpd(
            np.array([[0.0, 3e155]])
        )


# --------------------------------------------------------------------------- full covariance
@pytest.mark.parametrize("equal", [True, False])
def test_full_covariance_far_from_the_origin(equal):
    rng = np.random.default_rng(3)
    d = 3
    means = 1e6 + 0.3 * rng.normal(size=(3, d))
    a = rng.normal(size=(3, d, d)) / np.sqrt(d)
    covs = 0.1 * (np.eye(d) + a @ a.transpose(0, 2, 1))
    if equal:
        covs[:] = covs[0]
    mix = GaussianMixture(means, covs)
    x = mix.sample(20, seed=4).x
    x_far = x + np.array([0.0, 0.0, 1e5])  # also far from every mean
    for pts in (x, x_far):
        ref = mp_bcpd_components(pts, means, covs, np.ones(3), np.arange(3), np.full(3, 1 / 3))
        assert_close(mix.bcpd(pts), ref, 1e-11)


# --------------------------------------------------------------------------- multi-modal
def test_multimodal_far_from_the_origin():
    rng = np.random.default_rng(5)
    cm = 1e7 + 0.2 * rng.normal(size=(2, 3, 2))
    w = rng.dirichlet(np.ones(3), size=2)
    var = np.array([[0.01, 0.02, 0.015], [0.012, 0.01, 0.03]])
    mix = MultiModalGaussianMixture(cm, var, w)
    x = mix.sample(40, seed=6).x
    covs = [np.eye(2) * v for v in var.ravel()]
    ref = mp_bcpd_components(x, cm.reshape(6, 2), covs, w.ravel(), np.repeat([0, 1], 3), [0.5, 0.5])
    assert_close(mix.bcpd(x), ref, 1e-12)


# --------------------------------------------------------------------------- warped, label noise
def _mp_warp_inverse(warp: CouplingWarp, row) -> list[mp.mpf]:
    z = [mp.mpf(float(v)) for v in row]
    half = warp.dim // 2
    for rot, w, c, v in reversed(warp._layers):
        if half:
            hidden = [
                mp.tanh(sum(z[i] * mp.mpf(float(w[i, j])) for i in range(half)) + float(c[j]))
                for j in range(w.shape[1])
            ]
            for o in range(warp.dim - half):
                z[half + o] -= warp.strength * sum(
                    hidden[j] * mp.mpf(float(v[j, o])) for j in range(len(hidden))
                )
        z = [sum(z[i] * mp.mpf(float(rot[i, j])) for i in range(warp.dim)) for j in range(warp.dim)]
    return z


def test_warped_far_from_the_origin():
    means = np.array([[0.0, 0.0], [0.1, 0.0], [0.0, 0.1]])
    base = IsotropicGaussianMixture(means, 0.01)
    warp = CouplingWarp(2, num_layers=2, hidden=4, seed=0)
    mix = WarpedMixture(base, warp)
    x = np.vstack([mix.sample(10, seed=7).x, [[3e6, -2e6], [1e8, 5e7]]])
    z = np.array([[float(v) for v in _mp_warp_inverse(warp, row)] for row in x])
    ref = mp_isotropic(z, means, 0.01)
    # The rotations round x to relative 1e-16 of |x|, which moves z by eps |x|: the tolerance is
    # that conditioning (|D| eps |x| / var), not the isotropic family's (which is exact in z).
    tol = 1e-13 + 10 * 0.1 * np.finfo(float).eps * np.abs(x).max() / 0.01
    assert_close(mix.bcpd(x), ref, tol)
    assert_close(base.bcpd(z), ref)  # the base is exact on the exact inverse


def test_label_noise_far_from_the_origin():
    means = np.array([[1e7, 0.0], [1e7 + 0.1, 0.0], [1e7, 0.1]])
    base = IsotropicGaussianMixture(means, 0.01)
    t = symmetric_transition(3, 0.2)
    mix = LabelNoiseMixture(base, t)
    x = mix.sample(40, seed=8).x
    ref = mp_isotropic(x, means, 0.01) @ t  # (exact p*) T; the matrix product adds ~1e-16
    assert_close(mix.bcpd(x), ref)
