"""Issue 12's statistics: the paper code's clipped CE distance (and, below, across-draw intervals)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bcpd_sim import metrics


def test_ce_to_bcpd_clip10_is_the_paper_codes_clipped_cross_entropy():
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(4), size=6)
    q = rng.dirichlet(np.ones(4), size=(2, 6))
    q[0, 0] = [1.0, 0.0, 0.0, 0.0]  # log 0 and log of a tiny mass are clipped at -10
    q[0, 1] = [1.0 - 1e-7, 1e-7, 0.0, 0.0]
    expected = [
        np.mean(
            [
                -sum(
                    p[i, k] * max(math.log(q[m, i, k]) if q[m, i, k] > 0 else -math.inf, -10.0)
                    for k in range(4)
                )
                for i in range(6)
            ]
        )
        for m in range(2)
    ]
    np.testing.assert_allclose(metrics.ce_to_bcpd_clip10(q, p), expected, rtol=1e-12)
    assert metrics.ce_to_bcpd_clip10(q, p)[1] == pytest.approx(metrics.ce_to_bcpd(q, p)[1])
    assert metrics.ce_to_bcpd_clip10(q, p)[0] < metrics.ce_to_bcpd(q, p)[0]
