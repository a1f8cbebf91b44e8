"""A timm-style model registry: ``@register_model``, ``create_model``, ``list_models``.

Each architecture registers its settings with its factory (family, learning-rate family, DKD's
beta when it is the teacher), and :func:`create_model` attaches them to the model it builds as
``model.arch_cfg`` (an :class:`ArchConfig`, as timm attaches ``pretrained_cfg``), so recipes and
distillation methods read them from the model instead of keeping lists of names.
"""

from __future__ import annotations

import fnmatch
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Literal, TypeVar

from torch import nn

from ...errors import ConfigError
from ...validation import check_int
from .base import CifarModel

#: DKD's beta unless the teacher's architecture sets another: Zhao et al., "Decoupled Knowledge
#: Distillation" (CVPR 2022), CIFAR-100 settings; mdistiller's configs/cifar100/dkd/*.yaml.
DEFAULT_DKD_BETA = 8.0
LR_FAMILIES = ("standard", "low")


@dataclass(frozen=True)
class ArchConfig:
    """An architecture's name and settings, attached to every model as ``model.arch_cfg``.

    - ``family``: the model file it comes from (``resnet``, ``wrn``, ``vgg``, ...).
    - ``lr_family``: ``"low"`` for the architectures the CIFAR KD benchmark trains at lr 0.01
      instead of 0.05 (MobileNetV2, ShuffleNet: RepDistiller's ``train_teacher.py`` and
      ``train_student.py``), else ``"standard"``; recipes map it to a learning rate.
    - ``dkd_beta``: DKD's beta when this model is the teacher (2 for resnet56 / resnet110, 6 for
      wrn_40_2 / vgg13, else 8: mdistiller's ``configs/cifar100/dkd/*.yaml``).
    - ``num_classes`` and ``kwargs``: how this instance was built (set by :func:`create_model`).
    """

    name: str
    family: str
    lr_family: Literal["standard", "low"] = "standard"
    dkd_beta: float = DEFAULT_DKD_BETA
    num_classes: int | None = None
    kwargs: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "family": self.family,
            "lr_family": self.lr_family,
            "dkd_beta": self.dkd_beta,
            "num_classes": self.num_classes,
            "kwargs": dict(self.kwargs),
        }


_REGISTRY: dict[str, Callable[..., CifarModel]] = {}
_SETTINGS: dict[str, ArchConfig] = {}

# Names used by the CRD / RepDistiller code base, accepted by create_model but not listed.
_ALIASES = {
    "mobile_half": "mobilenetv2",
    "MobileNetV2": "mobilenetv2",
    "ShuffleV1": "shufflenetv1",
    "ShuffleV2": "shufflenetv2",
    "ResNet50": "resnet50",
}

F = TypeVar("F", bound=Callable[..., CifarModel])


def register_model(
    fn: F | None = None,
    *,
    name: str | None = None,
    family: str | None = None,
    lr_family: str = "standard",
    dkd_beta: float = DEFAULT_DKD_BETA,
) -> F | Callable[[F], F]:
    """Register a factory ``fn(num_classes, **kwargs) -> CifarModel`` under ``name`` (default:
    the function's name) with its settings (see :class:`ArchConfig`; ``family`` defaults to the
    factory's module name). Usable as ``@register_model`` or ``@register_model(lr_family="low")``."""
    if lr_family not in LR_FAMILIES:
        raise ValueError(f"lr_family must be one of {LR_FAMILIES}, got {lr_family!r}")

    def decorate(f: F) -> F:
        key = name or f.__name__
        if key in _REGISTRY or key in _ALIASES:
            raise ValueError(f"model {key!r} is already registered")
        _REGISTRY[key] = f
        _SETTINGS[key] = ArchConfig(
            name=key,
            family=family or f.__module__.rsplit(".", 1)[-1],
            lr_family=lr_family,  # type: ignore[arg-type]
            dkd_beta=float(dkd_beta),
        )
        return f

    return decorate(fn) if fn is not None else decorate


def list_models(pattern: str | None = None) -> list[str]:
    """Registered model names, sorted; ``pattern`` filters with shell wildcards (``"resnet*"``)."""
    names = sorted(_REGISTRY)
    if pattern is not None:
        names = [n for n in names if fnmatch.fnmatchcase(n, pattern)]
    return names


def _canonical(name: Any) -> str:
    if not isinstance(name, str) or _ALIASES.get(name, name) not in _REGISTRY:
        raise ConfigError(f"unknown model {name!r}; valid: {', '.join(list_models())}")
    return _ALIASES.get(name, name)


def arch_config(name: str) -> ArchConfig:
    """The registered settings of architecture ``name`` (aliases accepted; ConfigError if
    unknown), without building the model."""
    return _SETTINGS[_canonical(name)]


def create_model(name: str, num_classes: int = 100, **kwargs: Any) -> CifarModel:
    """Build the registered model ``name`` with a ``num_classes``-way classifier.

    The model carries its settings as ``model.arch_cfg`` (:class:`ArchConfig`). Raises
    ``ConfigError`` for an unknown name (listing the valid ones) or ``num_classes < 2``.
    Extra keyword arguments go to the architecture (e.g. ``drop_rate`` for WRNs).
    """
    key = _canonical(name)
    num_classes = check_int("num_classes", num_classes, minimum=2)
    factory = _REGISTRY[key]
    try:
        inspect.signature(factory).bind(num_classes=num_classes, **kwargs)
    except TypeError as exc:
        raise ConfigError(f"bad keyword arguments for model {name!r}: {exc}") from None
    model = factory(num_classes=num_classes, **kwargs)
    model.arch_cfg = replace(_SETTINGS[key], num_classes=num_classes, kwargs=dict(kwargs))
    return model


def settings_of(arch: Any) -> ArchConfig | None:
    """The :class:`ArchConfig` of a model built by :func:`create_model` (also through a
    ``torch.compile`` wrapper), of a registered name, or of an ArchConfig; None if unknown."""
    if isinstance(arch, ArchConfig):
        return arch
    if isinstance(arch, str):
        key = _ALIASES.get(arch, arch)
        return _SETTINGS.get(key)
    cfg = getattr(arch, "arch_cfg", None)
    if cfg is None:
        cfg = getattr(getattr(arch, "_orig_mod", None), "arch_cfg", None)
    return cfg if isinstance(cfg, ArchConfig) else None


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (all, or only those with ``requires_grad``)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
