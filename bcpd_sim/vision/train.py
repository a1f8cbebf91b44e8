"""The teacher application behind ``bcpd-sim cifar100 teacher``: its config and its run.

:class:`TeacherConfig` is everything that defines a teacher run; :func:`train_teacher` runs it as
a :class:`TeacherRun` (load the data, build the model and the named loss, train them with the
shared :class:`~bcpd_sim.vision.trainer.Trainer`), whose steps the ImageNet teacher overrides. The
library pieces it uses live in their own modules (re-exported here for older imports):
:mod:`~bcpd_sim.vision.bundle` (data and loaders), :mod:`~bcpd_sim.vision.evaluation`,
:mod:`~bcpd_sim.vision.trainer` (the loop) and :mod:`~bcpd_sim.vision.runs` (checkpoints and
summaries).

Run directory: ``config.json`` (config, recipe, seed, effective device settings, versions),
``metrics.csv``, ``summary.json`` (last-epoch and best-epoch test accuracy, labelled),
``checkpoints/``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
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
from .recipes import Recipe
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
from .trainer import ConfigRun, Criterion, Trainer, fit, maybe_compile, supervised_criterion

__all__ = [
    "CHECKPOINT_FORMAT",
    "DATA_SOURCES",
    "RESUME_IGNORED",
    "Criterion",
    "DataBundle",
    "TeacherConfig",
    "TeacherOptions",
    "TeacherRun",
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
class TeacherOptions:
    """A teacher run's own fields and their checks; a config adds data, recipe and run options."""

    out: str = option("", "run directory (created; resumed if present)")
    arch: str = option("resnet56", "model name", choices=model_names)
    loss: str = option("ce", f"teacher loss: {', '.join(list_losses())}", choices=list_losses)
    mse_scale: float = option(1.0, "multiplier of the mse losses", range=(0.0, 1e6))
    seed: int = option(0, "training seed (init, data order)", range=(0, MAX_SEED))

    def validate(self) -> Any:
        """Every check that needs no data: names, ranges, the loss, the recipe."""
        if not self.out:
            raise ConfigError("out must name the run directory (--out DIR)")
        check_fields(self)
        teacher_loss(self.loss, mse_scale=self.mse_scale)
        self.make_recipe()  # the config's recipe options
        return self


@dataclass(frozen=True, kw_only=True)
class TeacherConfig(TeacherOptions, RunOptions, RecipeOptions, DataOptions):
    """Everything that defines a teacher run: its own fields plus the shared data options,
    recipe overrides and run options (:mod:`bcpd_sim.vision.configs`)."""

    def validate(self) -> TeacherConfig:
        """Every check that needs no data: names, ranges, the loss, the recipe, the device."""
        super().validate()
        resolve_device(self.device)
        return self


class TeacherRun(ConfigRun):
    """A teacher run: data, model and the named loss, trained by ``trainer_class``; the ImageNet
    run overrides :meth:`load_data` and the :class:`~bcpd_sim.vision.trainer.ConfigRun` steps."""

    def load_data(self, recipe: Recipe) -> Any:
        """The run's data bundle."""
        return load_for_recipe(recipe, **fields_of(self.config, DataOptions))

    def train(self, **fit_kwargs: Any) -> dict[str, Any]:
        """Load the data, build the model and the loss, fit; the summary."""
        config = self.config
        recipe = config.make_recipe()
        data = self.load_data(recipe)
        torch.manual_seed(config.seed)
        model = self.create_model(config.arch, data.num_classes)
        loss = teacher_loss(config.loss, mse_scale=config.mse_scale)
        record = self.record()
        record["loss_function"] = f"{loss.fn.__module__}.{loss.fn.__name__}"
        trainer = self.make_trainer(
            model,
            data,
            recipe,
            criterion=supervised_criterion(loss),
            config=record,
            arch=config.arch,
            desc=f"{config.arch} {config.loss}",
        )
        return trainer.fit(**fit_kwargs)


def train_teacher(
    config: TeacherConfig,
    *,
    resume: bool = True,
    on_epoch_end: Callable[[int, dict[str, float]], None] | None = None,
) -> dict[str, Any]:
    """Train one teacher (arch, loss, recipe, data, seed) into ``config.out``; return the summary.

    Under ``torchrun`` every process runs this; they train one model with DDP (see
    :mod:`bcpd_sim.vision.trainer`)."""
    return TeacherRun(config).run(resume=resume, on_epoch_end=on_epoch_end)
