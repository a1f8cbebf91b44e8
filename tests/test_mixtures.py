"""The simulator: exact BCPD against scipy, calibrated sampling, seeds, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from scipy.special import softmax

from bcpd_sim.errors import ConfigError
from bcpd_sim.mixtures import (
    CouplingWarp,
    GaussianMixture,
    IsotropicGaussianMixture,
    LabelNoiseMixture,
    MultiModalGaussianMixture,
    WarpedMixture,
    list_mixtures,
    make_mixture,
    pair_flip_transition,
    symmetric_transition,
)


def random_priors(rng, k):
    return rng.dirichlet(np.full(k, 3.0))


# ----------------------------------------------------------------- independent computations
def scipy_bcpd_gaussian(x, means, covs, priors):
    """Bayes' rule with scipy.stats densities: one full-covariance Gaussian per class."""
    logs = np.stack(
        [stats.multivariate_normal(m, c).logpdf(x) for m, c in zip(means, covs)], axis=1
    ).reshape(len(x), -1)
    return softmax(logs + np.log(priors), axis=1)


def scipy_bcpd_multimodal(x, comp_means, comp_var, weights, priors):
    k, m, d = comp_means.shape
    dens = np.zeros((len(x), k))
    for c in range(k):
        for j in range(m):
            dens[:, c] += weights[c, j] * stats.multivariate_normal(
                comp_means[c, j], comp_var[c, j] * np.eye(d)
            ).pdf(x)
    joint = dens * priors
    return joint / joint.sum(axis=1, keepdims=True)


FAMILY_SEEDS = range(4)


@pytest.mark.parametrize("seed", FAMILY_SEEDS)
def test_isotropic_matches_scipy(seed):
    rng = np.random.default_rng(seed)
    k, d = rng.integers(2, 7), rng.integers(1, 6)
    means = rng.normal(size=(k, d))
    var = rng.uniform(0.3, 3.0)
    priors = random_priors(rng, k)
    mix = IsotropicGaussianMixture(means, var, priors)
    x = rng.normal(scale=2.0, size=(300, d))
    expected = scipy_bcpd_gaussian(x, means, [var * np.eye(d)] * k, priors)
    np.testing.assert_allclose(mix.bcpd(x), expected, atol=1e-9, rtol=0)
    np.testing.assert_allclose(np.exp(mix.log_bcpd(x)), expected, atol=1e-9, rtol=0)


def test_isotropic_per_class_variance_matches_scipy():
    rng = np.random.default_rng(11)
    means, var = rng.normal(size=(4, 3)), rng.uniform(0.5, 2.0, 4)
    mix = IsotropicGaussianMixture(means, var)
    x = rng.normal(size=(200, 3))
    expected = scipy_bcpd_gaussian(x, means, [v * np.eye(3) for v in var], np.full(4, 0.25))
    np.testing.assert_allclose(mix.bcpd(x), expected, atol=1e-9, rtol=0)


def test_paper_formula_is_softmax_of_scaled_distances():
    mix = IsotropicGaussianMixture.lattice(seed=5)
    x = mix.sample(500, seed=1).x
    dist = ((x[:, None, :] - mix.means[None]) ** 2).sum(-1)
    np.testing.assert_allclose(mix.bcpd(x), softmax(-dist / (2 * 6.0), axis=1), atol=1e-12)
    assert set(np.unique(mix.means)) <= {-1.0, 0.0, 1.0}
    assert mix.means.shape == (10, 30) and mix.noise_var == 6.0
    np.testing.assert_allclose(mix.priors, 0.1)


@pytest.mark.parametrize("seed", FAMILY_SEEDS)
def test_full_covariance_matches_scipy(seed):
    rng = np.random.default_rng(100 + seed)
    k, d = rng.integers(2, 6), rng.integers(1, 6)
    mix = GaussianMixture.random(
        k, d, separation=1.0, scale=1.5, seed=seed, priors=random_priors(rng, k)
    )
    x = rng.normal(scale=2.0, size=(300, d))
    expected = scipy_bcpd_gaussian(x, mix.means, mix.covariances, mix.priors)
    np.testing.assert_allclose(mix.bcpd(x), expected, atol=1e-9, rtol=0)


