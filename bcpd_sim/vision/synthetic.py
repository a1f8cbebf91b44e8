"""A CIFAR-shaped (3 x 32 x 32) image dataset whose Bayes conditional probability p*(y | image) is
known exactly.

Construction (the "world", fixed by a seed):

1. A latent class-conditional mixture from the simulator,
   ``IsotropicGaussianMixture.lattice(num_classes, latent_dim, delta, noise_var)``: y ~ pi,
   z | y ~ N(mu_y, noise_var I) in R^m (m = 32 by default). ``delta`` sets the separation, hence
   the Bayes accuracy: the ``easy`` and ``hard`` presets differ only in it.
2. A fixed, seeded invertible map from R^3072 onto the open cube (0, 1)^3072 of images:
   ``image = sigmoid(b + signal * A z + pixel_noise * U u)`` with u ~ N(0, I) class-independent
   nuisance, ``[A U]`` an orthonormal basis of R^3072 whose first m columns ``A`` are smooth
   colour patterns (random 8 x 8 x 3 fields, bilinearly upsampled, orthonormalised), ``b`` a fixed
   base image in logit space. Because ``(z, u) -> image`` is a bijection and u is independent of
   y, p*(y | image) = p*(y | z) with ``z = A^T (logit(image) - b) / signal``. (``U u`` is drawn as
   the projection of isotropic noise onto the orthogonal complement of A, which has exactly that
   distribution; U never needs to be formed.)

Images are stored as float32 in (0, 1), not uint8: quantising to 256 levels would destroy the
exactness. p* is computed from the stored float32 images themselves (logit and projection in
float64), so it is the exact BCPD of the very inputs the models see, up to float32 rounding of the
pixels (~1e-7 relative; its effect on p* is far below 1e-4, see the tests). The input
pipeline's normalisation is affine and invertible, so it does not change p* either. Random crops
and flips do change it: train on this data without augmentation (the CLI does).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import numpy as np

from ..errors import ConfigError
from ..mixtures.base import ClassConditionalDistribution, Sample
from ..mixtures.gaussian import IsotropicGaussianMixture
from ..mixtures.label_noise import LabelNoiseMixture
from ..validation import check_choice, check_fraction, check_int, check_positive
from .data import IMAGE_SHAPE, ImageDataset

NUM_PIXELS = int(np.prod(IMAGE_SHAPE))


@dataclass(frozen=True)
class SyntheticSpec:
    """Parameters of a synthetic image world (see the module docstring)."""

    num_classes: int = 100
    latent_dim: int = 32
    delta: float = 1.0
    noise_var: float = 1.0
    signal: float = 0.6  # logit-space rms per pixel of a unit-variance latent direction sum
    pixel_noise: float = 0.3  # std of the class-independent nuisance per pixel (logit space)
    base_level: float = 0.45  # mean grey level of the base image
    grid: int = 8  # coarse grid of the smooth patterns
    label_noise: float = 0.0  # symmetric label noise rate (p* is then the noisy labels' BCPD)
    seed: int = 0

    def validate(self) -> SyntheticSpec:
        check_int("num_classes", self.num_classes, minimum=2)
        check_int("latent_dim", self.latent_dim, minimum=1)
        check_int("grid", self.grid, minimum=2)
        if self.latent_dim > 3 * self.grid**2:
            raise ConfigError(f"latent_dim must be <= 3 * grid^2 = {3 * self.grid**2}")
        for name in ("delta", "noise_var", "signal", "pixel_noise"):
            check_positive(name, getattr(self, name))
        check_fraction("label_noise", self.label_noise, low=0.0, high=0.9)
        if not 0 < self.base_level < 1:
            raise ConfigError(f"base_level must lie in (0, 1), got {self.base_level}")
        return self


#: easy: Bayes accuracy about 0.95 with 100 classes (0.99 with 10); hard: about 0.55 (0.87).
SYNTHETIC_PRESETS: dict[str, SyntheticSpec] = {
    "easy": SyntheticSpec(delta=1.0),
    "hard": SyntheticSpec(delta=0.6),
}


def list_presets() -> list[str]:
    return list(SYNTHETIC_PRESETS)


def _interp_matrix(out_size: int, in_size: int) -> np.ndarray:
    """Bilinear (align-corners) interpolation weights, (out_size, in_size)."""
    pos = np.linspace(0, in_size - 1, out_size)
    lo = np.floor(pos).astype(int).clip(0, in_size - 2)
    frac = pos - lo
    m = np.zeros((out_size, in_size))
    m[np.arange(out_size), lo] = 1 - frac
    m[np.arange(out_size), lo + 1] = frac
    return m


class SyntheticImageWorld:
    """The latent mixture and the invertible map; samples images with their exact p*."""

    def __init__(self, spec: SyntheticSpec) -> None:
        self.spec = spec.validate()
        s = spec
        self.mixture: ClassConditionalDistribution = IsotropicGaussianMixture.lattice(
            s.num_classes, s.latent_dim, s.delta, s.noise_var, seed=s.seed
        )
        if s.label_noise > 0:  # labels flipped symmetrically; p* and sampling both follow
            self.mixture = LabelNoiseMixture.symmetric(self.mixture, s.label_noise)
        rng = np.random.default_rng([s.seed, 0x5EED])
        coarse = rng.standard_normal((s.latent_dim, 3, s.grid, s.grid))
        up = _interp_matrix(IMAGE_SHAPE[1], s.grid)
        patterns = np.einsum("hi,mcij,wj->mchw", up, coarse, up).reshape(s.latent_dim, -1)
        q, r = np.linalg.qr(patterns.T)  # (3072, m) orthonormal columns
        self.basis = q * np.sign(np.diag(r))  # fix the sign convention
        # latent -> logit scale: rms per pixel of A z for ||z||^2 = m is sqrt(m / 3072).
        self.scale = s.signal * np.sqrt(NUM_PIXELS / s.latent_dim)
        base_fields = 0.3 * rng.standard_normal((3, s.grid, s.grid))
        base = np.einsum("hi,cij,wj->chw", up, base_fields, up).reshape(-1)
        self.base_logit = np.log(s.base_level / (1 - s.base_level)) + base

    # ---------------------------------------------------------------- the map and its inverse
    def encode(self, z: np.ndarray, rng: np.random.Generator, chunk: int = 4096) -> np.ndarray:
        """Images (n, 3, 32, 32) float32 for latents ``z`` (n, m), nuisance drawn from ``rng``."""
        z = np.asarray(z, dtype=np.float64)
        out = np.empty((len(z), NUM_PIXELS), dtype=np.float32)
        a = self.basis
        for i in range(0, len(z), chunk):
            zi = z[i : i + chunk]
            w = rng.standard_normal((len(zi), NUM_PIXELS))
            w -= (w @ a) @ a.T  # nuisance in the orthogonal complement of span(A)
            # pre = base + scale * A z + pixel_noise * w; image = sigmoid(pre), in place.
            w *= self.spec.pixel_noise
            w += self.base_logit
            w += (self.scale * zi) @ a.T
            np.negative(w, out=w)
            np.exp(w, out=w)
            w += 1.0
            np.reciprocal(w, out=w)
            out[i : i + chunk] = w
        return out.reshape(len(z), *IMAGE_SHAPE)

    def latent(self, images: np.ndarray, chunk: int = 4096) -> np.ndarray:
        """Recover z (n, m), in float64, from stored images (any float dtype, values in (0,1))."""
        flat = np.asarray(images).reshape(len(images), NUM_PIXELS)
        out = np.empty((len(flat), self.spec.latent_dim))
        for i in range(0, len(flat), chunk):
            x = flat[i : i + chunk].astype(np.float64)
            if np.any(x <= 0) or np.any(x >= 1):
                raise ConfigError("synthetic images must lie strictly inside (0, 1)")
            pre = np.log(x) - np.log1p(-x)
            out[i : i + chunk] = ((pre - self.base_logit) @ self.basis) / self.scale
        return out

    def log_bcpd(self, images: np.ndarray) -> np.ndarray:
        """log p*(y | image), (n, K) float64."""
        return self.mixture.log_bcpd(self.latent(images))

    def bcpd(self, images: np.ndarray) -> np.ndarray:
        """p*(y | image), (n, K) float64."""
        return np.exp(self.log_bcpd(images))

    # ------------------------------------------------------------------------------- sampling
    def sample(self, n: int, seed: int, name: str = "synthetic") -> tuple[ImageDataset, Sample]:
        """``n`` images with labels and exact p* (from the stored images), plus the latent draw."""
        n = check_int("n", n, minimum=1)
        latent = self.mixture.sample(n, seed=np.random.default_rng([self.spec.seed, seed, 1]))
        images = self.encode(latent.x, np.random.default_rng([self.spec.seed, seed, 2]))
        dataset = ImageDataset(
            images,
            latent.y,
            self.spec.num_classes,
            [f"class_{k:03d}" for k in range(self.spec.num_classes)],
            p_star=self.bcpd(images),
            name=name,
        )
        return dataset, latent

    def bayes_accuracy(self, n: int = 100_000, seed: int = 0) -> float:
        """Accuracy of argmax p* (Monte Carlo, in the latent space)."""
        return float(self.mixture.bayes_accuracy(n, seed=seed).value)


def synthetic_spec(preset: str = "easy", **overrides) -> SyntheticSpec:
    """The preset's spec with ``overrides`` (None values ignored)."""
    check_choice("synthetic preset", preset, SYNTHETIC_PRESETS)
    overrides = {k: v for k, v in overrides.items() if v is not None}
    unknown = set(overrides) - set(SyntheticSpec.__dataclass_fields__)
    if unknown:
        raise ConfigError(f"unknown synthetic fields {sorted(unknown)}")
    return replace(SYNTHETIC_PRESETS[preset], **overrides).validate()


def make_synthetic(
    preset: str = "easy",
    *,
    n_train: int = 50_000,
    n_test: int = 10_000,
    seed: int = 0,
    **overrides,
) -> tuple[ImageDataset, ImageDataset, SyntheticImageWorld]:
    """Train and test splits (CIFAR-100 sizes by default) with exact p*, and their world.

    ``seed`` fixes the world (mixture and map) and the draws; ``overrides`` change spec fields
    (e.g. ``num_classes=10``). A validation split carved from ``train`` with
    :func:`bcpd_sim.vision.data.split_validation` keeps its rows of p*.
    """
    spec = synthetic_spec(preset, seed=seed, **overrides)
    world = SyntheticImageWorld(spec)
    train, _ = world.sample(n_train, seed=1, name=f"synthetic-{preset}-train")
    test, _ = world.sample(n_test, seed=2, name=f"synthetic-{preset}-test")
    return train, test, world


def spec_dict(spec: SyntheticSpec) -> dict:
    return asdict(spec)
