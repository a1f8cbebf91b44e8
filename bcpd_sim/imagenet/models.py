"""ImageNet models for the paper's pairs: ResNet-18/34/50 and MobileNetV1, with their own registry.

- ``resnet18``, ``resnet34``, ``resnet50``: He et al. (2016) with torchvision's layout and
  state-dict names (``conv1``, ``bn1``, ``layer1.0.conv1``, ``layer1.0.downsample.0``, ..., ``fc``;
  stride on the 3x3 convolution of the bottleneck, "ResNet v1.5"), so weights saved by
  torchvision (``torchvision.models.resnet50().state_dict()``) load with ``load_state_dict``.
  Parameters at 1,000 classes: 11,689,512 / 21,797,672 / 25,557,032 (torchvision's model cards).
- ``mobilenetv1``: the MobileNetV1 of mdistiller (``mdistiller/models/imagenet/mobilenetv1.py``):
  a ``model`` Sequential of one 3x3 conv-BN-ReLU and 13 depthwise-separable blocks, then ``fc``;
  same state-dict names (``model.0.0.weight``, ..., ``model.13.4.running_var``, ``fc.weight``), so
  its released checkpoints load. 4,231,976 parameters at 1,000 classes.

Every model follows the CIFAR zoo's interface (:class:`bcpd_sim.vision.models.CifarModel`):
``model(x)`` gives logits, ``model(x, return_features=True)`` gives ``(logits, Features)`` with the
four stage outputs (and their pre-ReLU versions) for feature-based distillation.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from ..validation import check_int
from ..vision.models.base import CifarModel, Features, init_weights

_REGISTRY: dict[str, Callable[..., CifarModel]] = {}


def _register(fn: Callable[..., CifarModel]) -> Callable[..., CifarModel]:
    _REGISTRY[fn.__name__] = fn
    return fn


def list_imagenet_models() -> list[str]:
    return sorted(_REGISTRY)


def create_imagenet_model(name: str, num_classes: int = 1000) -> CifarModel:
    """Build ``name`` (see :func:`list_imagenet_models`) with a ``num_classes``-way classifier."""
    if name not in _REGISTRY:
        raise ConfigError(
            f"unknown ImageNet model {name!r}; valid: {', '.join(list_imagenet_models())}"
        )
    return _REGISTRY[name](num_classes=check_int("num_classes", num_classes, minimum=2))


def _conv(cin: int, cout: int, k: int, stride: int = 1, groups: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False)


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with a shortcut (torchvision's ``BasicBlock``)."""

    expansion = 1

    def __init__(self, cin: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = _conv(cin, planes, 3, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = _conv(planes, planes, 3)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = _downsample(cin, planes, stride)

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        return self.bn2(self.conv2(out))

    def preact(self, x: torch.Tensor) -> torch.Tensor:
        """The sum before the final ReLU."""
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.residual(x) + shortcut

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.preact(x))


class Bottleneck(BasicBlock):
    """1x1 - 3x3 (carrying the stride) - 1x1 with 4x expansion (torchvision's ``Bottleneck``)."""

    expansion = 4

    def __init__(self, cin: int, planes: int, stride: int = 1) -> None:
        nn.Module.__init__(self)
        self.conv1 = _conv(cin, planes, 1)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = _conv(planes, planes, 3, stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = _conv(planes, planes * 4, 1)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.downsample = _downsample(cin, planes * 4, stride)

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        return self.bn3(self.conv3(out))


def _downsample(cin: int, cout: int, stride: int) -> nn.Sequential | None:
    if stride == 1 and cin == cout:
        return None
    return nn.Sequential(_conv(cin, cout, 1, stride), nn.BatchNorm2d(cout))


class _Layer(nn.Sequential):
    def forward_preact(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(output, pre-ReLU output of the last block)``."""
        blocks = list(self)
        for block in blocks[:-1]:
            x = block(x)
        pre = blocks[-1].preact(x)
        return F.relu(pre), pre


class ImageNetResNet(CifarModel):
    """ResNet with a 7x7/2 stem and max-pool, four stages at strides 1, 2, 2, 2."""

    def __init__(self, block: type[BasicBlock], layers: tuple[int, ...], num_classes: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        cin = 64
        stages = []
        for i, (planes, n) in enumerate(zip((64, 128, 256, 512), layers)):
            stride = 1 if i == 0 else 2
            blocks = []
            for j in range(n):
                blocks.append(block(cin, planes, stride if j == 0 else 1))
                cin = planes * block.expansion
            stages.append(_Layer(*blocks))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.fc = nn.Linear(cin, num_classes)
        self.stem_channels = 64
        self.feature_channels = tuple(p * block.expansion for p in (64, 128, 256, 512))
        self.feature_strides = (4, 8, 16, 32)
        self.embedding_dim = cin
        self.num_classes = num_classes
        init_weights(self)

    def _forward(self, x: torch.Tensor) -> tuple[torch.Tensor, Features]:
        stem = self.maxpool(F.relu(self.bn1(self.conv1(x))))
        blocks, pre = [], []
        out = stem
        for layer in (self.layer1, self.layer2, self.layer3, self.layer4):
            out, p = layer.forward_preact(out)
            blocks.append(out)
            pre.append(p)
        emb = out.mean(dim=(2, 3))
        return self.fc(emb), Features(stem, blocks, pre, emb)


@_register
def resnet18(num_classes: int = 1000) -> ImageNetResNet:
    return ImageNetResNet(BasicBlock, (2, 2, 2, 2), num_classes)


@_register
def resnet34(num_classes: int = 1000) -> ImageNetResNet:
    return ImageNetResNet(BasicBlock, (3, 4, 6, 3), num_classes)


@_register
def resnet50(num_classes: int = 1000) -> ImageNetResNet:
    return ImageNetResNet(Bottleneck, (3, 4, 6, 3), num_classes)


def _conv_bn(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(_conv(cin, cout, 3, stride), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


def _conv_dw(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        _conv(cin, cin, 3, stride, groups=cin),
        nn.BatchNorm2d(cin),
        nn.ReLU(inplace=True),
        _conv(cin, cout, 1),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


# (in, out, stride) of mdistiller's 13 depthwise-separable blocks; stages end after 3, 5, 11, 13.
_MOBILENET_BLOCKS = (
    (32, 64, 1),
    (64, 128, 2),
    (128, 128, 1),
    (128, 256, 2),
    (256, 256, 1),
    (256, 512, 2),
    *((512, 512, 1),) * 5,
    (512, 1024, 2),
    (1024, 1024, 1),
)
_STAGE_ENDS = (3, 5, 11, 13)


class MobileNetV1(CifarModel):
    """mdistiller's MobileNetV1: ``model`` = conv_bn(3, 32, 2), 13 conv_dw blocks, global pool."""

    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        layers = [_conv_bn(3, 32, 2)] + [_conv_dw(*spec) for spec in _MOBILENET_BLOCKS]
        self.model = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1))
        self.fc = nn.Linear(1024, num_classes)
        self.stem_channels = 32
        self.feature_channels = (128, 256, 512, 1024)
        self.feature_strides = (4, 8, 16, 32)
        self.embedding_dim = 1024
        self.num_classes = num_classes

    def _forward(self, x: torch.Tensor) -> tuple[torch.Tensor, Features]:
        stem = self.model[0](x)
        out, start = stem, 1
        blocks, pre = [], []
        for end in _STAGE_ENDS:
            for i in range(start, end):
                out = self.model[i](out)
            p = self.model[end][:-1](out)  # the stage's last block without its final ReLU
            out = F.relu(p)
            blocks.append(out)
            pre.append(p)
            start = end + 1
        emb = self.model[14](out).flatten(1)
        return self.fc(emb), Features(stem, blocks, pre, emb)


@_register
def mobilenetv1(num_classes: int = 1000) -> MobileNetV1:
    return MobileNetV1(num_classes)
