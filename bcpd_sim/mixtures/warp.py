"""Warped families: a base distribution pushed through a fixed, seeded, invertible smooth map.

If x = f(z) with f invertible, then p*(y | x) = p*_base(y | f^{-1}(x)): the Jacobian of f appears
in every class density alike and cancels in Bayes' rule. So the warped BCPD stays exact.

The map is a stack of volume-preserving layers, each exactly invertible in closed form:
a fixed random rotation followed by an additive coupling x_b = z_b + s * tanh(z_a W + c) V,
where (a, b) split the coordinates. Its inverse subtracts the same shift.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import special_ortho_group

from ..errors import ConfigError
from ..validation import check_int, check_positive
from .base import ClassConditionalDistribution


class CouplingWarp:
    """A seeded invertible map of R^d built from rotations and additive tanh couplings.

    Args:
        dim: dimension d (>= 1; with d = 1 the map is a shift-free monotone tanh warp).
        num_layers: how many rotation + coupling layers.
        hidden: width of the tanh layer inside each coupling.
        strength: scale s of each coupling shift (0 gives a pure rotation).
        seed: fixes every random weight.
    """

    def __init__(
        self,
        dim: int,
        num_layers: int = 4,
        hidden: int = 16,
        strength: float = 2.0,
        seed: int = 0,
    ):
        self.dim = check_int("dim", dim, minimum=1)
        self.num_layers = check_int("num_layers", num_layers, minimum=1)
        self.hidden = check_int("hidden", hidden, minimum=1)
        self.strength = check_positive("strength", strength, allow_zero=True)
        self.seed = seed
        rng = np.random.default_rng(seed)
        self._layers = []
        half = self.dim // 2
        for _ in range(self.num_layers):
            rot = special_ortho_group.rvs(self.dim, random_state=rng) if self.dim > 1 else np.eye(1)
            n_in = max(half, 1)
            n_out = self.dim - half
            w = rng.standard_normal((n_in, self.hidden)) / np.sqrt(n_in)
            c = rng.uniform(-1.0, 1.0, self.hidden)
            v = rng.standard_normal((self.hidden, n_out)) / np.sqrt(self.hidden)
            self._layers.append((np.atleast_2d(rot), w, c, v))

    def _shift(self, a: np.ndarray, w, c, v) -> np.ndarray:
        return self.strength * np.tanh(a @ w + c) @ v

    def forward(self, z: np.ndarray) -> np.ndarray:
        """x = f(z), row-wise, float64."""
        x = np.asarray(z, dtype=np.float64)
        half = self.dim // 2
        for rot, w, c, v in self._layers:
            x = x @ rot.T
            if half == 0:
                continue
            x = x.copy()
            x[:, half:] += self._shift(x[:, :half], w, c, v)
        return x

    def inverse(self, x: np.ndarray) -> np.ndarray:
        """z = f^{-1}(x), row-wise, float64 (exact up to rounding)."""
        z = np.asarray(x, dtype=np.float64)
        half = self.dim // 2
        for rot, w, c, v in reversed(self._layers):
            if half:
                z = z.copy()
                z[:, half:] -= self._shift(z[:, :half], w, c, v)
            z = z @ rot
        return z

    def __repr__(self) -> str:
        return (
            f"CouplingWarp(dim={self.dim}, num_layers={self.num_layers}, hidden={self.hidden}, "
            f"strength={self.strength}, seed={self.seed})"
        )


class WarpedMixture(ClassConditionalDistribution):
    """A base distribution pushed through an invertible map: x = warp.forward(z), z ~ base.

    The BCPD is exact: p*(k | x) = base.bcpd(warp.inverse(x)). Densities include the map's
    log |det Jacobian|, which is 0 for :class:`CouplingWarp` (volume preserving).
    """

    def __init__(
        self, base: ClassConditionalDistribution, warp: CouplingWarp | None = None, seed: int = 0
    ):
        if not isinstance(base, ClassConditionalDistribution):
            raise ConfigError("base must be a bcpd_sim.mixtures distribution")
        self.base = base
        self.warp = warp if warp is not None else CouplingWarp(base.dim, seed=seed)
        if self.warp.dim != base.dim:
            raise ConfigError(f"warp.dim ({self.warp.dim}) must equal base.dim ({base.dim})")
        self.num_classes = base.num_classes
        self.dim = base.dim
        self.priors = base.priors

    def _scratch_per_class(self) -> int:
        return self.base._scratch_per_class()

    def _class_log_density(self, x: np.ndarray) -> np.ndarray:
        return self.base._class_log_density(self.warp.inverse(x))

    def _class_log_density_shifted(self, x: np.ndarray) -> np.ndarray:
        return self.base._class_log_density_shifted(self.warp.inverse(x))

    def _sample_given_labels(self, y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return self.warp.forward(self.base._sample_given_labels(y, rng))

    def __repr__(self) -> str:
        return f"WarpedMixture(base={self.base!r}, warp={self.warp!r})"
