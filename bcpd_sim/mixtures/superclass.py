"""Super-classes: any distribution with its classes merged into groups.

With groups G_1..G_M partitioning the base classes, the merged label is the group of the base
label, and the merged BCPD is the sum of its members' BCPD:
p*(G | x) = sum_{k in G} p*(k | x), computed in log space as logsumexp_{k in G} log p*(k | x).
This is the binary CIFAR-2x5 construction of the paper's Table 4 (after Mueller et al.,
"Subclass distillation"): ten classes merged into two super-classes of five.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.special import logsumexp

from ..errors import ConfigError
from ..validation import check_int
from .base import ClassConditionalDistribution, Sample


def check_groups(groups, num_classes: int) -> tuple[tuple[int, ...], ...]:
    """Validate that ``groups`` partitions ``range(num_classes)`` into at least two groups."""
    if isinstance(groups, (str, bytes)) or not isinstance(groups, Sequence):
        raise ConfigError(f"groups must be a list of lists of class indices, got {groups!r}")
    if len(groups) < 2:
        raise ConfigError(f"groups must have at least 2 groups, got {len(groups)}")
    out: list[tuple[int, ...]] = []
    seen: dict[int, int] = {}
    for g, members in enumerate(groups):
        if isinstance(members, (str, bytes)) or not isinstance(members, Sequence):
            raise ConfigError(f"groups[{g}] must be a list of class indices, got {members!r}")
        if len(members) == 0:
            raise ConfigError(f"groups[{g}] is empty; every group needs at least one class")
        row = []
        for k in members:
            k = check_int(f"groups[{g}] entry", k, minimum=0)
            if k >= num_classes:
                raise ConfigError(
                    f"groups[{g}] has class {k}; classes lie in [0, {num_classes - 1}]"
                )
            if k in seen:
                raise ConfigError(f"class {k} is in groups[{seen[k]}] and groups[{g}]")
            seen[k] = g
            row.append(k)
        out.append(tuple(row))
    missing = sorted(set(range(num_classes)) - set(seen))
    if missing:
        raise ConfigError(f"groups must cover every class; missing {missing}")
    return tuple(out)


def halves(num_classes: int) -> list[list[int]]:
    """Two groups: the first ceil(K/2) classes against the rest (CIFAR-2x5's 0-4 vs 5-9)."""
    k = check_int("num_classes", num_classes, minimum=2)
    cut = (k + 1) // 2
    return [list(range(cut)), list(range(cut, k))]


class SuperClassMixture(ClassConditionalDistribution):
    """``base`` with its classes merged: label ``m`` means "the base label is in groups[m]".

    Args:
        base: any exact-BCPD distribution.
        groups: a partition of the base classes, e.g. ``[[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]]``.
    """

    def __init__(self, base: ClassConditionalDistribution, groups):
        if not isinstance(base, ClassConditionalDistribution):
            raise ConfigError("base must be a bcpd_sim.mixtures distribution")
        self.base = base
        self.groups = check_groups(groups, base.num_classes)
        self.num_classes = len(self.groups)
        self.dim = base.dim
        self.group_of = np.empty(base.num_classes, dtype=np.int64)
        for g, members in enumerate(self.groups):
            self.group_of[list(members)] = g
        self.priors = np.array([base.priors[list(g)].sum() for g in self.groups])

    @classmethod
    def halves(cls, base: ClassConditionalDistribution) -> SuperClassMixture:
        """The first half of the classes against the second half."""
        return cls(base, halves(base.num_classes))

    def merge_labels(self, y) -> np.ndarray:
        """Base labels -> super-class labels."""
        return self.group_of[np.asarray(y, dtype=np.int64)]

    def _merge_log(self, log_values: np.ndarray) -> np.ndarray:
        """logsumexp over each group's columns: (n, K_base) -> (n, M)."""
        out = np.empty((len(log_values), self.num_classes))
        for g, members in enumerate(self.groups):
            out[:, g] = logsumexp(log_values[:, list(members)], axis=1)
        return out

    def _class_log_density(self, x: np.ndarray) -> np.ndarray:
        # log p(x | G) = logsumexp_{k in G}(log pi_k + log p(x | k)) - log Pi_G
        with np.errstate(divide="ignore"):
            joint = self.base._class_log_density(x) + np.log(self.base.priors)
            return self._merge_log(joint) - np.log(self.priors)

    def log_bcpd(self, x) -> np.ndarray:
        """log p*(G | x) = logsumexp_{k in G} log p*(k | x), from the base's exact log-BCPD."""
        return self._merge_log(self.base.log_bcpd(x))

    def sample(self, n: int, seed: int | np.random.Generator | None = 0) -> Sample:
        """Base labels and inputs drawn as the base draws them, then the labels merged."""
        n = check_int("n", n, minimum=1)
        rng = np.random.default_rng(seed)
        base_y = self.base.sample_labels(n, rng)
        x = self.base._sample_given_labels(base_y, rng)
        return Sample(x=x, y=self.merge_labels(base_y), p_star=self.bcpd(x))

    def _sample_given_labels(self, y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        # x | G: draw the base label within G in proportion to its prior, then x | base label.
        base_y = np.empty(len(y), dtype=np.int64)
        for g, members in enumerate(self.groups):
            sel = np.flatnonzero(y == g)
            if sel.size:
                w = self.base.priors[list(members)]
                base_y[sel] = rng.choice(np.asarray(members), size=sel.size, p=w / w.sum())
        return self.base._sample_given_labels(base_y, rng)

    def _scratch_per_class(self) -> int:
        return max(1, self.base._scratch_per_class()) * max(
            1, -(-self.base.num_classes // self.num_classes)
        )

    def __repr__(self) -> str:
        return f"SuperClassMixture(base={self.base!r}, groups={[list(g) for g in self.groups]})"
