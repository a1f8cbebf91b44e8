"""VGG with batch norm for CIFAR, as in the CRD / RepDistiller benchmark (no hidden FC layers).

Five conv blocks (3x3 conv with bias, BN, ReLU); max-pooling after blocks 0, 1 and 2; global
average pooling after block 4 and a single linear classifier. Block 0 is the stem; blocks 1-4
are the four stages.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .base import CifarModel, Features, global_pool, init_weights
from .registry import register_model


def _conv_block(in_channels: int, widths: list[int]) -> nn.Sequential:
    """(conv3x3 + BN + ReLU) per width, without the final ReLU (the caller applies it)."""
    layers: list[nn.Module] = []
    for width in widths:
        layers += [nn.Conv2d(in_channels, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU()]
        in_channels = width
    return nn.Sequential(*layers[:-1])


class CifarVGG(CifarModel):
    """VGG-BN for 32x32 inputs; ``cfg`` lists the conv widths of blocks 0..4."""

    def __init__(self, cfg: list[list[int]], num_classes: int = 100) -> None:
        super().__init__()
        blocks = []
        in_channels = 3
        for widths in cfg:
            blocks.append(_conv_block(in_channels, widths))
            in_channels = widths[-1]
        self.block0, self.block1, self.block2, self.block3, self.block4 = blocks
        self.fc = nn.Linear(in_channels, num_classes)
        self.num_classes = num_classes
        self.stem_channels = cfg[0][-1]
        self.feature_channels = tuple(widths[-1] for widths in cfg[1:])
        self.feature_strides = (2, 4, 8, 8)
        self.embedding_dim = in_channels
        init_weights(self, linear_std=0.01)

    def _forward(self, x: torch.Tensor) -> tuple[torch.Tensor, Features]:
        stem = F.relu(self.block0(x))
        p1 = self.block1(F.max_pool2d(stem, 2))
        f1 = F.relu(p1)
        p2 = self.block2(F.max_pool2d(f1, 2))
        f2 = F.relu(p2)
        p3 = self.block3(F.max_pool2d(f2, 2))
        f3 = F.relu(p3)
        p4 = self.block4(f3)
        f4 = F.relu(p4)
        embedding = global_pool(f4)
        logits = self.fc(embedding)
        return logits, Features(stem, [f1, f2, f3, f4], [p1, p2, p3, p4], embedding)


@register_model
def vgg8(num_classes: int = 100) -> CifarVGG:
    """VGG-8 with BN (one conv per block: 64, 128, 256, 512, 512)."""
    return CifarVGG([[64], [128], [256], [512], [512]], num_classes)


@register_model(dkd_beta=6.0)
def vgg13(num_classes: int = 100) -> CifarVGG:
    """VGG-13 with BN (two convs per block: 64, 128, 256, 512, 512)."""
    return CifarVGG([[64, 64], [128, 128], [256, 256], [512, 512], [512, 512]], num_classes)


@register_model
def vgg11(num_classes: int = 100) -> CifarVGG:
    """VGG-11 with BN (convs per block 1, 1, 2, 2, 2: 64, 128, 256, 512, 512)."""
    return CifarVGG([[64], [128], [256, 256], [512, 512], [512, 512]], num_classes)


@register_model
def vgg16(num_classes: int = 100) -> CifarVGG:
    """VGG-16 with BN (convs per block 2, 2, 3, 3, 3: 64, 128, 256, 512, 512)."""
    return CifarVGG(
        [[64, 64], [128, 128], [256, 256, 256], [512, 512, 512], [512, 512, 512]], num_classes
    )


@register_model
def vgg19(num_classes: int = 100) -> CifarVGG:
    """VGG-19 with BN (convs per block 2, 2, 4, 4, 4: 64, 128, 256, 512, 512)."""
    return CifarVGG(
        [[64, 64], [128, 128], [256] * 4, [512] * 4, [512] * 4],
        num_classes,
    )
