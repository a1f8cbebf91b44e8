"""Public metrics refuse impossible probabilities; callers that checked already may skip it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bcpd_sim import metrics
from bcpd_sim.errors import ConfigError

RNG = np.random.default_rng(0)
Q = RNG.dirichlet(np.ones(4), size=(3, 50))  # (members, n, K)
P = RNG.dirichlet(np.ones(4), size=50)
Y = RNG.integers(0, 4, 50)


def _broken(kind: str) -> np.ndarray:
    q = Q.copy()
    if kind == "half":
        q[1, 7] *= 0.5
    elif kind == "triple":
        q[1, 7] *= 3
    elif kind == "negative":
        q[1, 7] = [1.2, -0.2, 0.0, 0.0]
    elif kind == "nan":
        q[1, 7, 2] = np.nan
    elif kind == "inf":
        q[1, 7, 2] = np.inf
    return q


BAD = ["half", "triple", "negative", "nan", "inf"]
WITH_BCPD = [metrics.mse_to_bcpd, metrics.kl_to_bcpd, metrics.ce_to_bcpd, metrics.frobenius_to_bcpd]
WITH_LABELS = [metrics.accuracy, metrics.nll, metrics.brier, metrics.ece]


@pytest.mark.parametrize("kind", BAD)
@pytest.mark.parametrize("fn", WITH_BCPD + WITH_LABELS, ids=lambda f: f.__name__)
def test_bad_q_is_refused_naming_the_row(fn, kind):
    ref = P if fn in WITH_BCPD else Y
    with pytest.raises(ConfigError, match=r"q\[1, 7\] .*must hold probabilities"):
        fn(_broken(kind), ref)


@pytest.mark.parametrize("fn", WITH_BCPD, ids=lambda f: f.__name__)
def test_bad_p_star_is_refused(fn):
    p = P.copy()
    p[3] = 0.5
    with pytest.raises(ConfigError, match=r"p_star\[3\] sums to 2"):
        fn(Q, p)


def test_evaluate_checks_once_and_the_metrics_skip_on_request():
    with pytest.raises(ConfigError, match=r"q\[1, 7\]"):
        metrics.evaluate(_broken("half"), y=Y, p_star=P)
    # an explicit skip computes on whatever it is given (the caller vouches for it)
    value = metrics.mse_to_bcpd(_broken("half"), P, validate=False)
    assert np.isfinite(value).all()
    frame = metrics.evaluate(Q, y=Y, p_star=P)
    np.testing.assert_allclose(frame.kl_to_bcpd, metrics.kl_to_bcpd(Q, P))


def test_tolerance_follows_the_input_precision():
    q32 = torch.softmax(torch.randn(3, 200, 100), dim=-1)  # float32 sums are off by ~1e-6
    assert metrics.accuracy(q32, np.zeros(200, dtype=np.int64)).shape == (3,)
    off = Q.copy()
    off[0, 0] *= 1 + 1e-5
    with pytest.raises(ConfigError, match="within 1e-06"):
        metrics.nll(off, Y)  # float64 rows must sum to 1 within 1e-6
    metrics.nll(off.astype(np.float32), Y)  # float32: within sqrt(eps) = 3.5e-4
    q16 = torch.softmax(torch.randn(2, 50, 100), dim=-1).to(torch.bfloat16)  # sums off by ~1e-2
    assert np.isfinite(metrics.nll(q16, np.zeros(50, dtype=np.int64))).all()
    with pytest.raises(ConfigError, match=r"sums to 0\.(49|50).*within 0\.09"):
        metrics.nll(q16 * 0.5, np.zeros(50, dtype=np.int64))
    zero_mass = Q.copy()
    zero_mass[0, 0] = [1.0, 0.0, 0.0, 0.0]  # exact zeros are valid probabilities
    assert np.isfinite(metrics.kl_to_bcpd(zero_mass, P)).all()
