"""The CIFAR-shaped synthetic dataset: its p*(y | image) is exact."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import softmax
from scipy.stats import multivariate_normal

from bcpd_sim.errors import ConfigError
from bcpd_sim.vision.data import split_validation
from bcpd_sim.vision.synthetic import SyntheticImageWorld, make_synthetic, synthetic_spec


@pytest.fixture(scope="module")
def world():
    return SyntheticImageWorld(synthetic_spec("hard", num_classes=10, seed=4))


def test_p_star_matches_an_independent_computation(world):
    ds, latent = world.sample(300, seed=1)
    assert ds.images.dtype == np.float32 and ds.images.shape == (300, 3, 32, 32)
    assert ds.images.min() > 0 and ds.images.max() < 1
    # Independent: scipy Gaussian log-densities at the *generating* latents, priors, softmax.
    mix = world.mixture
    logpdf = np.stack(
        [
            multivariate_normal(mean=mu, cov=mix.noise_var * np.eye(len(mu))).logpdf(latent.x)
            for mu in mix.means
        ],
        axis=1,
    )
    expected = softmax(logpdf + np.log(mix.priors), axis=1)
    # The dataset's p* is computed from the stored float32 images (inverse map in float64);
    # float32 rounding of the pixels moves it by far less than 1e-6.
    np.testing.assert_allclose(ds.p_star, expected, atol=1e-6, rtol=0)
    np.testing.assert_allclose(ds.p_star.sum(1), 1.0, atol=1e-12)
    np.testing.assert_allclose(world.latent(ds.images), latent.x, atol=1e-5)
    # The p* values are far from trivial on the hard preset.
    assert 0.05 < np.mean(ds.p_star.max(1) < 0.9)


def test_map_is_invertible_and_noise_is_class_independent(world):
    rng = np.random.default_rng(0)
    z = rng.standard_normal((20, world.spec.latent_dim)) * 2
    a = world.encode(z, np.random.default_rng(1))
    b = world.encode(z, np.random.default_rng(2))  # different nuisance, same latent
    assert np.abs(a - b).max() > 0.05
    np.testing.assert_allclose(world.latent(a), z, atol=1e-5)
    np.testing.assert_allclose(world.latent(b), z, atol=1e-5)
    np.testing.assert_allclose(world.bcpd(a), world.bcpd(b), atol=1e-6)


def test_quantising_to_uint8_would_break_exactness(world):
    ds, latent = world.sample(200, seed=2)
    quantised = (np.rint(ds.images * 255) / 255).clip(1 / 255, 254 / 255)
    assert np.abs(world.bcpd(quantised) - latent.p_star).max() > 1e-3


def test_splits_presets_and_seeding():
    train, test, world = make_synthetic("easy", n_train=120, n_test=40, num_classes=10, seed=3)
    again, _, _ = make_synthetic("easy", n_train=120, n_test=40, num_classes=10, seed=3)
    np.testing.assert_array_equal(train.images, again.images)
    assert not np.array_equal(train.images[:40], test.images)
    tr, val = split_validation(train, 30, seed=0)
    np.testing.assert_allclose(val.p_star, world.bcpd(val.images), atol=1e-12)
    np.testing.assert_allclose(tr.p_star, world.bcpd(tr.images), atol=1e-12)
    easy = SyntheticImageWorld(synthetic_spec("easy", num_classes=10)).bayes_accuracy(20_000)
    hard = SyntheticImageWorld(synthetic_spec("hard", num_classes=10)).bayes_accuracy(20_000)
    assert easy > 0.97 and 0.7 < hard < 0.95
    with pytest.raises(ConfigError, match="preset"):
        synthetic_spec("medium")
    with pytest.raises(ConfigError, match="latent_dim"):
        synthetic_spec("easy", latent_dim=1000)
