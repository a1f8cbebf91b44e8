"""The data a CIFAR run trains on: a source's train / validation / test splits and their loaders."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..errors import ConfigError
from ..validation import check_choice
from .data import ImageDataset, load_cifar100, split_validation
from .pipeline import DeviceLoader
from .recipes import Recipe

DATA_SOURCES = ("cifar100", "synthetic")


@dataclass
class DataBundle:
    """Train / validation / test splits of one data source, plus what the loop needs to know."""

    train: ImageDataset
    val: ImageDataset | None
    test: ImageDataset
    num_classes: int
    source: str
    augment_default: bool
    info: dict = field(default_factory=dict)

    @property
    def has_p_star(self) -> bool:
        return self.test.p_star is not None


def load_data(
    data: str = "cifar100",
    *,
    data_dir: str | None = None,
    download: bool = False,
    synthetic_preset: str = "easy",
    num_classes: int | None = None,
    val_size: int = 5000,
    train_limit: int | None = None,
    test_limit: int | None = None,
    data_seed: int = 0,
) -> DataBundle:
    """Load ``data`` ("cifar100" or "synthetic"), limit it and carve the validation split.

    The limits apply before the split (``train_limit`` images are split into train and val).
    Synthetic data (default 100 classes, 50,000 / 10,000 images, or the limits) is drawn from the
    world seeded by ``data_seed``; it comes with exact p* and without augmentation by default.
    """
    check_choice("data", data, DATA_SOURCES)
    if data == "cifar100":
        if num_classes not in (None, 100):
            raise ConfigError("num_classes applies to synthetic data only (CIFAR-100 has 100)")
        train, test = load_cifar100(data_dir, download=download)
        train, test = train.head(train_limit), test.head(test_limit)
        info: dict[str, Any] = {"source": "cifar100"}
        augment_default = True
    else:
        from .synthetic import make_synthetic, spec_dict

        train, test, world = make_synthetic(
            synthetic_preset,
            n_train=train_limit or 50_000,
            n_test=test_limit or 10_000,
            seed=data_seed,
            num_classes=num_classes,
        )
        info = {"source": "synthetic", "preset": synthetic_preset, "spec": spec_dict(world.spec)}
        info["bayes_test_acc"] = float(np.mean(test.p_star.argmax(1) == test.labels))
        augment_default = False
    train, val = split_validation(train, val_size, seed=data_seed)
    info.update(n_train=len(train), n_val=0 if val is None else len(val), n_test=len(test))
    return DataBundle(train, val, test, test.num_classes, data, augment_default, info)


def load_for_recipe(recipe: Recipe, **data_options: Any) -> DataBundle:
    """:func:`load_data` with the recipe's validation size and image limits."""
    return load_data(
        **data_options,
        val_size=recipe.val_size,
        train_limit=recipe.train_limit,
        test_limit=recipe.test_limit,
    )


def make_loaders(
    data: DataBundle,
    recipe: Recipe,
    device: torch.device,
    *,
    seed: int,
    augment: bool | None = None,
    channels_last: bool = False,
    rank: int = 0,
    world_size: int = 1,
) -> tuple[DeviceLoader, DeviceLoader | None, DeviceLoader]:
    """Device-resident loaders: shuffled (and augmented) train, in-order val and test; with
    ``world_size`` > 1, this rank's slice of each global batch and its share of val and test."""
    augment = data.augment_default if augment is None else augment
    train = DeviceLoader(
        data.train,
        recipe.batch_size,
        device,
        shuffle=True,
        augment=augment,
        drop_last=len(data.train) >= 2 * recipe.batch_size,
        seed=seed,
        channels_last=channels_last,
        return_index=True,
        rank=rank,
        world_size=world_size,
    )

    def eval_loader(ds: ImageDataset | None) -> DeviceLoader | None:
        if ds is None:
            return None
        return DeviceLoader(
            ds,
            recipe.eval_batch_size,
            device,
            channels_last=channels_last,
            return_index=True,
            rank=rank,
            world_size=world_size,
        )

    return train, eval_loader(data.val), eval_loader(data.test)
