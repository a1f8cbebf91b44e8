"""MobileNetV2 for CIFAR, the CRD / RepDistiller variant (``mobile_half``: expansion 6, width 0.5).

Differences from the ImageNet model: every inverted residual has the expansion 1x1 conv (also
when the expansion ratio is 1), the stem has stride 2, and the last conv keeps 1280 channels for
width multipliers up to 1. Stage outputs are linear bottlenecks (no ReLU), so ``preact_blocks``
holds the same tensors as ``blocks``.
"""

from __future__ import annotations

import torch
from torch import nn

from .base import CifarModel, Features, global_pool, init_weights
from .registry import register_model

# expansion (None = the model's), output channels, repeats, first stride
_SETTING = [
    (1, 16, 1, 1),
    (None, 24, 2, 1),
    (None, 32, 3, 2),
    (None, 64, 4, 2),
    (None, 96, 3, 1),
    (None, 160, 3, 2),
    (None, 320, 1, 1),
]
# the reference feature taps: after setting groups 1, 2, 4 and 6
_TAPS = ((0, 1), (2,), (3, 4), (5, 6))
_TAP_STRIDES = (2, 4, 8, 16)


def _conv_bn_relu(in_channels: int, out_channels: int, kernel: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel, stride, kernel // 2, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(),
    )


class InvertedResidual(nn.Module):
    """1x1 expand - BN - ReLU - 3x3 depthwise - BN - ReLU - 1x1 project - BN (+ identity)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, expansion: int) -> None:
        super().__init__()
        hidden = in_channels * expansion
        self.use_residual = stride == 1 and in_channels == out_channels
        self.conv = nn.Sequential(
            nn.Conv2d(in_channels, hidden, 1, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU(),
            nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU(),
            nn.Conv2d(hidden, out_channels, 1, bias=False),
            nn.BatchNorm2d(out_channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv(x)
        return x + out if self.use_residual else out


class CifarMobileNetV2(CifarModel):
    """MobileNetV2 for 32x32 inputs with expansion ``expansion`` and ``width_mult``."""

    def __init__(self, num_classes: int = 100, width_mult: float = 0.5, expansion: int = 6) -> None:
        super().__init__()
        in_channels = int(32 * width_mult)
        self.conv1 = _conv_bn_relu(3, in_channels, 3, 2)
        groups = []
        for t, c, n, s in _SETTING:
            out_channels = int(c * width_mult)
            layers = []
            for i in range(n):
                layers.append(
                    InvertedResidual(in_channels, out_channels, s if i == 0 else 1, t or expansion)
                )
                in_channels = out_channels
            groups.append(nn.Sequential(*layers))
        self.blocks = nn.ModuleList(groups)
        self.last_channels = int(1280 * width_mult) if width_mult > 1.0 else 1280
        self.conv2 = _conv_bn_relu(in_channels, self.last_channels, 1, 1)
        self.fc = nn.Linear(self.last_channels, num_classes)
        self.num_classes = num_classes
        self.stem_channels = int(32 * width_mult)
        self.feature_channels = tuple(int(_SETTING[tap[-1]][1] * width_mult) for tap in _TAPS)
        self.feature_strides = _TAP_STRIDES
        self.embedding_dim = self.last_channels
        init_weights(self, linear_std=0.01)

    def _forward(self, x: torch.Tensor) -> tuple[torch.Tensor, Features]:
        stem = self.conv1(x)
        out = stem
        taps = []
        for tap in _TAPS:
            for index in tap:
                out = self.blocks[index](out)
            taps.append(out)
        embedding = global_pool(self.conv2(out))
        logits = self.fc(embedding)
        return logits, Features(stem, taps, list(taps), embedding)


@register_model(lr_family="low")
def mobilenetv2(
    num_classes: int = 100, width_mult: float = 0.5, expansion: int = 6
) -> CifarMobileNetV2:
    """CIFAR MobileNetV2, by default the CRD ``mobile_half`` (expansion 6, width 0.5)."""
    return CifarMobileNetV2(num_classes, width_mult, expansion)
