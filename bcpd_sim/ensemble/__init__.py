"""Many small MLPs trained as one batched computation (teachers and students for Figure-1 studies).

Entry point :func:`train`; see :mod:`.trainer` for the design, :mod:`.losses`, :mod:`.optim` for
the named losses, optimisers and schedules, and :mod:`bcpd_sim.metrics` for per-member metrics.
"""

from __future__ import annotations

from .. import metrics
from .losses import LOSS_DEFAULTS, LOSS_NAMES, LossSpec, loss_and_grad, make_loss
from .optim import OPTIMIZER_DEFAULTS, OPTIMIZER_NAMES, SCHEDULE_DEFAULTS, SCHEDULE_NAMES
from .shuffle import permutations
from .trainer import (
    CAPTURE_MODES,
    PAPER_WIDTH,
    SELECTION_RULES,
    Ensemble,
    MemberSpec,
    member_grid,
    train,
)

__all__ = [
    "CAPTURE_MODES",
    "Ensemble",
    "LOSS_DEFAULTS",
    "LOSS_NAMES",
    "LossSpec",
    "MemberSpec",
    "OPTIMIZER_DEFAULTS",
    "OPTIMIZER_NAMES",
    "PAPER_WIDTH",
    "SCHEDULE_DEFAULTS",
    "SCHEDULE_NAMES",
    "SELECTION_RULES",
    "loss_and_grad",
    "make_loss",
    "member_grid",
    "metrics",
    "permutations",
    "train",
]
