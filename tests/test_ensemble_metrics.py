"""Per-member metrics against direct per-sample numpy loops."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bcpd_sim import metrics
from bcpd_sim.errors import ConfigError


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    m, n, k = 3, 40, 4
    q = rng.dirichlet(np.ones(k), size=(m, n))
    p = rng.dirichlet(np.ones(k) * 0.5, size=n)
    p[0] = [0.0, 1.0, 0.0, 0.0]
    y = rng.integers(0, k, n)
    return q, p, y


def _loop(fn, q, *refs):
    return np.array(
        [
            np.mean([fn(q[j, i], *(r[i] for r in refs)) for i in range(q.shape[1])])
            for j in range(q.shape[0])
        ]
    )


def test_label_metrics(data):
    q, _, y = data
    k = q.shape[-1]
    np.testing.assert_allclose(
        metrics.accuracy(q, y), _loop(lambda a, t: float(np.argmax(a) == t), q, y)
    )
    np.testing.assert_allclose(metrics.nll(q, y), _loop(lambda a, t: -np.log(a[t]), q, y))
    np.testing.assert_allclose(
        metrics.brier(q, y), _loop(lambda a, t: sum((a[c] - (c == t)) ** 2 for c in range(k)), q, y)
    )


def test_bcpd_metrics(data):
    q, p, _ = data
    mse = _loop(lambda a, b: np.sum((a - b) ** 2), q, p)
    kl = _loop(
        lambda a, b: sum(b[c] * np.log(b[c] / a[c]) for c in range(len(a)) if b[c] > 0), q, p
    )
    ce = _loop(lambda a, b: -np.sum(b * np.log(a)), q, p)
    np.testing.assert_allclose(metrics.mse_to_bcpd(q, p), mse, rtol=1e-12)
    np.testing.assert_allclose(metrics.kl_to_bcpd(q, p), kl, rtol=1e-12)
    np.testing.assert_allclose(metrics.ce_to_bcpd(q, p), ce, rtol=1e-12)
    fro = np.array([np.linalg.norm(q[j] - p, "fro") for j in range(q.shape[0])])
    np.testing.assert_allclose(metrics.frobenius_to_bcpd(q, p), fro, rtol=1e-12)
    # Frobenius grows like sqrt(n) while the per-sample MSE does not.
    np.testing.assert_allclose(metrics.frobenius_to_bcpd(q, p) ** 2 / q.shape[1], mse, rtol=1e-12)


def test_ece_against_bin_loop(data):
    q, _, y = data
    nb = 5
    out = []
    for j in range(q.shape[0]):
        conf, pred = q[j].max(1), q[j].argmax(1)
        total = 0.0
        for b in range(nb):
            lo, hi = b / nb, (b + 1) / nb
            sel = (conf > lo) & (conf <= hi) if b > 0 else (conf <= hi)
            if sel.any():
                total += sel.mean() * abs((pred[sel] == y[sel]).mean() - conf[sel].mean())
        out.append(total)
    np.testing.assert_allclose(metrics.ece(q, y, num_bins=nb), out, rtol=1e-12)


def test_torch_input_and_evaluate_frame(data):
    q, p, y = data
    frame = metrics.evaluate(torch.tensor(q), y=y, p_star=p)
    assert list(frame["member"]) == [0, 1, 2]
    np.testing.assert_allclose(frame["mse_to_bcpd"], metrics.mse_to_bcpd(q, p))
    assert set(metrics.METRICS_WITH_LABELS + metrics.METRICS_WITH_BCPD) <= set(frame.columns)


def test_metric_errors(data):
    q, p, y = data
    with pytest.raises(ConfigError, match="y must have shape"):
        metrics.accuracy(q, y[:-1])
    with pytest.raises(ConfigError, match="p_star shape"):
        metrics.mse_to_bcpd(q, p[:, :2])
    with pytest.raises(ConfigError, match="needs p_star"):
        metrics.evaluate(q, y=y, metrics=["kl_to_bcpd"])
    with pytest.raises(ConfigError, match="unknown metric"):
        metrics.evaluate(q, y=y, metrics=["auc"])
