"""CIFAR ResNet-50 with bottleneck blocks: the CIFAR variant of RepDistiller's ``resnetv2.py``.

A 3x3 stride-1 stem (64 channels, no max-pool), then four stages of 3, 4, 6, 3 bottlenecks
(1x1 - 3x3 - 1x1, expansion 4) at strides 1, 2, 2, 2 with 256, 512, 1024, 2048 output channels,
global average pooling and one linear classifier: 23,705,252 parameters at 100 classes. The teacher
of the paper's largest CIFAR gain (ResNet50 -> MobileNetV2). Parameter names follow the
reference (``layerN.i.conv1``, ``shortcut.0/1``) except the classifier, ``fc`` (``linear`` there).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .base import CifarModel, Features, global_pool, init_weights
from .registry import register_model
from .resnet import Stage


class Bottleneck(nn.Module):
    """conv1x1-BN-ReLU-conv3x3(stride)-BN-ReLU-conv1x1-BN plus shortcut (1x1 conv + BN when the
    shape changes), ReLU. Returns ``(out, preact)``."""

    expansion = 4

    def __init__(self, in_channels: int, planes: int, stride: int) -> None:
        super().__init__()
        out_channels = self.expansion * planes
        self.conv1 = nn.Conv2d(in_channels, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, out_channels, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)
        if stride != 1 or in_channels != out_channels:
            self.shortcut: nn.Module = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )
        else:
            self.shortcut = nn.Identity()

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        preact = self.bn3(self.conv3(out)) + self.shortcut(x)
        return F.relu(preact), preact


class CifarBottleneckResNet(CifarModel):
    """Bottleneck ResNet for 32x32 inputs; ``num_blocks`` per stage, base widths 64..512."""

    def __init__(self, num_blocks: tuple[int, ...] = (3, 4, 6, 3), num_classes: int = 100) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        in_channels = 64
        stages = []
        for i, (planes, n) in enumerate(zip((64, 128, 256, 512), num_blocks)):
            blocks = []
            for j in range(n):
                blocks.append(
                    Bottleneck(in_channels, planes, (1 if i == 0 else 2) if j == 0 else 1)
                )
                in_channels = planes * Bottleneck.expansion
            stages.append(Stage(blocks))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.fc = nn.Linear(in_channels, num_classes)
        self.num_classes = num_classes
        self.stem_channels = 64
        self.feature_channels = (256, 512, 1024, 2048)
        self.feature_strides = (1, 2, 4, 8)
        self.embedding_dim = in_channels
        init_weights(self)

    def _forward(self, x: torch.Tensor) -> tuple[torch.Tensor, Features]:
        stem = F.relu(self.bn1(self.conv1(x)))
        f1, p1 = self.layer1(stem)
        f2, p2 = self.layer2(f1)
        f3, p3 = self.layer3(f2)
        f4, p4 = self.layer4(f3)
        embedding = global_pool(f4)
        logits = self.fc(embedding)
        return logits, Features(stem, [f1, f2, f3, f4], [p1, p2, p3, p4], embedding)


@register_model  # family "resnetv2": the file it comes from, as in RepDistiller
def resnet50(num_classes: int = 100) -> CifarBottleneckResNet:
    """CIFAR ResNet-50 (RepDistiller ``ResNet50``): bottleneck stages of 3, 4, 6, 3 blocks."""
    return CifarBottleneckResNet((3, 4, 6, 3), num_classes)
