"""One cell's world: the mixture its axis values name, and its splits from independent streams.

The train, validation, fresh-input and test splits of a draw come from four child streams of
``SeedSequence([sample_seed, draw])``, so changing one split's size never changes another split.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..mixtures import (
    ClassConditionalDistribution,
    CouplingWarp,
    IsotropicGaussianMixture,
    LabelNoiseMixture,
    MultiModalGaussianMixture,
    Sample,
    WarpedMixture,
)
from ..validation import check_choice
from .config import FAMILIES, RegimesConfig

#: Version of the sampling scheme, recorded in every row.
SAMPLING_SCHEME = 1


def build_mixture(
    family: str,
    *,
    num_classes: int,
    dim: int,
    separation: float,
    noise_var: float,
    label_noise: float,
    seed: int,
) -> ClassConditionalDistribution:
    """The distribution of one cell, with its parameters drawn from ``seed``.

    ``paper``: lattice means in {-s, 0, s}^d with isotropic variance ``noise_var`` (the paper's
    family, s = separation); ``warped``: the same through a seeded invertible coupling map;
    ``multimodal``: three modes per class scattered with sd 0.8 s (variance 4/6 of ``noise_var``,
    as the ``multimodal`` preset). A positive ``label_noise`` flips labels symmetrically.
    """
    check_choice("family", family, FAMILIES)
    if family == "multimodal":
        base: ClassConditionalDistribution = MultiModalGaussianMixture.random(
            num_classes,
            dim,
            modes_per_class=3,
            spread=0.8 * separation,
            noise_var=noise_var * 4.0 / 6.0,
            seed=seed,
        )
    else:
        base = IsotropicGaussianMixture.lattice(
            num_classes, dim, delta=separation, noise_var=noise_var, seed=seed
        )
        if family == "warped":
            base = WarpedMixture(base, CouplingWarp(dim, num_layers=4, strength=2.0, seed=seed + 1))
    if label_noise > 0:
        base = LabelNoiseMixture.symmetric(base, label_noise)
    return base


@dataclass(frozen=True)
class World:
    """A cell's distribution and its splits (each with inputs, labels and exact p*)."""

    mixture: ClassConditionalDistribution
    train: Sample
    val: Sample
    fresh: Sample
    test: Sample
    mixture_seed: int
    sample_seed: int

    @property
    def num_classes(self) -> int:
        return self.mixture.num_classes

    def student_sample(self, inputs: str) -> Sample:
        """The students' training inputs: the teacher's own (``teacher_train``) or ``fresh``."""
        return self.train if inputs == "teacher_train" else self.fresh


def make_world(cfg: RegimesConfig, point: dict[str, Any], draw: int) -> World:
    """The world of one cell: axis values ``point`` and draw number ``draw`` (images when
    ``cfg.model`` is ``cnn``)."""
    if cfg.model == "cnn":
        return make_image_world(cfg, point, draw)
    d = cfg.data
    mixture_seed = d.mixture_seed + (draw if d.redraw_mixture else 0)
    mix = build_mixture(
        point["family"],
        num_classes=point["num_classes"],
        dim=d.dim,
        separation=point["separation"],
        noise_var=d.noise_var,
        label_noise=point["label_noise"],
        seed=mixture_seed,
    )
    streams = np.random.SeedSequence([d.sample_seed, draw]).spawn(4)
    sizes = split_sizes(cfg, point)
    train, val, fresh, test = (
        mix.sample(n, seed=np.random.default_rng(s)) for n, s in zip(sizes, streams)
    )
    return World(mix, train, val, fresh, test, mixture_seed, d.sample_seed)


def split_sizes(cfg: RegimesConfig, point: dict[str, Any]) -> tuple[int, int, int, int]:
    """Sizes of the train, validation, fresh and test splits."""
    return (point["n_train"], cfg.data.n_val, point["n_train"], cfg.data.n_test)


def make_image_world(cfg: RegimesConfig, point: dict[str, Any], draw: int) -> World:
    """The CNN variant's world: CIFAR-shaped synthetic images whose p* is exact
    (:class:`~bcpd_sim.vision.synthetic.SyntheticImageWorld`: lattice latents of spacing
    ``separation`` in ``data.dim`` dimensions, symmetric label noise ``label_noise``). Each split's
    ``x`` holds images ``(n, 3, 32, 32)`` float32; the splits come from four child streams of
    ``SeedSequence([sample_seed, draw])`` as in the MLP world."""
    from ..vision.synthetic import SyntheticImageWorld, SyntheticSpec

    d, c = cfg.data, cfg.cnn
    mixture_seed = d.mixture_seed + (draw if d.redraw_mixture else 0)
    images = SyntheticImageWorld(
        SyntheticSpec(
            num_classes=point["num_classes"],
            latent_dim=d.dim,
            delta=point["separation"],
            noise_var=d.noise_var,
            signal=c.signal,
            pixel_noise=c.pixel_noise,
            label_noise=point["label_noise"],
            seed=mixture_seed,
        )
    )
    streams = np.random.SeedSequence([d.sample_seed, draw]).spawn(4)
    splits = []
    for n, stream in zip(split_sizes(cfg, point), streams):
        data, _ = images.sample(n, seed=int(stream.generate_state(1)[0]))
        splits.append(Sample(data.images, data.labels, data.p_star))
    return World(images.mixture, *splits, mixture_seed, d.sample_seed)
