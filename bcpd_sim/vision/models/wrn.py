"""Wide ResNets (Zagoruyko & Komodakis 2016) for CIFAR, as in the CRD / RepDistiller benchmark.

``wrn_D_k``: depth ``6n + 4``, pre-activation basic blocks, widths 16 / 16k, 32k, 64k.
Stage outputs are residual sums (not rectified), as in the reference ``feat`` list;
``preact_blocks`` are those sums after the next batch norm, before its ReLU (the reference's
``preact=True``), computed once inside the forward pass rather than by re-running the BN.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ...errors import ConfigError
from .base import CifarModel, Features, global_pool, init_weights, stacked_stages
from .registry import register_model


class WideBasicBlock(nn.Module):
    """BN-ReLU-conv3x3-BN-ReLU-(dropout)-conv3x3 plus shortcut (1x1 conv on the activated input
    when the shape changes)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, drop_rate: float) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.drop_rate = float(drop_rate)
        self.project = stride != 1 or in_channels != out_channels
        self.shortcut = (
            nn.Conv2d(in_channels, out_channels, 1, stride, bias=False) if self.project else None
        )

    def forward(self, x: torch.Tensor, x_bn: torch.Tensor | None = None) -> torch.Tensor:
        """``x_bn`` is ``self.bn1(x)`` when the caller has already computed it."""
        if x_bn is None:
            x_bn = self.bn1(x)
        act = F.relu(x_bn)
        out = F.relu(self.bn2(self.conv1(act)))
        if self.drop_rate > 0:
            out = F.dropout(out, p=self.drop_rate, training=self.training)
        out = self.conv2(out)
        shortcut = self.shortcut(act) if self.shortcut is not None else x
        return out + shortcut


class WideStage(nn.ModuleList):
    """Blocks in sequence; the first may be given its input's batch-normed value."""

    def forward(self, x: torch.Tensor, x_bn: torch.Tensor | None = None) -> torch.Tensor:  # type: ignore[override]
        x = self[0](x, x_bn)
        for block in self[1:]:
            x = block(x)
        return x


class WideResNet(CifarModel):
    """WRN-``depth``-``widen`` for 32x32 inputs."""

    def __init__(
        self, depth: int, widen: int, num_classes: int = 100, drop_rate: float = 0.0
    ) -> None:
        super().__init__()
        if depth < 10 or (depth - 4) % 6 != 0:
            raise ConfigError(f"depth must be 6n + 4 with n >= 1 (10, 16, 22, ...), got {depth}")
        n = (depth - 4) // 6
        widths = (16, 16 * widen, 32 * widen, 64 * widen)
        self.conv1 = nn.Conv2d(3, widths[0], 3, 1, 1, bias=False)
        stages = stacked_stages(
            widths[0],
            widths[1:],
            n,
            lambda c_in, c_out, s: WideBasicBlock(c_in, c_out, s, drop_rate),
        )
        self.block1, self.block2, self.block3 = (WideStage(blocks) for blocks in stages)
        self.bn = nn.BatchNorm2d(widths[3])
        self.fc = nn.Linear(widths[3], num_classes)
        self.num_classes = num_classes
        self.stem_channels = widths[0]
        self.feature_channels = tuple(widths[1:])
        self.feature_strides = (1, 2, 4)
        self.embedding_dim = widths[3]
        init_weights(self)
        nn.init.zeros_(self.fc.bias)

    def _forward(self, x: torch.Tensor) -> tuple[torch.Tensor, Features]:
        stem = self.conv1(x)
        f1 = self.block1(stem)
        p1 = self.block2[0].bn1(f1)
        f2 = self.block2(f1, p1)
        p2 = self.block3[0].bn1(f2)
        f3 = self.block3(f2, p2)
        p3 = self.bn(f3)
        embedding = global_pool(F.relu(p3))
        logits = self.fc(embedding)
        return logits, Features(stem, [f1, f2, f3], [p1, p2, p3], embedding)


@register_model
def wrn_16_1(num_classes: int = 100, drop_rate: float = 0.0) -> WideResNet:
    """WRN-16-1: 2 blocks per stage, widths 16/32/64."""
    return WideResNet(16, 1, num_classes, drop_rate)


@register_model
def wrn_16_2(num_classes: int = 100, drop_rate: float = 0.0) -> WideResNet:
    """WRN-16-2: 2 blocks per stage, widths 32/64/128."""
    return WideResNet(16, 2, num_classes, drop_rate)


@register_model
def wrn_40_1(num_classes: int = 100, drop_rate: float = 0.0) -> WideResNet:
    """WRN-40-1: 6 blocks per stage, widths 16/32/64."""
    return WideResNet(40, 1, num_classes, drop_rate)


@register_model(dkd_beta=6.0)
def wrn_40_2(num_classes: int = 100, drop_rate: float = 0.0) -> WideResNet:
    """WRN-40-2: 6 blocks per stage, widths 32/64/128."""
    return WideResNet(40, 2, num_classes, drop_rate)
