"""The CIFAR knowledge-distillation model zoo (CRD / RepDistiller layer specs) with a registry.

>>> model = create_model("resnet56", num_classes=100)
>>> logits, feats = model(x, return_features=True)  # feats: Features(stem, blocks, ...)

Every model has ``feature_channels``, ``feature_strides``, ``stem_channels`` and
``embedding_dim`` so distillation connectors can be built without a dry run.
"""

from . import (  # noqa: F401  (registers the models)
    mobilenetv2,
    resnet,
    resnetv2,
    shufflenetv1,
    shufflenetv2,
    vgg,
    wrn,
)
from .base import CifarModel, Features
from .registry import count_parameters, create_model, list_models, register_model

__all__ = [
    "CifarModel",
    "Features",
    "count_parameters",
    "create_model",
    "list_models",
    "register_model",
]
