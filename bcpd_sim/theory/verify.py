"""Check Theorem 1 (and its CE analogue) over many predictors on one sample."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from ..mixtures import ClassConditionalDistribution
from ..validation import check_int
from .decomposition import ce_decomposition, mse_decomposition
from .predictors import Predictor, default_predictors

COLUMNS = [
    "predictor",
    "kind",
    "loss",
    "empirical_risk",
    "risk_se",
    "predicted_risk",
    "distance",
    "model_free",
    "residual",
    "residual_se",
    "residual_z",
    "peeks_at_label",
]


@dataclass
class Theorem1Check:
    """Per-predictor table plus rank agreement of risk and distance across predictors."""

    table: pd.DataFrame
    rank_agreement: pd.DataFrame
    n: int
    seed: int

    def honest(self) -> pd.DataFrame:
        """Rows of predictors that do not peek at the label."""
        return self.table[~self.table.peeks_at_label]


def check_predictor(
    predictor: Predictor, x: np.ndarray, y: np.ndarray, p_star: np.ndarray
) -> list[dict]:
    """Both decompositions for one predictor, as two table rows."""
    q = predictor.fn(x, y)
    rows = []
    for loss, dec in (
        ("mse", mse_decomposition(q, p_star, y)),
        ("ce", ce_decomposition(q, p_star, y)),
    ):
        rows.append(
            {
                "predictor": predictor.name,
                "kind": predictor.kind,
                "loss": loss,
                "empirical_risk": dec.risk,
                "risk_se": dec.risk_se,
                "predicted_risk": dec.prediction,
                "distance": dec.distance_term,
                "model_free": dec.model_free_term,
                "residual": dec.residual,
                "residual_se": dec.residual_se,
                "residual_z": dec.residual_z,
                "peeks_at_label": predictor.peeks_at_label,
            }
        )
    return rows


def rank_agreement(table: pd.DataFrame) -> pd.DataFrame:
    """Spearman and Kendall correlation of empirical risk with distance, per loss (honest rows)."""
    out = []
    for loss, group in table[~table.peeks_at_label].groupby("loss", sort=False):
        rho = stats.spearmanr(group.empirical_risk, group.distance).statistic
        tau = stats.kendalltau(group.empirical_risk, group.distance).statistic
        out.append({"loss": loss, "predictors": len(group), "spearman": rho, "kendall": tau})
    return pd.DataFrame(out)


def verify_theorem1(
    mixture: ClassConditionalDistribution,
    *,
    n: int = 100_000,
    seed: int = 0,
    predictors: list[Predictor] | None = None,
    train_n: int = 5_000,
) -> Theorem1Check:
    """Score every predictor on one sample of size n and tabulate both decompositions."""
    n = check_int("n", n, minimum=2)
    if predictors is None:
        predictors = default_predictors(mixture, seed=seed, train_n=train_n)
    sample = mixture.sample(n, seed=seed)
    rows = [r for p in predictors for r in check_predictor(p, sample.x, sample.y, sample.p_star)]
    table = pd.DataFrame(rows, columns=COLUMNS)
    return Theorem1Check(table=table, rank_agreement=rank_agreement(table), n=n, seed=seed)
