"""CIFAR ResNets with basic blocks (He et al. 2016), as in the CRD / RepDistiller benchmark.

Depth ``6n + 2``: a 3x3 stem, then three stages of ``n`` basic blocks at strides 1, 2, 2. The
standard models have widths 16 / 16, 32, 64; the ``x4`` models 32 / 64, 128, 256.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ...errors import ConfigError
from .base import CifarModel, Features, init_weights, stacked_stages, staged_forward
from .registry import register_model


class BasicBlock(nn.Module):
    """conv3x3-BN-ReLU-conv3x3-BN plus shortcut (1x1 conv + BN when the shape changes), ReLU.

    Returns ``(out, preact)`` where ``preact`` is the sum before the final ReLU.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        if stride != 1 or in_channels != out_channels:
            self.shortcut: nn.Module = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )
        else:
            self.shortcut = nn.Identity()

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = F.relu(self.bn1(self.conv1(x)))
        preact = self.bn2(self.conv2(out)) + self.shortcut(x)
        return F.relu(preact), preact


class Stage(nn.ModuleList):
    """A sequence of blocks that each return ``(out, preact)``; returns the last pair."""

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # type: ignore[override]
        preact = x
        for block in self:
            x, preact = block(x)
        return x, preact


class CifarResNet(CifarModel):
    """CIFAR ResNet of depth ``6n + 2``; ``widths`` = (stem, stage1, stage2, stage3)."""

    def __init__(
        self,
        depth: int,
        widths: tuple[int, int, int, int] = (16, 16, 32, 64),
        num_classes: int = 100,
    ) -> None:
        super().__init__()
        if depth < 8 or (depth - 2) % 6 != 0:
            raise ConfigError(f"depth must be 6n + 2 with n >= 1 (8, 14, 20, ...), got {depth}")
        n = (depth - 2) // 6
        self.conv1 = nn.Conv2d(3, widths[0], 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        stages = stacked_stages(widths[0], widths[1:], n, BasicBlock)
        self.layer1, self.layer2, self.layer3 = (Stage(blocks) for blocks in stages)
        self.fc = nn.Linear(widths[3], num_classes)
        self.depth = depth
        self.num_classes = num_classes
        self.stem_channels = widths[0]
        self.feature_channels = tuple(widths[1:])
        self.feature_strides = (1, 2, 4)
        self.embedding_dim = widths[3]
        init_weights(self)

    def _forward(self, x: torch.Tensor) -> tuple[torch.Tensor, Features]:
        stem = F.relu(self.bn1(self.conv1(x)))
        return staged_forward(self, stem, (self.layer1, self.layer2, self.layer3))


def _make(depth: int, widths: tuple[int, int, int, int], num_classes: int) -> CifarResNet:
    return CifarResNet(depth, widths, num_classes)


_W1 = (16, 16, 32, 64)
_W4 = (32, 64, 128, 256)


@register_model
def resnet8(num_classes: int = 100) -> CifarResNet:
    """CIFAR ResNet-8 (1 block per stage, widths 16/32/64)."""
    return _make(8, _W1, num_classes)


@register_model
def resnet14(num_classes: int = 100) -> CifarResNet:
    """CIFAR ResNet-14 (2 blocks per stage, widths 16/32/64)."""
    return _make(14, _W1, num_classes)


@register_model
def resnet20(num_classes: int = 100) -> CifarResNet:
    """CIFAR ResNet-20 (3 blocks per stage, widths 16/32/64)."""
    return _make(20, _W1, num_classes)


@register_model
def resnet32(num_classes: int = 100) -> CifarResNet:
    """CIFAR ResNet-32 (5 blocks per stage, widths 16/32/64)."""
    return _make(32, _W1, num_classes)


@register_model
def resnet44(num_classes: int = 100) -> CifarResNet:
    """CIFAR ResNet-44 (7 blocks per stage, widths 16/32/64)."""
    return _make(44, _W1, num_classes)


@register_model(dkd_beta=2.0)
def resnet56(num_classes: int = 100) -> CifarResNet:
    """CIFAR ResNet-56 (9 blocks per stage, widths 16/32/64)."""
    return _make(56, _W1, num_classes)


@register_model(dkd_beta=2.0)
def resnet110(num_classes: int = 100) -> CifarResNet:
    """CIFAR ResNet-110 (18 blocks per stage, widths 16/32/64)."""
    return _make(110, _W1, num_classes)


@register_model
def resnet8x4(num_classes: int = 100) -> CifarResNet:
    """CIFAR ResNet-8 at 4x width: 32-channel stem, stages 64/128/256."""
    return _make(8, _W4, num_classes)


@register_model
def resnet32x4(num_classes: int = 100) -> CifarResNet:
    """CIFAR ResNet-32 at 4x width: 32-channel stem, stages 64/128/256."""
    return _make(32, _W4, num_classes)
