"""SuperClassMixture: merged p* against an independent sum of the base's p*, every family."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from bcpd_sim.errors import ConfigError
from bcpd_sim.mixtures import (
    GaussianMixture,
    IsotropicGaussianMixture,
    SuperClassMixture,
    list_mixtures,
    make_mixture,
)
from bcpd_sim.mixtures.superclass import halves


def random_partition(rng, k, m):
    """A random partition of range(k) into m non-empty groups."""
    perm = rng.permutation(k)
    cuts = np.sort(rng.choice(np.arange(1, k), size=m - 1, replace=False))
    return [sorted(int(c) for c in part) for part in np.split(perm, cuts)]


@pytest.mark.parametrize("name", list_mixtures())
def test_merged_bcpd_is_the_sum_of_members(name):
    """Every preset family (isotropic, full covariance, multi-modal, warped, label noise)."""
    base = make_mixture(name, seed=0)
    rng = np.random.default_rng(5)
    for m in (2, 3):
        groups = random_partition(rng, base.num_classes, min(m, base.num_classes))
        mix = SuperClassMixture(base, groups)
        x = base.sample(400, seed=3).x
        p_base = base.bcpd(x)  # probability space: a plain column sum, no log-sum-exp
        expected = np.stack([p_base[:, g].sum(1) for g in groups], axis=1)
        np.testing.assert_allclose(mix.bcpd(x), expected, rtol=1e-10, atol=1e-13)
        # the merged class densities agree with a direct prior-weighted sum too
        dens = np.exp(base.class_log_density(x)) * base.priors
        direct = np.stack([dens[:, g].sum(1) for g in groups], 1) / mix.priors
        np.testing.assert_allclose(np.exp(mix.class_log_density(x)), direct, rtol=1e-9, atol=1e-300)
        np.testing.assert_allclose(mix.priors, [base.priors[g].sum() for g in groups])


def test_merged_bcpd_against_scipy_densities():
    """Fully independent: scipy Gaussian densities, summed by hand, on a full-covariance base."""
    base = GaussianMixture.random(5, 3, separation=1.0, scale=1.0, seed=2)
    mix = SuperClassMixture(base, [[0, 3], [1, 2, 4]])
    x = np.random.default_rng(0).normal(size=(300, 3)) * 2
    dens = np.stack(
        [
            stats.multivariate_normal(m, c).pdf(x) * p
            for m, c, p in zip(base.means, base.covariances, base.priors)
        ],
        axis=1,
    )
    joint = np.stack([dens[:, [0, 3]].sum(1), dens[:, [1, 2, 4]].sum(1)], axis=1)
    np.testing.assert_allclose(mix.bcpd(x), joint / joint.sum(1, keepdims=True), rtol=1e-9)


def test_far_inputs_stay_finite_and_exact():
    base = IsotropicGaussianMixture.lattice(10, 30, delta=1.0, noise_var=6.0, seed=0)
    mix = SuperClassMixture.halves(base)
    x = np.full((3, 30), 1e3) * np.array([[1], [-1], [0.5]])
    p = mix.bcpd(x)
    assert np.all(np.isfinite(p)) and np.allclose(p.sum(1), 1.0)
    assert np.all(np.isfinite(mix.log_bcpd(x)))


@pytest.mark.parametrize("name", ["paper", "noisy_pairflip", "multimodal"])
def test_sampling_is_calibrated_and_labels_are_merged(name):
    base = make_mixture(name, seed=1)
    mix = SuperClassMixture.halves(base)
    s = mix.sample(30_000, seed=4)
    assert set(np.unique(s.y)) <= {0, 1}
    # E[e_Y - p*(X)] = 0 per class: 4.5 standard errors (two classes, a few families)
    resid = np.eye(2)[s.y] - s.p_star
    se = resid.std(0, ddof=1) / np.sqrt(len(s.y))
    assert np.all(np.abs(resid.mean(0)) < 4.5 * se)
    # the class-conditional route (used by bayes_accuracy) is calibrated too
    rng = np.random.default_rng(7)
    y = mix.sample_labels(30_000, rng)
    resid = np.eye(2)[y] - mix.bcpd(mix._sample_given_labels(y, rng))
    se = resid.std(0, ddof=1) / np.sqrt(len(y))
    assert np.all(np.abs(resid.mean(0)) < 4.5 * se)


def test_sample_reproducible_and_merge_labels():
    base = make_mixture("paper", seed=0)
    mix = SuperClassMixture.halves(base)
    a, b = mix.sample(200, seed=1), mix.sample(200, seed=1)
    np.testing.assert_array_equal(a.x, b.x)
    # same x and merged labels as the base's own draw with this seed
    c = base.sample(200, seed=1)
    np.testing.assert_array_equal(a.x, c.x)
    np.testing.assert_array_equal(a.y, mix.merge_labels(c.y))
    np.testing.assert_array_equal(a.y, (c.y >= 5).astype(int))
    assert halves(10) == [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]] and halves(3) == [[0, 1], [2]]


@pytest.mark.parametrize(
    "groups, match",
    [
        ([[0, 1, 2]], "at least 2 groups"),
        ([[0, 1], []], r"groups\[1\] is empty"),
        ([[0, 1], [1, 2]], "class 1 is in groups"),
        ([[0], [1]], r"missing \[2\]"),
        ([[0, 1], [2, 5]], r"groups\[1\] has class 5"),
        ([[0, 1], [-1, 2]], ">= 0"),
        ([[0, 1], [2.5]], "integer"),
        ("01", "list of lists"),
        ([[0, 1], "2"], r"groups\[1\] must be a list"),
    ],
)
def test_bad_groups_raise_naming_the_problem(groups, match):
    base = IsotropicGaussianMixture(np.eye(3), 1.0)
    with pytest.raises(ConfigError, match=match):
        SuperClassMixture(base, groups)


def test_base_must_be_a_distribution():
    with pytest.raises(ConfigError, match="base"):
        SuperClassMixture("paper", [[0], [1]])
