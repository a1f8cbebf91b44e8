"""Many small MLPs trained as one batched computation (teachers and students for Figure-1 studies).

Entry point :func:`train`; see :mod:`.trainer` for the design, :mod:`.plan` for the validated
job (:func:`make_plan`, :class:`TrainPlan`), :mod:`.result` for the trained :class:`Ensemble`,
:mod:`.losses` (the loss registry) and :mod:`.optim` for the named losses, optimisers and
schedules, :mod:`.budget` for memory and work estimates, and :mod:`bcpd_sim.metrics` for
per-member metrics.
"""

from __future__ import annotations

from .. import metrics
from .losses import (
    LOSS_DEFAULTS,
    LOSS_NAMES,
    LOSSES,
    TEACHER_LOSSES,
    Loss,
    LossSpec,
    loss_and_grad,
    make_loss,
)
from .optim import OPTIMIZER_DEFAULTS, OPTIMIZER_NAMES, SCHEDULE_DEFAULTS, SCHEDULE_NAMES
from .plan import (
    CAPTURE_MODES,
    PAPER_WIDTH,
    SELECTION_RULES,
    MemberSpec,
    TrainPlan,
    make_plan,
    member_grid,
)
from .result import Ensemble
from .shuffle import permutations
from .trainer import run_plan, train

__all__ = [
    "CAPTURE_MODES",
    "Ensemble",
    "LOSS_DEFAULTS",
    "LOSS_NAMES",
    "LOSSES",
    "Loss",
    "LossSpec",
    "MemberSpec",
    "OPTIMIZER_DEFAULTS",
    "OPTIMIZER_NAMES",
    "PAPER_WIDTH",
    "SCHEDULE_DEFAULTS",
    "SCHEDULE_NAMES",
    "SELECTION_RULES",
    "TEACHER_LOSSES",
    "TrainPlan",
    "loss_and_grad",
    "make_loss",
    "make_plan",
    "member_grid",
    "metrics",
    "permutations",
    "run_plan",
    "train",
]