@pytest.mark.parametrize("seed", FAMILY_SEEDS)
def test_multimodal_matches_scipy(seed):
    rng = np.random.default_rng(200 + seed)
    k, d, m = rng.integers(2, 5), rng.integers(1, 5), rng.integers(1, 4)
    priors = random_priors(rng, k)
    mix = MultiModalGaussianMixture.random(
        k, d, m, spread=1.5, noise_var=1.0, seed=seed, priors=priors
    )
    x = rng.normal(scale=1.5, size=(250, d))
    expected = scipy_bcpd_multimodal(
        x, mix.component_means, np.asarray(mix.component_var), mix.component_weights, priors
    )
    np.testing.assert_allclose(mix.bcpd(x), expected, atol=1e-9, rtol=0)


@pytest.mark.parametrize("seed", FAMILY_SEEDS)
def test_warped_matches_scipy_at_preimage(seed):
    rng = np.random.default_rng(300 + seed)
    k, d = rng.integers(2, 6), rng.integers(1, 7)
    base = GaussianMixture.random(k, d, scale=1.0, seed=seed)
    warp = CouplingWarp(d, num_layers=3, strength=1.5, seed=seed)
    mix = WarpedMixture(base, warp)
    x = mix.sample(300, seed=seed).x
    z = warp.inverse(x)
    expected = scipy_bcpd_gaussian(z, base.means, base.covariances, base.priors)
    np.testing.assert_allclose(mix.bcpd(x), expected, atol=1e-9, rtol=0)


@pytest.mark.parametrize("d", [1, 2, 5, 30])
def test_warp_round_trip_and_volume_preserving(d):
    warp = CouplingWarp(d, num_layers=4, strength=2.0, seed=d)
    z = np.random.default_rng(d).normal(scale=3.0, size=(200, d))
    np.testing.assert_allclose(warp.inverse(warp.forward(z)), z, atol=1e-10)
    np.testing.assert_allclose(warp.forward(warp.inverse(z)), z, atol=1e-10)
    # Jacobian by central differences: |det| = 1 (rotations and additive couplings).
    h = 1e-5
    z0 = z[0]
    jac = np.stack(
        [
            (warp.forward((z0 + h * e)[None]) - warp.forward((z0 - h * e)[None]))[0] / (2 * h)
            for e in np.eye(d)
        ],
        axis=1,
    )
    assert abs(abs(np.linalg.det(jac)) - 1.0) < 1e-6


def test_warp_is_not_affine():
    warp = CouplingWarp(6, strength=2.0, seed=0)
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(2, 50, 6))
    mid = warp.forward((a + b) / 2)
    assert np.abs(mid - (warp.forward(a) + warp.forward(b)) / 2).max() > 0.05


@pytest.mark.parametrize("noise", ["symmetric", "pair_flip", "custom"])
def test_label_noise_is_bcpd_times_transition(noise):
    rng = np.random.default_rng(7)
    base = GaussianMixture.random(4, 3, seed=7, priors=random_priors(rng, 4))
    t = {
        "symmetric": symmetric_transition(4, 0.3),
        "pair_flip": pair_flip_transition(4, 0.25),
        "custom": rng.dirichlet(np.ones(4), size=4),
    }[noise]
    mix = LabelNoiseMixture(base, t)
    x = rng.normal(size=(300, 3))
    clean = scipy_bcpd_gaussian(x, base.means, base.covariances, base.priors)
    np.testing.assert_allclose(mix.bcpd(x), clean @ t, atol=1e-9, rtol=0)
    # The class-density route (Bayes' rule with noisy priors) agrees with p* T.
    joint = np.exp(mix.class_log_density(x)) * mix.priors
    np.testing.assert_allclose(joint / joint.sum(1, keepdims=True), clean @ t, atol=1e-9)


