"""ShuffleNetV1 for CIFAR (Zhang et al. 2018), the CRD / RepDistiller ``ShuffleV1`` (groups 3).

A 1x1 stem (24 channels, stride 1), then three stages of 4, 8, 4 bottlenecks with 240, 480 and
960 output channels. The first bottleneck of each stage has stride 2 and concatenates an
average-pooled shortcut; the others add an identity shortcut. The first 1x1 conv after the stem
is not grouped. Weights keep PyTorch's default initialisation, as in the reference.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .base import CifarModel, Features, staged_forward
from .registry import register_model
from .resnet import Stage


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """``[N, g*c, H, W] -> [N, c*g, H, W]`` (transpose the group and channel axes)."""
    n, c, h, w = x.shape
    return x.reshape(n, groups, c // groups, h, w).transpose(1, 2).reshape(n, c, h, w)


class ShuffleBottleneck(nn.Module):
    """Grouped 1x1 - BN - ReLU - shuffle - depthwise 3x3 - BN - ReLU - grouped 1x1 - BN, then
    add (stride 1) or concatenate an avg-pooled input (stride 2), then ReLU.

    Returns ``(out, preact)``.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int, groups: int) -> None:
        super().__init__()
        mid = out_channels // 4
        first_groups = 1 if in_channels == 24 else groups
        self.stride = stride
        self.shuffle_groups = first_groups
        self.conv1 = nn.Conv2d(in_channels, mid, 1, groups=first_groups, bias=False)
        self.bn1 = nn.BatchNorm2d(mid)
        self.conv2 = nn.Conv2d(mid, mid, 3, stride, 1, groups=mid, bias=False)
        self.bn2 = nn.BatchNorm2d(mid)
        self.conv3 = nn.Conv2d(mid, out_channels, 1, groups=groups, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = F.relu(self.bn1(self.conv1(x)))
        if self.shuffle_groups > 1:
            out = channel_shuffle(out, self.shuffle_groups)
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.stride == 2:
            preact = torch.cat([out, F.avg_pool2d(x, 3, 2, 1)], dim=1)
        else:
            preact = out + x
        return F.relu(preact), preact


class CifarShuffleNetV1(CifarModel):
    """ShuffleNetV1 for 32x32 inputs."""

    def __init__(
        self,
        num_classes: int = 100,
        out_channels: tuple[int, int, int] = (240, 480, 960),
        num_blocks: tuple[int, int, int] = (4, 8, 4),
        groups: int = 3,
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 24, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(24)
        in_channels = 24
        stages = []
        for width, n in zip(out_channels, num_blocks):
            blocks = []
            for i in range(n):
                # the stride-2 block concatenates its input, so it produces width - in channels
                produced = width - in_channels if i == 0 else width
                blocks.append(ShuffleBottleneck(in_channels, produced, 2 if i == 0 else 1, groups))
                in_channels = width
            stages.append(Stage(blocks))
        self.layer1, self.layer2, self.layer3 = stages
        self.fc = nn.Linear(in_channels, num_classes)
        self.num_classes = num_classes
        self.stem_channels = 24
        self.feature_channels = tuple(out_channels)
        self.feature_strides = (2, 4, 8)
        self.embedding_dim = in_channels

    def _forward(self, x: torch.Tensor) -> tuple[torch.Tensor, Features]:
        stem = F.relu(self.bn1(self.conv1(x)))
        return staged_forward(self, stem, (self.layer1, self.layer2, self.layer3))


@register_model(lr_family="low")
def shufflenetv1(num_classes: int = 100) -> CifarShuffleNetV1:
    """CIFAR ShuffleNetV1 with 3 groups (CRD ``ShuffleV1``)."""
    return CifarShuffleNetV1(num_classes)
