"""The CIFAR knowledge-distillation model zoo (CRD / RepDistiller layer specs) with a registry.

>>> model = create_model("resnet56", num_classes=100)
>>> logits, feats = model(x, return_features=True)  # feats: Features(stem, blocks, ...)

Every model carries its settings as ``model.arch_cfg`` (name, family, lr family, DKD beta) and has
``feature_channels``, ``feature_strides``, ``stem_channels`` and
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
from .registry import (
    ArchConfig,
    arch_config,
    count_parameters,
    create_model,
    list_models,
    register_model,
    settings_of,
)

__all__ = [
    "ArchConfig",
    "CifarModel",
    "Features",
    "arch_config",
    "count_parameters",
    "create_model",
    "list_models",
    "register_model",
    "settings_of",
]
