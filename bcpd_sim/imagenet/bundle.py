"""The data of an ImageNet run: train / held-out / test splits and their loaders.

The official validation set (``val/``) is the test set: it is never used to choose a checkpoint.
The best epoch is chosen on ``val_per_class`` images of every class held out from ``train/``
(10 per class by default: 10,000 images, seeded by ``data_seed``). mdistiller and the paper
report the last epoch on ``val/``; both numbers are recorded.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..errors import ConfigError
from ..validation import check_int
from ..vision.recipes import Recipe
from .data import (
    CROP_SIZE,
    IMAGENET_CLASSES,
    RESIZE_SIZE,
    ImageFolderDataset,
    ImageNetLoader,
    Split,
    holdout_split,
    limit_per_class,
    scan_imagenet,
)

ENV_ROOT = "BCPD_SIM_IMAGENET"


@dataclass
class ImageNetBundle:
    """Splits of an ImageFolder tree plus the transform sizes (the trainer's ``data``)."""

    train: Split
    val: Split | None
    test: Split
    num_classes: int
    crop_size: int = CROP_SIZE
    resize_size: int = RESIZE_SIZE
    source: str = "imagenet"
    augment_default: bool = True
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def has_p_star(self) -> bool:
        return False


def resolve_root(data_dir: str | None) -> Path:
    """``data_dir``, else ``$BCPD_SIM_IMAGENET``; a one-line error when neither is set."""
    root = data_dir or os.environ.get(ENV_ROOT)
    if not root:
        raise ConfigError(f"no ImageNet folder: pass --data-dir or set ${ENV_ROOT}")
    return Path(root)


def load_imagenet(
    data_dir: str | None = None,
    *,
    num_classes: int | None = IMAGENET_CLASSES,
    val_per_class: int = 10,
    train_limit_per_class: int | None = None,
    test_limit_per_class: int | None = None,
    data_seed: int = 0,
    strict_wnids: bool = True,
    crop_size: int = CROP_SIZE,
    resize_size: int = RESIZE_SIZE,
) -> ImageNetBundle:
    """Scan the tree, limit it (smoke runs) and hold out the checkpoint-selection split."""
    root = resolve_root(data_dir)
    train, test = scan_imagenet(root, num_classes=num_classes, strict_wnids=strict_wnids)
    train = limit_per_class(train, train_limit_per_class)
    test = limit_per_class(test, test_limit_per_class)
    train, val = holdout_split(train, val_per_class, seed=data_seed)
    info = {
        "source": "imagenet",
        "root": str(root.resolve()),
        "n_train": len(train),
        "n_val": 0 if val is None else len(val),
        "n_test": len(test),
        "val": f"{val_per_class} images per class held out of train/ (seed {data_seed})",
        "test": "the official validation set (val/)",
        "crop_size": crop_size,
        "resize_size": resize_size,
    }
    return ImageNetBundle(train, val, test, len(train.classes), crop_size, resize_size, info=info)


def make_imagenet_loaders(
    data: ImageNetBundle,
    recipe: Recipe,
    device: torch.device,
    *,
    seed: int,
    augment: bool | None = None,
    channels_last: bool = False,
    num_workers: int = 0,
    rank: int = 0,
    world_size: int = 1,
) -> tuple[ImageNetLoader, ImageNetLoader | None, ImageNetLoader]:
    """Shuffled, augmented train loader (global batch ``recipe.batch_size``) and sharded,
    in-order evaluation loaders (``recipe.eval_batch_size`` split over the ranks)."""
    check_int("num_workers", num_workers, minimum=0)
    augment = data.augment_default if augment is None else augment
    sizes = {"crop_size": data.crop_size, "resize_size": data.resize_size}
    common = dict(
        channels_last=channels_last, num_workers=num_workers, rank=rank, world_size=world_size
    )
    train = ImageNetLoader(
        ImageFolderDataset(data.train, augment=augment, seed=seed, **sizes),
        recipe.batch_size,
        device,
        shuffle=True,
        drop_last=len(data.train) >= 2 * recipe.batch_size,
        seed=seed,
        **common,
    )

    def eval_loader(split: Split | None) -> ImageNetLoader | None:
        if split is None:
            return None
        ds = ImageFolderDataset(split, augment=False, **sizes)
        return ImageNetLoader(ds, recipe.eval_batch_size, device, **common)

    return train, eval_loader(data.val), eval_loader(data.test)
