"""ShuffleNetV2 for CIFAR (Ma et al. 2018), the CRD / RepDistiller ``ShuffleV2`` (net size 1).

A 1x1 stem (24 channels, stride 1), then three stages, each a stride-2 down-sampling block
followed by 3, 7, 3 basic blocks, with 116, 232 and 464 channels; a 1x1 conv to 1024 channels,
global average pooling and a linear classifier. A basic block splits its input in two halves,
transforms the second (1x1 - BN - ReLU - depthwise 3x3 - BN - 1x1 - BN - ReLU), concatenates and
shuffles the channels (2 groups). Weights keep PyTorch's default initialisation, as in the
reference; trained at lr 0.01 like the other ShuffleNet and MobileNetV2 (RepDistiller's scripts). Parameter names follow the reference (``conv1`` .. ``conv5``) except the classifier,
``fc`` (``linear`` there).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .base import CifarModel, Features, global_pool
from .registry import register_model
from .resnet import Stage
from .shufflenetv1 import channel_shuffle


def shuffle2(x: torch.Tensor) -> torch.Tensor:
    """Channel shuffle with 2 groups that keeps a channels_last input channels_last."""
    if x.is_contiguous() or not x.is_contiguous(memory_format=torch.channels_last):
        return channel_shuffle(x, 2)
    n, c, h, w = x.shape
    nhwc = x.permute(0, 2, 3, 1).reshape(n, h, w, 2, c // 2).transpose(3, 4).reshape(n, h, w, c)
    return nhwc.permute(0, 3, 1, 2)


class ShuffleV2Block(nn.Module):
    """The stride-1 unit: split, transform the second half, concatenate, shuffle.

    Returns ``(out, preact)``; ``preact`` has the transformed half before its last ReLU (the
    untouched half is already non-negative, so ``out == relu(preact)``).
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        half = channels // 2
        self.half = half
        self.conv1 = nn.Conv2d(half, half, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(half)
        self.conv2 = nn.Conv2d(half, half, 3, 1, 1, groups=half, bias=False)
        self.bn2 = nn.BatchNorm2d(half)
        self.conv3 = nn.Conv2d(half, half, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(half)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x1, x2 = x[:, : self.half], x[:, self.half :]
        out = F.relu(self.bn1(self.conv1(x2)))
        out = self.bn2(self.conv2(out))
        pre = self.bn3(self.conv3(out))
        preact = shuffle2(torch.cat([x1, pre], dim=1))
        out = shuffle2(torch.cat([x1, F.relu(pre)], dim=1))
        return out, preact


class ShuffleV2Down(nn.Module):
    """The stride-2 unit: two branches (depthwise 3x3 - 1x1, and 1x1 - depthwise 3x3 - 1x1), each
    producing half the output channels, concatenated and shuffled. Returns ``(out, out)``."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        mid = out_channels // 2
        self.conv1 = nn.Conv2d(in_channels, in_channels, 3, 2, 1, groups=in_channels, bias=False)
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv2 = nn.Conv2d(in_channels, mid, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(mid)
        self.conv3 = nn.Conv2d(in_channels, mid, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(mid)
        self.conv4 = nn.Conv2d(mid, mid, 3, 2, 1, groups=mid, bias=False)
        self.bn4 = nn.BatchNorm2d(mid)
        self.conv5 = nn.Conv2d(mid, mid, 1, bias=False)
        self.bn5 = nn.BatchNorm2d(mid)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        left = F.relu(self.bn2(self.conv2(self.bn1(self.conv1(x)))))
        right = F.relu(self.bn3(self.conv3(x)))
        right = F.relu(self.bn5(self.conv5(self.bn4(self.conv4(right)))))
        out = shuffle2(torch.cat([left, right], dim=1))
        return out, out


class CifarShuffleNetV2(CifarModel):
    """ShuffleNetV2 for 32x32 inputs."""

    def __init__(
        self,
        num_classes: int = 100,
        out_channels: tuple[int, int, int, int] = (116, 232, 464, 1024),
        num_blocks: tuple[int, int, int] = (3, 7, 3),
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 24, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(24)
        in_channels = 24
        stages = []
        for width, n in zip(out_channels[:3], num_blocks):
            blocks: list[nn.Module] = [ShuffleV2Down(in_channels, width)]
            blocks += [ShuffleV2Block(width) for _ in range(n)]
            in_channels = width
            stages.append(Stage(blocks))
        self.layer1, self.layer2, self.layer3 = stages
        self.conv2 = nn.Conv2d(in_channels, out_channels[3], 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels[3])
        self.fc = nn.Linear(out_channels[3], num_classes)
        self.num_classes = num_classes
        self.stem_channels = 24
        self.feature_channels = tuple(out_channels[:3])
        self.feature_strides = (2, 4, 8)
        self.embedding_dim = out_channels[3]

    def _forward(self, x: torch.Tensor) -> tuple[torch.Tensor, Features]:
        stem = F.relu(self.bn1(self.conv1(x)))
        f1, p1 = self.layer1(stem)
        f2, p2 = self.layer2(f1)
        f3, p3 = self.layer3(f2)
        embedding = global_pool(F.relu(self.bn2(self.conv2(f3))))
        logits = self.fc(embedding)
        return logits, Features(stem, [f1, f2, f3], [p1, p2, p3], embedding)


@register_model(lr_family="low")
def shufflenetv2(num_classes: int = 100) -> CifarShuffleNetV2:
    """CIFAR ShuffleNetV2 at net size 1 (CRD ``ShuffleV2``)."""
    return CifarShuffleNetV2(num_classes)
