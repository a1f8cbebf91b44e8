"""Theorem 1 and the CE analogue: terms against direct formulas; residuals vanish (or not)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from bcpd_sim.errors import ConfigError
from bcpd_sim.mixtures import make_mixture
from bcpd_sim.theory import ce_decomposition, default_predictors, mse_decomposition, verify_theorem1
from bcpd_sim.theory.decomposition import z_score


def small_problem(seed=0, n=50, k=4):
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.ones(k), size=n)
    q = rng.dirichlet(np.ones(k), size=n)
    y = np.array([rng.choice(k, p=row) for row in p])
    return q, p, y


def direct_mse_terms(q, p, y):
    """Loops over points, straight from the definitions."""
    k = p.shape[1]
    risk, dist, irr = [], [], []
    for qi, pi, yi in zip(q, p, y):
        e = np.zeros(k)
        e[yi] = 1
        risk.append(sum((qi[j] - e[j]) ** 2 for j in range(k)))
        dist.append(sum((qi[j] - pi[j]) ** 2 for j in range(k)))
        irr.append(1 - sum(pi[j] ** 2 for j in range(k)))
    return np.array(risk), np.array(dist), np.array(irr)


def test_mse_terms_match_direct_formula():
    q, p, y = small_problem()
    dec = mse_decomposition(q, p, y)
    risk, dist, irr = direct_mse_terms(q, p, y)
    n = len(y)
    assert dec.n == n
    assert dec.risk == pytest.approx(risk.mean(), abs=1e-14)
    assert dec.distance == pytest.approx(dist.mean(), abs=1e-14)
    assert dec.irreducible == pytest.approx(irr.mean(), abs=1e-14)
    assert dec.residual == pytest.approx((risk - dist - irr).mean(), abs=1e-14)
    assert dec.exact_risk == pytest.approx((dist + irr).mean(), abs=1e-14)
    assert dec.prediction == pytest.approx(dec.exact_risk, abs=1e-14)
    assert dec.risk_se == pytest.approx(risk.std(ddof=1) / np.sqrt(n), rel=1e-12)
    assert dec.residual_se == pytest.approx((risk - dist - irr).std(ddof=1) / np.sqrt(n), rel=1e-12)
    # the residual is the cross term plus the label noise in ||p* - e_y||^2
    e = np.eye(p.shape[1])[y]
    cross = 2 * ((p - e) * (q - p)).sum(1)
    label_noise = ((p - e) ** 2).sum(1) - (1 - (p**2).sum(1))
    assert dec.residual == pytest.approx((cross + label_noise).mean(), abs=1e-13)


def test_ce_terms_match_scipy():
    q, p, y = small_problem(1)
    dec = ce_decomposition(q, p, y)
    kl = stats.entropy(p, q, axis=1)  # scipy's KL(p || q)
    ent = stats.entropy(p, axis=1)
    risk = -np.log(q[np.arange(len(y)), y])
    assert dec.kl == pytest.approx(kl.mean(), abs=1e-13)
    assert dec.entropy == pytest.approx(ent.mean(), abs=1e-13)
    assert dec.risk == pytest.approx(risk.mean(), abs=1e-13)
    assert dec.residual == pytest.approx((risk - kl - ent).mean(), abs=1e-13)
    assert dec.exact_risk == pytest.approx((kl + ent).mean(), abs=1e-13)
    assert dec.kl_se == pytest.approx(kl.std(ddof=1) / np.sqrt(len(y)), rel=1e-10)
    # log_q route gives the same numbers
    dec2 = ce_decomposition(None, p, y, log_q=np.log(q))
    assert dec2.kl == pytest.approx(dec.kl, abs=1e-14) and dec2.risk == pytest.approx(
        dec.risk, abs=1e-14
    )


def test_ce_handles_zero_probabilities():
    p = np.array([[1.0, 0.0], [0.5, 0.5]])
    q = np.array([[0.9, 0.1], [0.5, 0.5]])
    dec = ce_decomposition(q, p, np.array([0, 1]))
    assert dec.entropy == pytest.approx(np.log(2) / 2)
    assert dec.kl == pytest.approx(-np.log(0.9) / 2)
    inf = ce_decomposition(np.array([[0.0, 1.0], [0.5, 0.5]]), p, np.array([0, 1]))
    assert inf.risk == np.inf and inf.kl == np.inf


def test_at_bcpd_the_distances_vanish():
    mix = make_mixture("paper")
    s = mix.sample(2000, seed=0)
    assert mse_decomposition(s.p_star, s.p_star, s.y).distance == 0
    assert ce_decomposition(s.p_star, s.p_star, s.y).kl == pytest.approx(0, abs=1e-15)


@pytest.mark.parametrize("name", ["paper", "multimodal", "warped", "noisy_pairflip"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_residuals_vanish_for_honest_predictors(name, seed):
    mix = make_mixture(name, seed=seed)
    preds = default_predictors(mix, seed=seed, trained=False)
    result = verify_theorem1(mix, n=20_000, seed=seed + 10, predictors=preds)
    honest = result.honest()
    assert len(honest) >= 2 * 9
    # Within 4.5 standard errors (about a 1-in-150,000 chance per check for a Gaussian mean).
    assert honest.residual_z.abs().max() < 4.5, honest[["predictor", "loss", "residual_z"]]
    control = result.table[result.table.peeks_at_label]
    assert (control.residual_z.abs() > 20).all()
    assert (result.rank_agreement.spearman > 0.95).all()


def test_trained_predictors_obey_the_theorem():
    mix = make_mixture("paper_k3", seed=0)
    preds = [p for p in default_predictors(mix, seed=0, train_n=600) if p.kind == "trained"]
    assert len(preds) == 4
    result = verify_theorem1(mix, n=10_000, seed=3, predictors=preds)
    assert result.table.residual_z.abs().max() < 4.5


def test_residual_z_is_informative_not_noise():
    assert z_score(1e-17, 1e-18) == 0.0
    assert z_score(0.5, 0.1) == pytest.approx(5.0)


def test_seeded_check_reproduces():
    mix = make_mixture("paper")
    preds = default_predictors(mix, trained=False)
    a = verify_theorem1(mix, n=3000, seed=5, predictors=preds).table
    b = verify_theorem1(mix, n=3000, seed=5, predictors=preds).table
    c = verify_theorem1(mix, n=3000, seed=6, predictors=preds).table
    assert a.equals(b)
    assert not a.equals(c)


@pytest.mark.parametrize(
    "q, p, y, field",
    [
        (np.ones((3, 2)) / 2, np.ones((3, 3)) / 3, [0, 1, 2], "shape"),
        (np.ones((3, 3)) / 3, np.ones((3, 3)) / 3, [0, 1], "y must have shape"),
        (np.ones((3, 3)) / 3, np.ones((3, 3)) / 3, [0, 1, 3], "labels"),
        (np.ones((3, 3)) / 3, np.ones((3, 3)) / 3, [0.0, 1.0, 2.0], "labels"),
        (np.ones((3, 3)), np.ones((3, 3)) / 3, [0, 1, 2], "probability"),
        (np.ones((3, 3)) / 3, np.full((3, 3), np.nan), [0, 1, 2], "finite"),
        (np.ones((1, 3)) / 3, np.ones((1, 3)) / 3, [0], "n >= 2"),
    ],
)
def test_bad_inputs(q, p, y, field):
    for fn in (mse_decomposition, ce_decomposition):
        with pytest.raises(ConfigError, match=field):
            fn(q, p, np.asarray(y))
