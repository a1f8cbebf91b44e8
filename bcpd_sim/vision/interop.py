"""Teachers trained elsewhere: convert RepDistiller and mdistiller CIFAR-100 checkpoints into ours.

Both code bases save ``{'model': state_dict, ...}`` (RepDistiller's ``train_teacher.py``:
``<arch>_best.pth``, ``ckpt_epoch_N.pth`` and ``<arch>_last.pth``, the last with an
``argparse.Namespace`` under ``'opt'``; mdistiller's released ``cifar_teachers``:
``<arch>_vanilla/ckpt_epoch_240.pth``) and build their layers in the same order as our zoo, with
the same shapes; only some names differ. :func:`convert_state_dict` renames by per-family rules
and then checks that every foreign tensor lands on exactly one of ours with the same shape and the
same role (convolution, batch-norm weight / bias / running statistic, linear), with none left over
on either side.

>>> ckpt = import_checkpoint("save/models/resnet56_vanilla/ckpt_epoch_240.pth", "mdistiller")
>>> save_checkpoint("teachers/resnet56_ce/teacher.pt", ckpt)   # then: distill --teacher ...
"""

from __future__ import annotations

import argparse
import hashlib
import pickle
import re
from collections import OrderedDict
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import ConfigError
from ..validation import check_choice
from .checkpoint import to_plain
from .models import create_model, list_models

FORMATS = ("repdistiller", "mdistiller")

#: Their architecture names -> ours (names not listed are the same in both).
FOREIGN_ARCHS = {
    "MobileNetV2": "mobilenetv2",
    "ShuffleV1": "shufflenetv1",
    "ShuffleV2": "shufflenetv2",
    "ResNet50": "resnet50",
}
OUR_TO_FOREIGN = {ours: theirs for theirs, ours in FOREIGN_ARCHS.items()}

_CLASSIFIER = [(r"^linear\.", "fc."), (r"^classifier\.0\.", "fc."), (r"^classifier\.", "fc.")]
#: Renaming rules (regex, replacement) from their names to ours, by our architecture family.
RULES: dict[str, list[tuple[str, str]]] = {
    "resnet": [(r"\.downsample\.", ".shortcut."), *_CLASSIFIER],
    "wrn": [
        (r"^(block\d+)\.layer\.", r"\1."),
        (r"\.convShortcut\.", ".shortcut."),
        (r"^bn1\.", "bn."),
        *_CLASSIFIER,
    ],
    "other": _CLASSIFIER,
}


def our_arch(name: str) -> str:
    """Our registry name for a RepDistiller/mdistiller architecture name (or ours)."""
    arch = FOREIGN_ARCHS.get(name, name)
    check_choice("arch", arch, list_models())
    return arch


def family(arch: str) -> str:
    """The renaming family of one of our architectures."""
    if re.fullmatch(r"resnet\d+(x4)?", arch) and arch != "resnet50":
        return "resnet"
    if arch.startswith("wrn_"):
        return "wrn"
    return "other"


def rename(key: str, arch: str) -> str:
    """Our parameter name for a foreign one (a ``module.`` DataParallel prefix is dropped)."""
    key = key.removeprefix("module.")
    for pattern, repl in RULES[family(arch)]:
        key = re.sub(pattern, repl, key)
    return key


def our_roles(model: nn.Module) -> dict[str, str]:
    """``state_dict`` key -> role (``conv.weight``, ``bn.running_mean``, ``linear.bias``, ...)."""
    kinds = {nn.Conv2d: "conv", nn.BatchNorm2d: "bn", nn.Linear: "linear"}
    roles = {}
    for mod_name, module in model.named_modules():
        kind = next((k for t, k in kinds.items() if type(module) is t), None)
        if kind is None:
            continue
        for attr in module.state_dict(keep_vars=True):
            if "." not in attr:
                roles[f"{mod_name}.{attr}" if mod_name else attr] = f"{kind}.{attr}"
    return roles


def foreign_roles(state_dict: dict[str, torch.Tensor]) -> dict[str, str]:
    """Roles of a foreign state dict's entries from their names and shapes alone."""
    roles = {}
    for key in state_dict:
        prefix, _, attr = key.rpartition(".")
        weight = state_dict.get(f"{prefix}.weight" if prefix else "weight")
        if attr in ("running_mean", "running_var", "num_batches_tracked"):
            kind = "bn"
        elif f"{prefix}.running_mean" in state_dict:
            kind = "bn"
        elif attr in ("weight", "bias") and weight is not None and weight.dim() == 4:
            kind = "conv"
        elif attr in ("weight", "bias") and weight is not None and weight.dim() == 2:
            kind = "linear"
        else:
            kind = "unknown"
        roles[key] = f"{kind}.{attr}"
    return roles


def infer_num_classes(state_dict: dict[str, torch.Tensor]) -> int:
    """Rows of the classifier: the last two-dimensional weight in the state dict."""
    mats = [v for k, v in state_dict.items() if k.endswith("weight") and v.dim() == 2]
    if not mats:
        raise ConfigError("the checkpoint's state dict has no linear classifier")
    return int(mats[-1].shape[0])


