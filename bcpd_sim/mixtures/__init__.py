"""Synthetic class-conditional distributions whose BCPD p*(y|x) is known exactly.

Every distribution has ``num_classes``, ``dim``, ``priors``, ``sample(n, seed=...)`` (a
:class:`Sample` with ``.x``, ``.y`` and ``.p_star``), ``bcpd(x)``, ``log_bcpd(x)`` and
``bayes_accuracy(n=..., seed=...)``; ``sample_splits(sizes, seed)`` draws independent splits, each
from its own child stream (sampling scheme :data:`SAMPLING_SCHEME`).
"""

from .base import SAMPLING_SCHEME, ClassConditionalDistribution, Estimate, Sample
from .gaussian import (
    GaussianComponents,
    GaussianMixture,
    IsotropicGaussianMixture,
    MultiModalGaussianMixture,
)
from .label_noise import LabelNoiseMixture, pair_flip_transition, symmetric_transition
from .presets import list_mixtures, make_mixture
from .superclass import SuperClassMixture
from .warp import CouplingWarp, WarpedMixture

__all__ = [
    "SAMPLING_SCHEME",
    "ClassConditionalDistribution",
    "CouplingWarp",
    "Estimate",
    "GaussianComponents",
    "GaussianMixture",
    "IsotropicGaussianMixture",
    "LabelNoiseMixture",
    "MultiModalGaussianMixture",
    "Sample",
    "SuperClassMixture",
    "WarpedMixture",
    "list_mixtures",
    "make_mixture",
    "pair_flip_transition",
    "symmetric_transition",
]
