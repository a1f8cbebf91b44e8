"""Named distributions, so commands and configs can say ``mixture = "paper"``."""

from __future__ import annotations

from collections.abc import Callable

from ..validation import check_choice
from .base import ClassConditionalDistribution
from .gaussian import GaussianMixture, IsotropicGaussianMixture, MultiModalGaussianMixture
from .label_noise import LabelNoiseMixture
from .warp import CouplingWarp, WarpedMixture


def paper(seed: int = 0) -> ClassConditionalDistribution:
    """The paper's setting: K=10, d=30, lattice means in {-1,0,1}, noise variance 6."""
    return IsotropicGaussianMixture.lattice(10, 30, delta=1.0, noise_var=6.0, seed=seed)


def paper_k3(seed: int = 0) -> ClassConditionalDistribution:
    """The paper code's easier variant: K=3, delta=4."""
    return IsotropicGaussianMixture.lattice(3, 30, delta=4.0, noise_var=6.0, seed=seed)


def full_covariance(seed: int = 0) -> ClassConditionalDistribution:
    return GaussianMixture.random(10, 30, separation=0.6, scale=4.0, seed=seed)


def multimodal(seed: int = 0) -> ClassConditionalDistribution:
    return MultiModalGaussianMixture.random(
        10, 30, modes_per_class=3, spread=0.8, noise_var=4.0, seed=seed
    )


def warped(seed: int = 0) -> ClassConditionalDistribution:
    return WarpedMixture(paper(seed), CouplingWarp(30, num_layers=4, strength=2.0, seed=seed + 1))


def noisy_symmetric(seed: int = 0) -> ClassConditionalDistribution:
    return LabelNoiseMixture.symmetric(paper(seed), 0.2)


def noisy_pairflip(seed: int = 0) -> ClassConditionalDistribution:
    return LabelNoiseMixture.pair_flip(paper(seed), 0.2)


PRESETS: dict[str, Callable[[int], ClassConditionalDistribution]] = {
    "paper": paper,
    "paper_k3": paper_k3,
    "full_covariance": full_covariance,
    "multimodal": multimodal,
    "warped": warped,
    "noisy_symmetric": noisy_symmetric,
    "noisy_pairflip": noisy_pairflip,
}


def list_mixtures() -> list[str]:
    return sorted(PRESETS)


def make_mixture(name: str, seed: int = 0) -> ClassConditionalDistribution:
    """The preset distribution ``name`` with its parameters drawn from ``seed``."""
    check_choice("mixture", name, list_mixtures())
    return PRESETS[name](seed)
