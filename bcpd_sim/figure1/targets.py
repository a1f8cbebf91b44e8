"""Simulated teachers: soft targets at controlled distances from the BCPD.

Each returns (n, K) float64 probabilities for the given labels y and BCPD p*. The kinds of target
the Figure-1 study trains students on are registered in :data:`TARGET_KINDS` (one small class
each: its config key, how its parameters are drawn, how its targets are made, its label).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import validation as V
from ..simplex import label_smoothing, onehot, tempered

__all__ = [
    "TARGET_KINDS",
    "TargetKind",
    "dirichlet_noise",
    "eta_mix",
    "gaussian_noise",
    "label_smoothing",
    "onehot",
    "register",
    "tempered",
    "wrong_mass",
]


def eta_mix(y: np.ndarray, p_star: np.ndarray, eta: float) -> np.ndarray:
    """The paper's p_tar = eta e_y + (1 - eta) p*: eta = 0 is p* itself, eta = 1 the hard label."""
    return eta * onehot(y, p_star.shape[1]) + (1.0 - eta) * p_star


def dirichlet_noise(p_star: np.ndarray, weight: float, rng: np.random.Generator) -> np.ndarray:
    """(1 - w) p* + w d with d ~ Dirichlet(1) per point: noise that stays on the simplex."""
    noise = rng.dirichlet(np.ones(p_star.shape[1]), size=len(p_star))
    return (1.0 - weight) * p_star + weight * noise


def gaussian_noise(p_star: np.ndarray, sd: float, rng: np.random.Generator) -> np.ndarray:
    """p* + N(0, sd^2), clipped at a small floor and renormalised (the paper code's noisy
    targets: additive Gaussian noise on p*, clamped, renormalised)."""
    noisy = np.clip(p_star + sd * rng.standard_normal(p_star.shape), 1e-6, None)
    return noisy / noisy.sum(axis=1, keepdims=True)


def wrong_mass(
    p_star: np.ndarray, mse: float, *, spread: bool, rng: np.random.Generator
) -> np.ndarray:
    """Move a fraction c of each point's top-class mass m = c max_k p*_k to the wrong classes.

    ``spread=False`` puts all of m on one wrong class (drawn uniformly per point), so that
    ||p_tar - p*||^2 = 2 m^2; ``spread=True`` spreads it evenly over all K - 1 wrong classes, so
    that ||p_tar - p*||^2 = m^2 K / (K - 1). c is chosen so that the mean over points equals
    ``mse`` (c is capped at 1, which caps the reachable distance). At matched MSE the two differ in
    KL(p* || p_tar) and in how often the arg-max flips: a family on which the MSE and KL distances
    do not rank students alike.
    """
    n, k = p_star.shape
    top = p_star.argmax(axis=1)
    p1 = p_star[np.arange(n), top]
    per_c2 = float(np.mean(p1**2)) * (k / (k - 1) if spread else 2.0)  # mean MSE per unit c^2
    c = min(1.0, float(np.sqrt(mse / per_c2)))
    m = c * p1
    out = p_star.copy()
    if spread:
        out += (m / (k - 1))[:, None]
        out[np.arange(n), top] -= m + m / (k - 1)
    else:
        wrong = (top + rng.integers(1, k, n)) % k
        out[np.arange(n), top] -= m
        out[np.arange(n), wrong] += m
    return np.clip(out, 0.0, None)