def convert_state_dict(
    state_dict: dict[str, torch.Tensor], arch: str, num_classes: int | None = None
) -> OrderedDict[str, torch.Tensor]:
    """A foreign state dict as ours for ``arch`` (their name or ours), checked in full.

    Raises ``ConfigError`` naming the first problem: a tensor that maps nowhere or twice, one of
    ours left without a tensor, a shape or role that differs.
    """
    arch = our_arch(arch)
    if not isinstance(state_dict, dict) or not all(
        isinstance(v, torch.Tensor) for v in state_dict.values()
    ):
        raise ConfigError("expected a state dict (parameter name -> tensor)")
    num_classes = num_classes or infer_num_classes(state_dict)
    model = create_model(arch, num_classes=num_classes)
    ours = model.state_dict()
    roles = our_roles(model)
    theirs_roles = foreign_roles(state_dict)
    mapped: OrderedDict[str, torch.Tensor] = OrderedDict()
    for key, value in state_dict.items():
        target = rename(key, arch)
        if target not in ours:
            raise ConfigError(f"{key!r} has no counterpart in our {arch} (mapped to {target!r})")
        if target in mapped:
            raise ConfigError(f"two tensors map to {target!r} of our {arch}")
        if tuple(value.shape) != tuple(ours[target].shape):
            raise ConfigError(
                f"{key!r} has shape {tuple(value.shape)}, our {arch}.{target} "
                f"{tuple(ours[target].shape)}"
            )
        if theirs_roles[key] != roles[target]:
            raise ConfigError(
                f"{key!r} is a {theirs_roles[key]}, our {arch}.{target} a {roles[target]}"
            )
        mapped[target] = value.detach().to("cpu", ours[target].dtype).contiguous().clone()
    missing = [k for k in ours if k not in mapped]
    if missing:
        raise ConfigError(
            f"the checkpoint lacks {len(missing)} tensor(s) of our {arch}, e.g. {missing[0]!r} "
            "(wrong --arch?)"
        )
    return OrderedDict((k, mapped[k]) for k in ours)


def arch_from_path(path: str | Path) -> str:
    """The architecture named by RepDistiller's run folder (``<arch>_cifar100_lr_..._trial_N``,
    ``<arch>_vanilla``), as its ``train_student.py`` reads it; ConfigError when unrecognised."""
    folder = Path(path).resolve().parent.name
    segments = folder.split("_")
    name = "_".join(segments[:3]) if segments[0] == "wrn" else segments[0]
    if FOREIGN_ARCHS.get(name, name) not in list_models():
        raise ConfigError(
            f"cannot read the architecture from the folder name {folder!r}; give --arch "
            f"(one of {', '.join(sorted(set(list_models()) | set(FOREIGN_ARCHS)))})"
        )
    return name


def read_foreign(path: str | Path) -> dict[str, Any]:
    """Load a foreign checkpoint safely (``weights_only=True``, with ``argparse.Namespace``
    allowed for RepDistiller's ``_last.pth``); returns the loaded dict (a bare state dict is
    wrapped as ``{'model': ...}``)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[-1][:200]
        raise ConfigError(f"{path} does not load safely (weights_only=True): {first}") from None
    except Exception as exc:
        raise ConfigError(f"checkpoint {path} is unreadable ({exc})") from None
    if isinstance(obj, dict) and isinstance(obj.get("model"), dict):
        return obj
    if isinstance(obj, dict) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        return {"model": obj}
    raise ConfigError(f"{path} holds no 'model' state dict")


def _options(opt: Any) -> dict[str, Any] | None:
    """RepDistiller's ``opt`` namespace as a dict of its plain values."""
    if not isinstance(opt, argparse.Namespace):
        return None
    plain = (bool, int, float, str, type(None))
    return {
        k: (list(v) if isinstance(v, (list, tuple)) else v)
        for k, v in vars(opt).items()
        if isinstance(v, plain)
        or (isinstance(v, (list, tuple)) and all(isinstance(x, plain) for x in v))
    }


def import_checkpoint(
    path: str | Path, fmt: str, arch: str | None = None, *, loss: str = "ce"
) -> dict[str, Any]:
    """Our checkpoint (``kind`` "imported") for a RepDistiller/mdistiller file, ready for
    :func:`bcpd_sim.vision.checkpoint.save_checkpoint`.

    ``arch`` defaults to the one the run folder names; ``loss`` records how the teacher was
    trained (their scripts train with cross-entropy).
    """
    check_choice("format", fmt, FORMATS)
    foreign_arch = arch or arch_from_path(path)
    ours = our_arch(foreign_arch)
    raw = read_foreign(path)
    state = convert_state_dict(raw["model"], ours)
    num_classes = int(state["fc.weight"].shape[0])
    accuracy = raw.get("best_acc", raw.get("accuracy"))
    if isinstance(accuracy, torch.Tensor):
        accuracy = accuracy.item()
    source = {
        "path": str(Path(path).resolve()),
        "format": fmt,
        "arch": foreign_arch,
        "sha256": hashlib.sha256(Path(path).read_bytes()).hexdigest(),
        "epoch": raw.get("epoch") if isinstance(raw.get("epoch"), int) else None,
        "reported_accuracy": accuracy if isinstance(accuracy, (int, float)) else None,
        "options": _options(raw.get("opt")),
    }
    data = "cifar100" if num_classes == 100 else None
    return to_plain(
        {
            "kind": "imported",
            "arch": ours,
            "num_classes": num_classes,
            "loss": loss,
            "epoch": source["epoch"],
            "model": state,
            "recipe": None,
            "seed": None,
            "config": {"arch": ours, "loss": loss, "data": data, "imported_from": fmt},
            "source": source,
        }
    )
