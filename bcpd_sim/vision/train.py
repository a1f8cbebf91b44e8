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
from ..validation import check_choice, check_int
from .bundle import DATA_SOURCES, DataBundle, load_data, make_loaders
from .evaluation import autocast, evaluate
from .losses import list_losses, teacher_loss
from .recipes import Recipe, get_recipe, list_recipes
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


@dataclass
class TeacherConfig:
    """Everything that defines a teacher run (the CLI's options)."""

    out: str
    arch: str = "resnet56"
    loss: str = "ce"
    mse_scale: float = 1.0
    recipe: str = "standard"
    data: str = "cifar100"
    data_dir: str | None = None
    download: bool = False
    synthetic_preset: str = "easy"
    num_classes: int | None = None
    seed: int = 0
    data_seed: int = 0
    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    val_size: int | None = None
    train_limit: int | None = None
    test_limit: int | None = None
    checkpoint_every: int | None = None
    augment: bool | None = None
    compile: bool | None = None
    device: str = "auto"

    def validate(self) -> TeacherConfig:
        """Cheap checks that run before any data is loaded."""
        from .models import list_models
        from .synthetic import list_presets

        check_choice("arch", self.arch, list_models())
        check_choice("loss", self.loss, list_losses())
        check_choice("recipe", self.recipe, list_recipes())
        check_choice("data", self.data, DATA_SOURCES)
        check_choice("synthetic preset", self.synthetic_preset, list_presets())
        check_int("seed", self.seed, minimum=0)
        check_int("data_seed", self.data_seed, minimum=0)
        teacher_loss(self.loss, mse_scale=self.mse_scale)
        self.make_recipe()
        resolve_device(self.device)
        return self

    def make_recipe(self) -> Recipe:
        return get_recipe(
            self.recipe,
            epochs=self.epochs,
            batch_size=self.batch_size,
            lr=self.lr,
            val_size=self.val_size,
            train_limit=self.train_limit,
            test_limit=self.test_limit,
            checkpoint_every=self.checkpoint_every,
        )


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
    data = load_data(
        config.data,
        data_dir=config.data_dir,
        download=config.download,
        synthetic_preset=config.synthetic_preset,
        num_classes=config.num_classes,
        val_size=recipe.val_size,
        train_limit=recipe.train_limit,
        test_limit=recipe.test_limit,
        data_seed=config.data_seed,
    )
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