# --------------------------------------------------------------------------- the kinds of target
class TargetKind:
    """A family of simulated teachers: its config key, how its parameters are drawn, its targets.

    A subclass sets ``name`` (the cell and ``teacher_kind``), ``key`` (the
    :class:`~bcpd_sim.figure1.config.SimulatedConfig` field holding its parameters: a list of
    values, or a count of random draws with :meth:`params` overridden), ``label`` (for tables and
    figures), :meth:`make`, and ``positive`` / ``open_low`` when its values are not fractions in
    [0, 1]; :func:`register` adds it. Append new kinds at the end: a kind's
    position seeds its cell, so the existing cells keep their numbers.
    """

    name: str = ""
    key: str = ""
    label: str = ""
    positive: bool = False  # parameters are any value > 0, else fractions in [0, 1] ...
    open_low: bool = False  # ... with 0 excluded

    def check_param(self, key: str, value: Any) -> float:
        """One parameter value, checked (see ``positive`` and ``open_low``)."""
        if self.positive:
            return V.check_positive(key, value)
        return V.check_fraction(key, value, open_low=self.open_low)

    def validate(self, cfg: Any) -> None:
        """Check this kind's field of the simulated config ``cfg``, naming ``simulated.<key>``."""
        value = getattr(cfg, self.key)
        if isinstance(value, int):
            V.check_int(f"simulated.{self.key}", value, minimum=0)
        else:
            V.check_each(f"simulated.{self.key}", value, self.check_param)

    def count(self, cfg: Any) -> int:
        """How many students the simulated config ``cfg`` asks for."""
        value = getattr(cfg, self.key)
        return value if isinstance(value, int) else len(value)

    def params(self, cfg: Any, rng: np.random.Generator) -> list[float]:
        """The kind's parameter per student (``rng`` is the cell's own stream)."""
        return [float(v) for v in getattr(cfg, self.key)]

    def make(
        self, y: np.ndarray, p_star: np.ndarray, param: float, rng: np.random.Generator
    ) -> np.ndarray:
        """Soft targets (n, K) for labels ``y`` and BCPD ``p_star`` (``rng``: this student's)."""
        raise NotImplementedError

    def make_member(
        self,
        y: np.ndarray,
        p_star: np.ndarray,
        params: list[float],
        j: int,
        rng: np.random.Generator,
    ) -> np.ndarray:
        """Student ``j``'s targets; a kind whose students differ by more than their parameter
        (e.g. two variants at the same parameter) overrides this."""
        return self.make(y, p_star, params[j], rng)

    def member_kinds(self, params: list[float]) -> list[str]:
        """Each student's ``teacher_kind`` (default: the kind's name)."""
        return [self.name] * len(params)


TARGET_KINDS: dict[str, TargetKind] = {}


def register(kind: type[TargetKind]) -> type[TargetKind]:
    """Class decorator: add a target kind to :data:`TARGET_KINDS` under its ``name``."""
    TARGET_KINDS[kind.name] = kind()
    return kind


class _EtaMix(TargetKind):
    def make(self, y, p_star, param, rng):
        return eta_mix(y, p_star, param)


@register
class EtaUniform(_EtaMix):
    name, key, label = "eta_uniform", "eta_uniform", "eta-mix, eta ~ U(0, 1)"

    def params(self, cfg, rng):
        return [float(v) for v in rng.uniform(0.0, 1.0, cfg.eta_uniform)]


@register
class EtaLow(_EtaMix):
    name, key, label = "eta_low", "eta_low", "eta-mix, eta ~ U(0, 0.5)"

    def params(self, cfg, rng):
        return [float(v) for v in rng.uniform(0.0, 0.5, cfg.eta_low)]


@register
class Etas(_EtaMix):
    name, key, label = "etas", "etas", "eta-mix, listed eta"


@register
class Tempered(TargetKind):
    name, key, label = "tempered", "temperatures", "tempered p*, softmax(log p* / T)"
    positive = True

    def make(self, y, p_star, param, rng):
        return tempered(p_star, param)


@register
class Dirichlet(TargetKind):
    name, key, label = "dirichlet", "dirichlet", "(1 - w) p* + w Dir(1)"
    open_low = True

    def make(self, y, p_star, param, rng):
        return dirichlet_noise(p_star, param, rng)


@register
class Gaussian(TargetKind):
    name, key, label = "gaussian", "gaussian", "p* + N(0, s^2), clipped, renormalised"
    positive = True

    def make(self, y, p_star, param, rng):
        return gaussian_noise(p_star, param, rng)


@register
class LabelSmoothing(TargetKind):
    name, key, label = "label_smoothing", "label_smoothing", "label smoothing of e_y"
    open_low = True

    def make(self, y, p_star, param, rng):
        return label_smoothing(y, p_star.shape[1], param)


@register
class WrongMass(TargetKind):
    """Two students per listed MSE s: mass moved to one wrong class, and spread over all of them,
    at exactly the same mean MSE to p* (:func:`wrong_mass`)."""

    name, key, label = "wrong_mass", "wrong_mass", "wrong mass at matched MSE (one / spread)"

    def check_param(self, key, value):
        return V.check_positive(key, value)

    def count(self, cfg):
        return 2 * len(cfg.wrong_mass)

    def params(self, cfg, rng):
        return [float(v) for v in cfg.wrong_mass] * 2  # one wrong class, then spread

    def make(self, y, p_star, param, rng):
        return wrong_mass(p_star, param, spread=False, rng=rng)

    def make_member(self, y, p_star, params, j, rng):
        return wrong_mass(p_star, params[j], spread=j >= len(params) // 2, rng=rng)

    def member_kinds(self, params):
        half = len(params) // 2
        return ["wrong_mass_one"] * half + ["wrong_mass_spread"] * half
