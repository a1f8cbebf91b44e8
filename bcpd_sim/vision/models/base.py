"""The interface every CIFAR model in the zoo shares: logits, optional features, channel metadata."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import NamedTuple

import torch
from torch import nn


class Features(NamedTuple):
    """Intermediate activations of one forward pass, for feature-based distillation.

    A ``NamedTuple`` (not a dataclass) so that ``torch.compile`` traces it without graph breaks.

    - ``stem``: output of the input stem (``f0`` in the CRD/RepDistiller code).
    - ``blocks``: one map per stage, in order (``f1 .. fK``); ``model.feature_channels[i]`` is
      ``blocks[i].shape[1]`` and ``model.feature_strides[i]`` its downsampling factor.
    - ``preact_blocks``: the same stages before their final ReLU (``preact=True`` in RepDistiller).
      Where a stage output is not rectified (WRN, MobileNetV2) see the model's docstring.
    - ``embedding``: the pooled penultimate vector fed to the classifier, shape
      ``(N, model.embedding_dim)``.
    """

    stem: torch.Tensor
    blocks: list[torch.Tensor]
    preact_blocks: list[torch.Tensor]
    embedding: torch.Tensor

    def as_list(self, preact: bool = False) -> list[torch.Tensor]:
        """RepDistiller's ``feat`` list: ``[stem, *blocks, embedding]`` (preact blocks if asked)."""
        return [self.stem, *(self.preact_blocks if preact else self.blocks), self.embedding]


class CifarModel(nn.Module):
    """Base class: ``model(x)`` gives logits; ``model(x, return_features=True)`` gives
    ``(logits, Features)``.

    Subclasses set ``stem_channels``, ``feature_channels``, ``feature_strides``, ``embedding_dim``
    and ``num_classes`` in ``__init__``, own the classifier as ``self.fc`` (an ``nn.Linear``) and
    implement ``_forward(x) -> (logits, Features)`` without data-dependent Python control flow.
    """

    stem_channels: int
    feature_channels: tuple[int, ...]
    feature_strides: tuple[int, ...]
    embedding_dim: int
    num_classes: int
    fc: nn.Linear

    def forward(
        self, x: torch.Tensor, return_features: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, Features]:
        """Logits of shape ``(N, num_classes)``; with ``return_features``, ``(logits, Features)``."""
        logits, features = self._forward(x)
        if return_features:
            return logits, features
        return logits

    def _forward(self, x: torch.Tensor) -> tuple[torch.Tensor, Features]:  # pragma: no cover
        raise NotImplementedError

    def get_classifier(self) -> nn.Linear:
        """The final linear layer (embedding -> logits), e.g. for SimKD-style classifier reuse."""
        return self.fc


def init_weights(model: nn.Module, *, linear_std: float | None = None) -> None:
    """Reference initialisation: He-normal (fan-out) convolutions, BN weight 1 and bias 0; linear
    layers N(0, linear_std^2) with zero bias when ``linear_std`` is given, else PyTorch's default."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear) and linear_std is not None:
            nn.init.normal_(m.weight, 0.0, linear_std)
            nn.init.zeros_(m.bias)


def stacked_stages(
    in_channels: int,
    widths: tuple[int, ...],
    blocks_per_stage: int,
    make_block: Callable[[int, int, int], nn.Module],
) -> list[list[nn.Module]]:
    """The blocks of consecutive stages of ``widths`` channels, ``blocks_per_stage`` each, built
    in order by ``make_block(in_channels, out_channels, stride)``; the first block of every stage
    but the first has stride 2 (the CIFAR ResNet / WRN layout)."""
    stages = []
    for i, width in enumerate(widths):
        stride = 1 if i == 0 else 2
        blocks = []
        for j in range(blocks_per_stage):
            blocks.append(make_block(in_channels, width, stride if j == 0 else 1))
            in_channels = width
        stages.append(blocks)
    return stages


def staged_forward(
    model: CifarModel, stem: torch.Tensor, stages: Iterable[nn.Module]
) -> tuple[torch.Tensor, Features]:
    """Logits and features of a net whose stages each return ``(out, preact)`` and whose
    embedding is the pooled output of the last stage (ResNet, ShuffleNetV1)."""
    x, blocks, preacts = stem, [], []
    for stage in stages:
        x, preact = stage(x)
        blocks.append(x)
        preacts.append(preact)
    embedding = global_pool(x)
    return model.fc(embedding), Features(stem, blocks, preacts, embedding)


def global_pool(x: torch.Tensor) -> torch.Tensor:
    """Global average pooling to ``(N, C)``; same as the reference fixed-size AvgPool on 32x32."""
    return x.mean(dim=(2, 3))
