"""The distiller interface and the registry of distillation methods.

A distiller holds only the method's own trainable parts (connectors, if any), never the teacher or
the student: the trainer runs both models and hands their outputs to :meth:`Distiller.forward`,
which returns the total training loss and its named parts. Losses are computed in float32 whatever
dtype the forwards ran in (bf16 autocast on GPU), with autocast disabled inside the loss: the
similarity and distance matrices of SP, RKD and PKT would otherwise be multiplied in bf16 (RKD's
``|a|^2 + |b|^2 - 2ab`` distances cancel badly there). No loss synchronises with the host.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from types import SimpleNamespace
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from ...errors import ConfigError
from ...validation import check_choice, check_positive

_REGISTRY: dict[str, type[Distiller]] = {}


def register(name: str) -> Callable[[type[Distiller]], type[Distiller]]:
    """Class decorator: make a :class:`Distiller` subclass available as ``name``."""

    def deco(cls: type[Distiller]) -> type[Distiller]:
        if name in _REGISTRY:
            raise RuntimeError(f"distillation method {name!r} registered twice")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return deco


def list_methods() -> list[str]:
    """Names of the registered distillation methods, sorted."""
    return sorted(_REGISTRY)


def method_class(name: str) -> type[Distiller]:
    """The class registered as ``name`` (ConfigError listing the valid names otherwise)."""
    check_choice("distillation method", name, list_methods())
    return _REGISTRY[name]


def create_distiller(name: str, teacher: nn.Module, student: nn.Module, **kwargs: Any) -> Distiller:
    """Build the distiller ``name`` for this teacher/student pair.

    ``kwargs`` override the method's hyper-parameters (see each class's ``DEFAULTS``); an unknown
    key is a ConfigError. Methods with trainable connectors size them from the two models.
    """
    return method_class(name)(teacher, student, **kwargs)


def as_float(t: torch.Tensor) -> torch.Tensor:
    """Half/bf16 (autocast outputs) up to float32; float32 and float64 unchanged."""
    return t.float() if t.dtype != torch.float64 else t


class Distiller(nn.Module):
    """Base class: a distillation loss, with optional trainable connectors.

    Subclasses set ``DEFAULTS`` (hyper-parameter name -> default), ``needs_features`` (whether the
    trainer must ask both models for their intermediate features) and implement
    :meth:`distill_loss`. The total loss is ``ce_weight * CE + distill terms``.
    """

    name: ClassVar[str] = "base"
    needs_features: ClassVar[bool] = False
    #: Whether :meth:`distill_loss` takes ``index=`` (dataset rows of the batch, e.g. CRD's bank).
    needs_index: ClassVar[bool] = False
    DEFAULTS: ClassVar[dict[str, float]] = {"ce_weight": 1.0}
    #: Hyper-parameters that must be > 0 (the others must be >= 0).
    POSITIVE: ClassVar[frozenset[str]] = frozenset({"temperature", "p"})

    def __init__(self, teacher: nn.Module, student: nn.Module, **kwargs: Any) -> None:
        super().__init__()
        self.hparams: dict[str, float] = self.check_options(kwargs)

    @classmethod
    def check_options(cls, options: dict[str, Any]) -> dict[str, float]:
        """The hyper-parameters with ``options`` applied: ConfigError for an unknown key, a
        non-number, a negative value, or zero where zero is meaningless (``POSITIVE``: the
        temperature, AT's power). Runs at the config boundary too, before any work."""
        if not isinstance(options, dict):
            raise ConfigError("method_options must be a mapping of option name to value")
        unknown = sorted(set(options) - set(cls.DEFAULTS) - set(cls.extra_keys()))
        if unknown:
            raise ConfigError(
                f"unknown option(s) {', '.join(unknown)} for distillation method {cls.name!r}; "
                f"valid: {', '.join(sorted(cls.DEFAULTS) + sorted(cls.extra_keys()))}"
            )
        return {
            key: check_positive(
                f"{cls.name}.{key}", options.get(key, default), allow_zero=key not in cls.POSITIVE
            )
            for key, default in cls.DEFAULTS.items()
        }

    @classmethod
    def extra_keys(cls) -> Sequence[str]:
        """Non-numeric options a subclass accepts besides ``DEFAULTS`` (e.g. teacher_arch)."""
        return ()

    def extra_parameters(self) -> list[nn.Parameter]:
        """Trainable parameters of the method itself (connectors); the trainer optimises them."""
        return [p for p in self.parameters() if p.requires_grad]

    def forward(
        self,
        student_logits: torch.Tensor,
        teacher_logits: torch.Tensor,
        targets: torch.Tensor,
        student_features: Any = None,
        teacher_features: Any = None,
        epoch: int = 0,
        index: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Return ``(total_loss, parts)``; ``epoch`` is the 0-based training epoch, ``index`` the
        batch's dataset rows (used by methods with ``needs_index``).

        Runs with autocast disabled, so every term is computed in (at least) float32."""
        with torch.autocast(student_logits.device.type, enabled=False):
            return self._total(
                student_logits,
                teacher_logits,
                targets,
                student_features,
                teacher_features,
                epoch,
                index,
            )

    def _total(
        self,
        student_logits,
        teacher_logits,
        targets,
        student_features,
        teacher_features,
        epoch,
        index=None,
    ):
        s = as_float(student_logits)
        t = as_float(teacher_logits).detach()
        parts: dict[str, torch.Tensor] = {}
        total = s.new_zeros(())
        if self.hparams["ce_weight"] > 0:
            parts["ce"] = F.cross_entropy(s, targets)
            total = total + self.hparams["ce_weight"] * parts["ce"]
        more = {"index": index} if self.needs_index else {}
        extra = self.distill_loss(s, t, targets, student_features, teacher_features, epoch, **more)
        for key, (weight, value) in extra.items():
            parts[key] = value
            total = total + weight * value
        return total, parts

    def distill_loss(
        self,
        student_logits: torch.Tensor,
        teacher_logits: torch.Tensor,
        targets: torch.Tensor,
        student_features: Any,
        teacher_features: Any,
        epoch: int,
    ) -> dict[str, tuple[float, torch.Tensor]]:
        """Named distillation terms as ``name -> (weight, unweighted value)``."""
        raise NotImplementedError


def probe_features(model: nn.Module, image_shape: tuple[int, int, int] = (3, 32, 32)) -> Any:
    """Run ``model`` once on a zero batch of two images and return its features (shapes only).

    The model's train/eval mode and its BatchNorm statistics are left untouched.
    """
    was_training = model.training
    try:
        param = next(iter(model.parameters()))
        device, dtype = param.device, param.dtype
    except StopIteration:
        device, dtype = torch.device("cpu"), torch.float32
    model.eval()
    try:
        with torch.no_grad():
            _, feats = model(
                torch.zeros(2, *image_shape, device=device, dtype=dtype), return_features=True
            )
    finally:
        model.train(was_training)
    return feats


def feature_shapes(
    model: nn.Module, image_shape: tuple[int, int, int] = (3, 32, 32)
) -> SimpleNamespace:
    """Shapes (without the batch axis) of ``model``'s features: ``blocks`` (stage outputs),
    ``embedding``, and ``maps`` (the feature maps of ``as_list()``: stem, then the stages)."""
    feats = probe_features(model, image_shape)
    blocks = [tuple(b.shape[1:]) for b in feats.blocks]
    return SimpleNamespace(
        blocks=blocks,
        embedding=tuple(feats.embedding.shape[1:]),
        maps=[tuple(feats.stem.shape[1:]), *blocks],
    )


def pair_blocks(student_blocks: Sequence[torch.Tensor], teacher_blocks: Sequence[torch.Tensor]):
    """Pair stage outputs from the last stage backwards (the nets may differ in stage count)."""
    n = min(len(student_blocks), len(teacher_blocks))
    return list(
        zip(student_blocks[len(student_blocks) - n :], teacher_blocks[len(teacher_blocks) - n :])
    )


def match_spatial(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Average-pool the larger of two feature maps to the smaller one's height and width."""
    ha, wa = a.shape[-2:]
    hb, wb = b.shape[-2:]
    if (ha, wa) == (hb, wb):
        return a, b
    if ha * wa > hb * wb:
        return F.adaptive_avg_pool2d(a, (hb, wb)), b
    return a, F.adaptive_avg_pool2d(b, (ha, wa))
