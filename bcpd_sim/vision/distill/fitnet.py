"""FitNets hints (Romero et al., ICLR 2015), trained jointly with CE as in the CRD benchmark code.

A trainable connector (1x1 conv + BatchNorm + ReLU) maps a student stage output to the teacher's
channel count (average-pooled to the teacher's size if they differ); the term is the mean squared
error to the teacher's stage output, weighted by ``feat_weight`` (100). ``hint_layer`` indexes
RepDistiller's feature list ``[stem, stage 1, stage 2, ..., embedding]`` (``Features.as_list()``)
of both models, and defaults to RepDistiller's ``hint_layer = 2`` (``train_student.py``): the
output of the second stage, for every architecture.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ...errors import ConfigError
from .base import Distiller, as_float, feature_shapes, match_spatial, register
from .kd import optional_kd


class ConvReg(nn.Module):
    """1x1 convolution + BatchNorm + ReLU from ``c_in`` to ``c_out`` channels."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, kernel_size=1, bias=False)
        self.bn = nn.BatchNorm2d(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


def fitnet_loss(regressed_student: torch.Tensor, teacher_feature: torch.Tensor) -> torch.Tensor:
    """Mean squared error between the regressed student hint and the teacher's feature map."""
    s, t = match_spatial(as_float(regressed_student), as_float(teacher_feature))
    return F.mse_loss(s, t)


@register("fitnet")
class FitNet(Distiller):
    """``ce_weight * CE + feat_weight * MSE(connector(student hint), teacher hint)``."""

    needs_features = True
    DEFAULTS = {"ce_weight": 1.0, "feat_weight": 100.0, "kd_weight": 0.0, "temperature": 4.0}

    @classmethod
    def extra_keys(cls):
        return ("hint_layer", "image_shape")

    #: RepDistiller's default: ``feat[2]``, the second stage's output.
    DEFAULT_HINT_LAYER = 2

    def __init__(self, teacher: nn.Module, student: nn.Module, **kwargs: Any) -> None:
        hint_layer = kwargs.pop("hint_layer", None)
        image_shape = tuple(kwargs.pop("image_shape", (3, 32, 32)))
        super().__init__(teacher, student, **kwargs)
        s_shapes = feature_shapes(student, image_shape).maps
        t_shapes = feature_shapes(teacher, image_shape).maps
        last = min(len(s_shapes), len(t_shapes)) - 1
        if hint_layer is None:
            hint_layer = min(self.DEFAULT_HINT_LAYER, last)
        if isinstance(hint_layer, bool) or not isinstance(hint_layer, int):
            hint_layer = -1
        if not 0 <= hint_layer <= last:
            raise ConfigError(
                f"fitnet.hint_layer must be an integer in [0, {last}] (0 the stem, i the output "
                f"of stage i), got {hint_layer!r}"
            )
        self.hint_layer = hint_layer
        self.connector = ConvReg(s_shapes[hint_layer][0], t_shapes[hint_layer][0])

    def distill_loss(self, s, t, targets, sf, tf, epoch):
        fs = sf.as_list()[self.hint_layer]
        ft = tf.as_list()[self.hint_layer]
        reg = self.connector(fs.to(self.connector.conv.weight.dtype))
        out = {"fitnet": (self.hparams["feat_weight"], fitnet_loss(reg, ft))}
        out.update(optional_kd(self, s, t))
        return out