def test_transition_presets():
    t = symmetric_transition(5, 0.2)
    np.testing.assert_allclose(np.diag(t), 0.8)
    np.testing.assert_allclose(t[0, 1:], 0.05)
    p = pair_flip_transition(3, 0.4)
    np.testing.assert_allclose(p, [[0.6, 0.4, 0], [0, 0.6, 0.4], [0.4, 0, 0.6]])


# ----------------------------------------------------------------- sampling
def assert_calibrated(sample, bins=10, z_max=4.5):
    """Pooled over classes, frequency of y == k in bins of p*(k|x) matches the mean p*."""
    n, k = sample.p_star.shape
    p = sample.p_star.ravel()
    hit = (sample.y[:, None] == np.arange(k)[None]).ravel()
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(p, edges) - 1, 0, bins - 1)
    for b in range(bins):
        sel = which == b
        if sel.sum() < 200:
            continue
        freq, mean_p = hit[sel].mean(), p[sel].mean()
        se = np.sqrt((p[sel] * (1 - p[sel])).sum()) / sel.sum()
        assert abs(freq - mean_p) < z_max * se + 1e-12, (b, freq, mean_p, se)


@pytest.mark.parametrize("name", list_mixtures())
def test_sampler_is_calibrated(name):
    mix = make_mixture(name, seed=1)
    assert_calibrated(mix.sample(40_000, seed=2))


def test_sampler_calibrated_for_noisy_class_route():
    """The class-conditional sampler of a noisy mixture (used by bayes_accuracy) is calibrated too."""
    mix = make_mixture("noisy_pairflip", seed=0)
    rng = np.random.default_rng(3)
    y = mix.sample_labels(40_000, rng)
    x = mix._sample_given_labels(y, rng)

    class S:
        pass

    s = S()
    s.y, s.p_star = y, mix.bcpd(x)
    assert_calibrated(s)


@pytest.mark.parametrize("name", list_mixtures())
def test_seeds_reproduce_and_differ(name):
    mix = make_mixture(name, seed=0)
    a, b, c = mix.sample(500, seed=9), mix.sample(500, seed=9), mix.sample(500, seed=10)
    np.testing.assert_array_equal(a.x, b.x)
    np.testing.assert_array_equal(a.y, b.y)
    np.testing.assert_array_equal(a.p_star, b.p_star)
    assert not np.array_equal(a.x, c.x)
    assert a.x.dtype == np.float64 and a.y.dtype == np.int64 and a.p_star.dtype == np.float64
    assert a.x.shape == (500, mix.dim) and a.p_star.shape == (500, mix.num_classes)
    np.testing.assert_allclose(a.p_star.sum(1), 1.0, atol=1e-12)
    # a different parameter seed gives a different distribution
    assert not np.allclose(make_mixture(name, seed=1).bcpd(a.x), mix.bcpd(a.x))


def test_sample_split_and_priors_respected():
    mix = IsotropicGaussianMixture(np.eye(3), 1.0, priors=[0.6, 0.3, 0.1])
    s = mix.sample(30_000, seed=0)
    freq = np.bincount(s.y, minlength=3) / len(s.y)
    np.testing.assert_allclose(freq, [0.6, 0.3, 0.1], atol=4 * np.sqrt(0.25 / 30_000))
    tr, va = s.split(100, 200)
    assert len(tr) == 100 and len(va) == 200
    np.testing.assert_array_equal(va.x, s.x[100:300])


def test_bayes_accuracy_estimate_agrees_with_counting():
    mix = make_mixture("paper", seed=0)
    est = mix.bayes_accuracy(n=100_000, seed=4)
    s = mix.sample(100_000, seed=5)
    counted = (s.p_star.argmax(1) == s.y).mean()
    se = np.sqrt(counted * (1 - counted) / len(s)) + est.se
    assert abs(est.value - counted) < 4 * se
    assert 0.5 < est.value < 0.7 and est.se < 0.002
    value, se_ = est  # unpacks as (value, se)
    assert value == est.value and se_ == est.se


