"""The teacher application behind ``bcpd-sim cifar100 teacher``: its config and its run.

:class:`TeacherConfig` is everything that defines a teacher run; :func:`train_teacher` loads the
data, builds the model and the named loss, and trains it with the shared
:class:`~bcpd_sim.vision.trainer.Trainer`. The library pieces it uses live in their own modules
(re-exported here for older imports): :mod:`~bcpd_sim.vision.bundle` (data and loaders),
:mod:`~bcpd_sim.vision.evaluation`, :mod:`~bcpd_sim.vision.trainer` (the loop) and
:mod:`~bcpd_sim.vision.runs` (checkpoints and summaries).

Run directory: ``config.json`` (config, recipe, seed, effective device settings, versions),
``metrics.csv``, ``summary.json`` (last-epoch and best-epoch test accuracy, labelled),
``checkpoints/``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import torch

from ..device import resolve_device
from ..errors import ConfigError
from .bundle import DATA_SOURCES, DataBundle, load_data, load_for_recipe, make_loaders
from .configs import (
    MAX_SEED,
    DataOptions,
    RecipeOptions,
    RunOptions,
    check_fields,
    fields_of,
    model_names,
    option,
)
from .evaluation import autocast, evaluate
from .losses import list_losses, teacher_loss
from .runs import (
    CHECKPOINT_FORMAT,
    RESUME_IGNORED,
    capture_rng_state,
    load_checkpoint,
    load_model_from_checkpoint,
    read_summary,
    restore_rng_state,
    summarise,
)
from .trainer import Criterion, Trainer, fit, maybe_compile, supervised_criterion

__all__ = [
    "CHECKPOINT_FORMAT",
    "DATA_SOURCES",
    "RESUME_IGNORED",
    "Criterion",
    "DataBundle",
    "TeacherConfig",
    "Trainer",
    "autocast",
    "capture_rng_state",
    "evaluate",
    "fit",
    "load_checkpoint",
    "load_data",
    "load_model_from_checkpoint",
    "make_loaders",
    "maybe_compile",
    "read_summary",
    "restore_rng_state",
    "summarise",
    "supervised_criterion",
    "train_teacher",
]


# ------------------------------------------------------------------------------------ teacher


@dataclass(frozen=True, kw_only=True)
class TeacherConfig(RunOptions, RecipeOptions, DataOptions):
    """Everything that defines a teacher run: its own fields plus the shared data options,
    recipe overrides and run options (:mod:`bcpd_sim.vision.configs`)."""

    out: str = option("", "run directory (created; resumed if present)")
    arch: str = option("resnet56", "model name", choices=model_names)
    loss: str = option("ce", f"teacher loss: {', '.join(list_losses())}", choices=list_losses)
    mse_scale: float = option(1.0, "multiplier of the mse losses", range=(0.0, 1e6))
    seed: int = option(0, "training seed (init, data order)", range=(0, MAX_SEED))

    def validate(self) -> TeacherConfig:
        """Every check that needs no data: names, ranges, the loss, the recipe, the device."""
        if not self.out:
            raise ConfigError("out must name the run directory (--out DIR)")
        check_fields(self)
        teacher_loss(self.loss, mse_scale=self.mse_scale)
        self.make_recipe()
        resolve_device(self.device)
        return self


def train_teacher(
    config: TeacherConfig,
    *,
    resume: bool = True,
    on_epoch_end: Callable[[int, dict[str, float]], None] | None = None,
) -> dict[str, Any]:
    """Train one teacher (arch, loss, recipe, data, seed) into ``config.out``; return the summary.

    Under ``torchrun`` every process runs this; they train one model with DDP (see
    :mod:`bcpd_sim.vision.trainer`)."""
    from .. import distributed
    from .models import create_model

    config.validate()
    ctx, device = distributed.setup(config.device)
    recipe = config.make_recipe()
    data = load_for_recipe(recipe, **fields_of(config, DataOptions))
    torch.manual_seed(config.seed)
    model = create_model(config.arch, num_classes=data.num_classes)
    loss = teacher_loss(config.loss, mse_scale=config.mse_scale)
    record = asdict(config)
    record["loss_function"] = f"{loss.fn.__module__}.{loss.fn.__name__}"
    trainer = Trainer(
        config.out,
        model,
        data,
        recipe,
        criterion=supervised_criterion(loss),
        seed=config.seed,
        config=record,
        arch=config.arch,
        device=device,
        augment=config.augment,
        compile=config.compile,
        desc=f"{config.arch} {config.loss}",
        dist=ctx,
    )
    return trainer.fit(resume=resume, on_epoch_end=on_epoch_end)
