"""The ImageNet recipes and distillation settings of mdistiller (``configs/imagenet/r34_r18/*.yaml``
and ``configs/imagenet/r50_mv1/*.yaml``), used for students and for the CE / MSE teachers alike.

- ``imagenet``: SGD momentum 0.9, lr 0.2 at a global batch of 512 (whatever the number of
  processes: each of N processes takes 512 / N), weight decay 1e-4, 100 epochs, lr x0.1 at epochs
  30, 60 and 90, no warm-up; bf16 autocast and channels_last on GPU; a periodic checkpoint every
  10 epochs (mdistiller's ``SAVE_CHECKPOINT_FREQ``). torch.compile is off by default.
- ``tiny``: a CPU recipe for tests and smoke runs (2 epochs, batch 8, lr 0.05, no decay steps).

Distillation (the paper's two pairs):

- KD: CE 0.5 + KD 0.5 at temperature 1 (mdistiller ``KD.LOSS``, ``KD.TEMPERATURE``).
- DKD: CE 1.0, alpha 1.0, temperature 1, warm-up 1 epoch; beta 0.5 for ResNet-34 -> ResNet-18 and
  2.0 for ResNet-50 -> MobileNetV1 (mdistiller ``DKD.*``; alpha is its default 1.0).
"""

from __future__ import annotations

from typing import Any

from ..errors import ConfigError
from ..validation import check_choice
from ..vision.recipes import Recipe, get_recipe

IMAGENET_RECIPES: dict[str, Recipe] = {
    "imagenet": Recipe(
        name="imagenet",
        epochs=100,
        batch_size=512,
        lr=0.2,
        momentum=0.9,
        weight_decay=1e-4,
        milestones=(30, 60, 90),
        gamma=0.1,
        warmup_epochs=0,
        bf16=True,
        channels_last=True,
        compile=False,
        eval_batch_size=1024,
        val_size=0,
        checkpoint_every=10,
        low_lr=None,
    ),
    "tiny": Recipe(
        name="imagenet-tiny",
        epochs=2,
        batch_size=8,
        lr=0.05,
        weight_decay=1e-4,
        milestones=(),
        eval_batch_size=16,
        val_size=0,
        checkpoint_every=1,
        low_lr=None,
    ),
}

#: The paper's pairs (teacher, student) and mdistiller's DKD beta for each.
PAIRS: dict[tuple[str, str], dict[str, float]] = {
    ("resnet34", "resnet18"): {"beta": 0.5},
    ("resnet50", "mobilenetv1"): {"beta": 2.0},
}
METHOD_DEFAULTS: dict[str, dict[str, float]] = {
    "kd": {"ce_weight": 0.5, "kd_weight": 0.5, "temperature": 1.0},
    "dkd": {"ce_weight": 1.0, "alpha": 1.0, "temperature": 1.0, "warmup_epochs": 1.0},
}


def list_imagenet_recipes() -> list[str]:
    return list(IMAGENET_RECIPES)


def get_imagenet_recipe(name: str, **overrides: Any) -> Recipe:
    """The ImageNet recipe ``name`` with ``overrides`` (None ignored), validated."""
    return get_recipe(name, table=IMAGENET_RECIPES, **overrides)


def method_options(
    method: str, teacher_arch: str, student_arch: str, overrides: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Distiller options for ``method`` on ImageNet: mdistiller's settings, then ``overrides``.

    DKD's beta comes from the pair; for a pair outside :data:`PAIRS` it must be given.
    """
    check_choice("ImageNet distillation method", method, METHOD_DEFAULTS)
    options: dict[str, Any] = dict(METHOD_DEFAULTS[method])
    if method == "dkd":
        pair = PAIRS.get((teacher_arch, student_arch))
        if pair is not None:
            options.update(pair)
        elif "beta" not in (overrides or {}):
            known = ", ".join(f"{t}->{s}" for t, s in PAIRS)
            raise ConfigError(
                f"DKD beta for {teacher_arch}->{student_arch} is not published (known pairs: "
                f"{known}); set it with --option beta=VALUE"
            )
    options.update(overrides or {})
    return options