def test_chunked_matches_unchunked(monkeypatch):
    mix = make_mixture("multimodal", seed=0)
    x = mix.sample(3000, seed=0).x
    full = mix.bcpd(x)
    monkeypatch.setattr(type(mix), "_chunk_rows", lambda self: 1024)
    np.testing.assert_array_equal(mix.bcpd(x), full)


def test_extreme_inputs_stay_finite():
    mix = IsotropicGaussianMixture(np.array([[0.0], [1.0]]), 0.01)
    p = mix.bcpd(np.array([[1e4], [-1e4]]))
    assert np.all(np.isfinite(p))
    np.testing.assert_allclose(p, [[0, 1], [1, 0]], atol=1e-300)


# ----------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "make, field",
    [
        (lambda: IsotropicGaussianMixture(np.zeros((1, 3)), 1.0), "num_classes"),
        (lambda: IsotropicGaussianMixture(np.zeros((3, 0)), 1.0), "dim"),
        (lambda: IsotropicGaussianMixture(np.eye(3), 0.0), "noise_var"),
        (lambda: IsotropicGaussianMixture(np.eye(3), -1.0), "noise_var"),
        (lambda: IsotropicGaussianMixture(np.eye(3), 1.0, priors=[0.5, 0.6, -0.1]), "priors"),
        (lambda: IsotropicGaussianMixture(np.eye(3), 1.0, priors=[0.3, 0.3, 0.3]), "priors"),
        (lambda: IsotropicGaussianMixture(np.eye(3), 1.0, priors=[0.5, 0.5]), "priors"),
        (lambda: IsotropicGaussianMixture(np.eye(3), [1.0, 2.0]), "noise_var"),
        (lambda: IsotropicGaussianMixture([[0.0, np.nan], [1, 1]], 1.0), "means"),
        (lambda: IsotropicGaussianMixture.lattice(num_classes=1), "num_classes"),
        (lambda: IsotropicGaussianMixture.lattice(dim=0), "dim"),
        (lambda: GaussianMixture(np.eye(2), np.stack([np.eye(2), [[1, 2], [0, 1]]])), "symmetric"),
        (
            lambda: GaussianMixture(np.eye(2), np.stack([np.eye(2), [[1, 2], [2, 1]]])),
            "positive definite",
        ),
        (lambda: GaussianMixture(np.eye(2), np.stack([np.eye(3)] * 2)), "covariances"),
        (
            lambda: MultiModalGaussianMixture(np.zeros((2, 2, 3)), 1.0, [[0.5, 0.6], [0.5, 0.5]]),
            "weights",
        ),
        (lambda: MultiModalGaussianMixture(np.zeros((2, 2, 3)), -1.0), "noise_var"),
        (lambda: LabelNoiseMixture(make_mixture("paper"), np.eye(3)), "transition"),
        (lambda: LabelNoiseMixture(make_mixture("paper"), 0.5 * np.ones((10, 10))), "transition"),
        (lambda: symmetric_transition(3, 1.5), "rate"),
        (lambda: WarpedMixture(make_mixture("paper"), CouplingWarp(5)), "warp.dim"),
        (lambda: make_mixture("nope"), "mixture"),
    ],
)
def test_bad_parameters_raise_naming_the_field(make, field):
    with pytest.raises(ValueError, match=field):
        make()


@pytest.mark.parametrize(
    "call, field",
    [
        (lambda m: m.bcpd(np.zeros((4, 29))), "x must have shape"),
        (lambda m: m.bcpd(np.zeros(30)), "x must have shape"),
        (lambda m: m.bcpd(np.full((2, 30), np.nan)), "finite"),
        (lambda m: m.log_bcpd(np.full((2, 30), np.inf)), "finite"),
        (lambda m: m.sample(0), "n must be >= 1"),
        (lambda m: m.sample(2.5), "n must be an integer"),
        (lambda m: m.bayes_accuracy(n=0), "n must be"),
    ],
)
def test_bad_calls_raise(call, field):
    with pytest.raises(ConfigError, match=field):
        call(make_mixture("paper"))
