"""Theorem 1 numerically: MSE risk = MSE to the BCPD + a model-free term (and the CE analogue)."""

from .decomposition import (
    CEDecomposition,
    MSEDecomposition,
    ce_decomposition,
    mean_se,
    mse_decomposition,
)
from .predictors import Predictor, default_predictors
from .verify import Theorem1Check, rank_agreement, verify_theorem1

__all__ = [
    "CEDecomposition",
    "MSEDecomposition",
    "Predictor",
    "Theorem1Check",
    "ce_decomposition",
    "default_predictors",
    "mean_se",
    "mse_decomposition",
    "rank_agreement",
    "verify_theorem1",
]
