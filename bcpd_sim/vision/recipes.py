"""Training recipes (optimiser, schedule, batch size, precision) and their optimiser/scheduler.

- ``standard``: the CIFAR-100 KD benchmark recipe of CRD (Tian et al., ICLR 2020; RepDistiller's
  ``train_teacher.py`` / ``train_student.py``): SGD momentum 0.9, weight decay 5e-4, batch 64,
  240 epochs, lr 0.05 (0.01 for MobileNetV2 / ShuffleNet: the models whose ``arch_cfg.lr_family``
  is ``"low"``), x0.1 at epochs 150, 180, 210.
  On CUDA it runs with bf16 autocast, channels_last and torch.compile with CUDA graphs
  (``reduce-overhead``), measured for this project on one H100 at ~2.8x eager fp32 at batch 64
  (resnet56: 10,552 vs 3,742 images/s); none of this changes the recipe's optimisation
  hyper-parameters. Pass ``compile=False`` to disable.
- ``fast``: for short GPU budgets: batch 512 with the lr scaled linearly (x8), 5 warm-up epochs,
  120 epochs with the milestones at the same fractions (x0.1 at 75, 90, 105), bf16 autocast,
  channels_last and torch.compile (on CUDA only).
- ``tiny``: a CPU recipe for tests and demos: 2 epochs, batch 32, no decay, small data limits.

The learning rate is set per iteration (linear warm-up, then step decay by epoch), so a resumed
run follows the same schedule.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

import torch

from ..errors import ConfigError
from ..validation import check_choice, check_int, check_positive


@dataclass(frozen=True)
class Recipe:
    """Everything about how a model is optimised, independent of the model and loss."""

    name: str
    epochs: int
    batch_size: int
    lr: float
    momentum: float = 0.9
    weight_decay: float = 5e-4
    nesterov: bool = False
    milestones: tuple[int, ...] = (150, 180, 210)
    gamma: float = 0.1
    warmup_epochs: int = 0
    bf16: bool = False
    channels_last: bool = False
    compile: bool = False
    compile_mode: str | None = None
    augment: bool = True
    eval_batch_size: int = 1024
    val_size: int = 5000
    checkpoint_every: int = 40
    train_limit: int | None = None
    test_limit: int | None = None
    low_lr: float | None = 0.01

    def lr_for(self, arch: Any) -> float:
        """The base lr for ``arch`` (a model from ``create_model``, a registered name or an
        ``ArchConfig``): ``low_lr`` when its ``lr_family`` is ``"low"`` (MobileNetV2, ShuffleNet),
        else ``lr``. Unknown names and plain modules get ``lr``."""
        from .models import settings_of

        cfg = settings_of(arch)
        if cfg is not None and cfg.lr_family == "low" and self.low_lr is not None:
            return self.low_lr
        return self.lr

    def to_dict(self) -> dict:
        d = asdict(self)
        d["milestones"] = list(self.milestones)
        return d


RECIPES: dict[str, Recipe] = {
    "standard": Recipe(
        name="standard",
        epochs=240,
        batch_size=64,
        lr=0.05,
        low_lr=0.01,
        bf16=True,
        channels_last=True,
        compile=True,
        compile_mode="reduce-overhead",
    ),
    "fast": Recipe(
        name="fast",
        epochs=120,
        batch_size=512,
        lr=0.4,
        low_lr=0.08,
        milestones=(75, 90, 105),
        warmup_epochs=5,
        bf16=True,
        channels_last=True,
        compile=True,
        eval_batch_size=2048,
        checkpoint_every=20,
    ),
    "tiny": Recipe(
        name="tiny",
        epochs=2,
        batch_size=32,
        lr=0.05,
        low_lr=0.01,
        milestones=(),
        eval_batch_size=256,
        val_size=100,
        checkpoint_every=1,
        train_limit=1000,
        test_limit=200,
    ),
}


def list_recipes() -> list[str]:
    return list(RECIPES)


def get_recipe(name: str, *, table: dict[str, Recipe] | None = None, **overrides) -> Recipe:
    """The named recipe with ``overrides`` (None values ignored) applied and validated.

    Overriding ``epochs`` without ``milestones`` rescales the milestones to the same fractions of
    the schedule (150/180/210 of 240 become 62/75/87 of 100). ``table``: another set of named
    recipes (default: the CIFAR ones above; the ImageNet ones live in ``bcpd_sim.imagenet``).
    """
    table = RECIPES if table is None else table
    check_choice("recipe", name, table)
    base = table[name]
    overrides = {k: v for k, v in overrides.items() if v is not None}
    unknown = set(overrides) - set(base.__dataclass_fields__)
    if unknown:
        raise ConfigError(f"unknown recipe fields {sorted(unknown)}")
    if "epochs" in overrides and "milestones" not in overrides:
        e = check_int("epochs", overrides["epochs"], minimum=1)
        overrides["milestones"] = tuple(int(m * e / base.epochs) for m in base.milestones)
    recipe = replace(base, **overrides)
    check_int("epochs", recipe.epochs, minimum=1)
    check_int("batch_size", recipe.batch_size, minimum=1)
    check_positive("lr", recipe.lr)
    check_positive("weight_decay", recipe.weight_decay, allow_zero=True)
    check_int("warmup_epochs", recipe.warmup_epochs, minimum=0)
    check_int("val_size", recipe.val_size, minimum=0)
    check_int("checkpoint_every", recipe.checkpoint_every, minimum=0)
    return replace(recipe, milestones=tuple(int(m) for m in recipe.milestones))


class StepSchedule:
    """lr multiplier at optimiser step ``t``: linear warm-up, then ``gamma`` per passed milestone.

    A plain callable object (not a lambda) so LambdaLR can save and restore it.
    """

    def __init__(self, steps_per_epoch: int, warmup_epochs: int, milestones, gamma: float):
        self.steps_per_epoch = int(steps_per_epoch)
        self.warmup_steps = int(warmup_epochs) * self.steps_per_epoch
        self.milestones = tuple(int(m) for m in milestones)
        self.gamma = float(gamma)

    def __call__(self, step: int) -> float:
        if step < self.warmup_steps:
            return (step + 1) / self.warmup_steps
        epoch = step // self.steps_per_epoch
        return self.gamma ** sum(epoch >= m for m in self.milestones)


def make_optimizer(params, recipe: Recipe, arch: Any = None) -> torch.optim.SGD:
    """SGD with the recipe's momentum, weight decay and base lr (``lr_for(arch)``; ``arch`` is
    the model, its name or its ``ArchConfig``).

    ``params`` is an iterable of tensors or of parameter-group dicts. When every parameter lives
    on CUDA the fused SGD kernel is used (same update, fewer kernel launches).
    """
    params = list(params)
    tensors = [t for g in params for t in (g["params"] if isinstance(g, dict) else [g])]
    kwargs = dict(
        lr=recipe.lr_for(arch),
        momentum=recipe.momentum,
        weight_decay=recipe.weight_decay,
        nesterov=recipe.nesterov,
    )
    if tensors and all(t.is_cuda for t in tensors):
        try:
            return torch.optim.SGD(params, fused=True, **kwargs)
        except (TypeError, RuntimeError):  # pragma: no cover - older torch
            pass
    return torch.optim.SGD(params, **kwargs)


def make_scheduler(
    optimizer: torch.optim.Optimizer, recipe: Recipe, steps_per_epoch: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """A per-iteration scheduler: call ``scheduler.step()`` after every ``optimizer.step()``."""
    schedule = StepSchedule(steps_per_epoch, recipe.warmup_epochs, recipe.milestones, recipe.gamma)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
