"""The distillation bound (Menon et al., ICML 2021) checked with exact p*."""

from .closed_form import TwoGaussianLine, closed_form_terms
from .terms import STUDENT_LOSSES, monte_carlo_lhs, per_class_losses, population_terms

__all__ = [
    "STUDENT_LOSSES",
    "TwoGaussianLine",
    "closed_form_terms",
    "monte_carlo_lhs",
    "per_class_losses",
    "population_terms",
]
