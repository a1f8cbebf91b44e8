"""The student bound: terms against direct loops, Monte Carlo against a closed form, the study."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import log_softmax

from bcpd_sim.errors import ConfigError
from bcpd_sim.mixtures import IsotropicGaussianMixture
from bcpd_sim.simplex import tempered
from bcpd_sim.studies.bound.closed_form import TwoGaussianLine, closed_form_terms
from bcpd_sim.studies.bound.terms import monte_carlo_lhs, per_class_losses, population_terms


def random_simplex(rng, *shape):
    return rng.dirichlet(np.ones(shape[-1]), size=shape[:-1])


def test_per_class_losses_match_direct_formulas():
    rng = np.random.default_rng(0)
    q = random_simplex(rng, 50, 4)
    np.testing.assert_allclose(per_class_losses(np.log(q), "ce"), -np.log(q))
    direct = np.array([[np.sum((row - np.eye(4)[k]) ** 2) for k in range(4)] for row in q])
    np.testing.assert_allclose(per_class_losses(np.log(q), "mse"), direct, atol=1e-12)
    with pytest.raises(ConfigError, match="student loss"):
        per_class_losses(np.log(q), "hinge")


def test_population_terms_and_monte_carlo_match_loops():
    rng = np.random.default_rng(1)
    t_, s_, n, k, n_set = 3, 2, 60, 4, 5
    teachers = random_simplex(rng, t_, n, k)
    p_star = random_simplex(rng, n, k)
    losses = rng.uniform(0, 3, size=(s_, n, k))
    out = population_terms(teachers, p_star, losses, n_set)
    lhs, se, m = monte_carlo_lhs(teachers, losses, out["risk"][0], n_set)
    assert m == n // n_set
    for t in range(t_):
        for s in range(s_):
            g = [teachers[t, i] @ losses[s, i] for i in range(n)]
            r = np.mean([p_star[i] @ losses[s, i] for i in range(n)])
            cs = np.mean(
                [
                    np.linalg.norm(teachers[t, i] - p_star[i]) * np.linalg.norm(losses[s, i])
                    for i in range(n)
                ]
            )
            assert out["risk"][t, s] == pytest.approx(r)
            assert out["variance_term"][t, s] == pytest.approx(np.var(g, ddof=1) / n_set)
            assert out["bias_term"][t, s] == pytest.approx(cs**2)
            assert out["bias_sq"][t, s] == pytest.approx((np.mean(g) - r) ** 2)
            sq = [(np.mean(g[j * n_set : (j + 1) * n_set]) - r) ** 2 for j in range(m)]
            assert lhs[t, s] == pytest.approx(np.mean(sq))
            assert se[t, s] == pytest.approx(np.std(sq, ddof=1) / np.sqrt(m))
    # Cauchy-Schwarz holds exactly for sample averages: the bias term bounds the squared bias.
    assert np.all(out["bias_sq"] <= out["bias_term"] * (1 + 1e-12))
    with pytest.raises(ConfigError, match="at least 2 sets"):
        monte_carlo_lhs(teachers, losses, out["risk"][0], n)


@pytest.mark.parametrize("loss, temperature, n_set", [("ce", 2.0, 10), ("mse", 0.5, 4)])
def test_monte_carlo_left_side_matches_the_closed_form(loss, temperature, n_set):
    """Fixed linear student, two-class Gaussian mixture: MC within 3 standard errors of quadrature."""
    mu0, mu1 = np.array([1.0, -0.5, 0.3]), np.array([-0.2, 0.7, -0.4])
    s2, prior1 = 1.5, 0.4
    mix = IsotropicGaussianMixture(np.stack([mu0, mu1]), s2, priors=[1 - prior1, prior1])
    u = (mu1 - mu0) / np.linalg.norm(mu1 - mu0)
    a, b = 1.7, -0.3
    line = TwoGaussianLine(float(u @ mu0), float(u @ mu1), s2, prior1)
    cf = closed_form_terms(line, a=a, b=b, temperature=temperature, n_set=n_set, loss=loss)

    s = mix.sample(40_000 * n_set, seed=11)
    z = a * (s.x @ u) + b
    log_q = log_softmax(np.stack([np.zeros_like(z), z], 1), axis=1)
    losses = per_class_losses(log_q, loss)[None]
    teacher = tempered(s.p_star, temperature)[None]
    lhs, se, m = monte_carlo_lhs(teacher, losses, np.array([cf["risk"]]), n_set)
    assert m == 40_000
    assert abs(lhs[0, 0] - cf["exact"]) < 3 * se[0, 0], (lhs[0, 0], cf["exact"], se[0, 0])
    assert se[0, 0] < 0.05 * cf["exact"]  # the check has power: 5% relative precision
    # The population terms from samples agree with quadrature too (2% relative, n = 400k points).
    pop = population_terms(teacher, s.p_star, losses, n_set)
    for key in ("risk", "variance_term", "bias_term"):
        assert pop[key][0, 0] == pytest.approx(cf[key], rel=0.02), key
    assert cf["exact"] <= cf["rhs"] and cf["bias_sq"] > 0


# ----------------------------------------------------------------------------- the study
@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    from bcpd_sim.studies.bound.study import load_config, run_bound

    out = tmp_path_factory.mktemp("bound")
    frame = run_bound(load_config("smoke"), out)
    return out, frame


def test_smoke_run_holds_and_summary_recomputes(smoke_run):
    import json

    import pandas as pd

    from bcpd_sim.studies.bound.plot import render
    from bcpd_sim.studies.bound.study import summarize

    out, frame = smoke_run
    loaded = pd.read_parquet(out / "results.parquet")
    pd.testing.assert_frame_equal(loaded, frame)
    stored = json.loads((out / "summary.json").read_text())
    fresh = summarize(loaded)
    for key, value in fresh.items():
        assert stored[key] == pytest.approx(value), key
    assert set(loaded.teacher_family) >= {"p_star", "eta_label", "trained_ce", "trained_mse"}
    # The bound holds up to Monte Carlo error in every case, and the MC matches the identity.
    assert fresh["holds_within_2se"] == fresh["cases"]
    assert fresh["identity_within_3se"] >= 0.95 * fresh["cases"]
    # p* as teacher: no bias, the bias term is zero
    p = loaded[loaded.teacher_family == "p_star"]
    assert np.allclose(p.bias_term, 0) and np.allclose(p.teacher_mse_to_bcpd, 0)
    render(out)
    assert (out / "bound.png").stat().st_size > 0


def test_bound_cli_bad_input_is_one_line(capsys):
    from bcpd_sim.cli import main

    assert main(["bound", "--preset", "smoke", "--set", "set_sizes=[0]"]) == 2
    err = capsys.readouterr().err.strip()
    assert "set_sizes" in err and "\n" not in err
    assert main(["bound", "--preset", "smoke", "--set", "student_losses=['hinge']"]) == 2
    assert "hinge" in capsys.readouterr().err
