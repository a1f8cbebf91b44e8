"""A timm-style model registry: ``@register_model``, ``create_model``, ``list_models``."""

from __future__ import annotations

import fnmatch
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

from torch import nn

from ...errors import ConfigError
from ...validation import check_int
from .base import CifarModel

_REGISTRY: dict[str, Callable[..., CifarModel]] = {}

# Names used by the CRD / RepDistiller code base, accepted by create_model but not listed.
_ALIASES = {
    "mobile_half": "mobilenetv2",
    "MobileNetV2": "mobilenetv2",
    "ShuffleV1": "shufflenetv1",
    "ShuffleV2": "shufflenetv2",
    "ResNet50": "resnet50",
}

F = TypeVar("F", bound=Callable[..., CifarModel])


def register_model(fn: F | None = None, *, name: str | None = None) -> F | Callable[[F], F]:
    """Register a factory ``fn(num_classes, **kwargs) -> CifarModel`` under ``name`` (default:
    the function's name). Usable as ``@register_model`` or ``@register_model(name="...")``."""

    def decorate(f: F) -> F:
        key = name or f.__name__
        if key in _REGISTRY or key in _ALIASES:
            raise ValueError(f"model {key!r} is already registered")
        _REGISTRY[key] = f
        return f

    return decorate(fn) if fn is not None else decorate


def list_models(pattern: str | None = None) -> list[str]:
    """Registered model names, sorted; ``pattern`` filters with shell wildcards (``"resnet*"``)."""
    names = sorted(_REGISTRY)
    if pattern is not None:
        names = [n for n in names if fnmatch.fnmatchcase(n, pattern)]
    return names


def create_model(name: str, num_classes: int = 100, **kwargs: Any) -> CifarModel:
    """Build the registered model ``name`` with a ``num_classes``-way classifier.

    Raises ``ConfigError`` for an unknown name (listing the valid ones) or ``num_classes < 2``.
    Extra keyword arguments go to the architecture (e.g. ``drop_rate`` for WRNs).
    """
    if not isinstance(name, str) or _ALIASES.get(name, name) not in _REGISTRY:
        raise ConfigError(f"unknown model {name!r}; valid: {', '.join(list_models())}")
    num_classes = check_int("num_classes", num_classes, minimum=2)
    factory = _REGISTRY[_ALIASES.get(name, name)]
    try:
        inspect.signature(factory).bind(num_classes=num_classes, **kwargs)
    except TypeError as exc:
        raise ConfigError(f"bad keyword arguments for model {name!r}: {exc}") from None
    return factory(num_classes=num_classes, **kwargs)


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (all, or only those with ``requires_grad``)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
