"""ImageNet-1k in the ImageFolder layout, decoded and augmented with Pillow in DataLoader workers.

Layout (what torchvision's ``ImageFolder`` and every KD code base read)::

    ROOT/train/<wnid>/*.JPEG    1,281,167 images in 1,000 folders
    ROOT/val/<wnid>/*.JPEG      50,000 images in the same 1,000 folders

Class ``k`` is the k-th wnid in sorted order (n01440764 = 0 ... n15075141 = 999), the order
torchvision's ``ImageFolder`` and its pretrained weights use. A missing folder, a class folder
without images, train/val class sets that differ, or the raw validation tarball's flat ``val/``
(images not yet sorted into class folders) each give a one-line :class:`ConfigError` saying what
to fix.

Transforms (torchvision's, re-implemented on Pillow): training = random-resized crop (scale 0.08-1,
aspect 3/4-4/3, 10 tries then a centre crop) to 224 + horizontal flip with probability 0.5;
evaluation = shorter side resized to 256 + centre crop 224; bilinear resampling. Each image's
random draws come from a generator seeded by (seed, epoch, image index) only, so the augmented
batch does not depend on which worker or which rank decodes it: a run on W processes sees exactly
the images a one-process run sees. Normalisation (ImageNet mean/std) happens on the device, after
the uint8 batch is copied there, so the host moves 1 byte per pixel.

Why Pillow in worker processes: torchvision does not import beside the CPU torch build kept on the
development machines, and DALI / nvjpeg-based readers need CUDA and a matching wheel. Pillow (13.x
here) is a well-kept, wheel-installed library with libjpeg-turbo inside; DataLoader worker
processes give the parallelism (one worker decodes ~100-200 ImageNet JPEGs/s with crop and resize,
so 8-12 workers per GPU feed a ResNet-50 in bf16). GPU JPEG decoding is not used.

Distributed runs: :class:`ImageNetLoader` takes ``rank`` and ``world_size``; every rank draws the
same permutation of the epoch (seeded by (seed, epoch)), cuts the same global batches of
``batch_size`` images and decodes only its own contiguous slice of each, so the global batch is the
recipe's whatever the number of processes. Evaluation shards the images round-robin (rank r takes
r, r + W, ...): no image is counted twice, and the summed metrics are exact.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from ..errors import ConfigError
from ..validation import check_int

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
IMAGENET_CLASSES = 1000
CROP_SIZE = 224
RESIZE_SIZE = 256
EXTENSIONS = (".jpeg", ".jpg", ".png")
SCALE = (0.08, 1.0)
RATIO = (3.0 / 4.0, 4.0 / 3.0)
WNID = re.compile(r"^n\d{8}$")


# ------------------------------------------------------------------------------------ layout


@dataclass(frozen=True)
class Split:
    """One split: image paths, their labels (sorted-wnid index) and the class names."""

    paths: tuple[str, ...]
    labels: np.ndarray
    classes: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def p_star(self) -> None:
        """Real images have no known Bayes posterior (the trainers check this attribute)."""
        return None

    def subset(self, rows: Sequence[int] | np.ndarray) -> Split:
        rows = np.asarray(rows, dtype=np.int64)
        return Split(tuple(self.paths[i] for i in rows), self.labels[rows], self.classes)


def _is_image(name: str) -> bool:
    return name.lower().endswith(EXTENSIONS)


def scan_split(root: str | Path, split: str, *, classes: Sequence[str] | None = None) -> Split:
    """Read ``root/split/<class>/<image>``; classes sorted by name unless ``classes`` is given."""
    folder = Path(root) / split
    if not folder.is_dir():
        raise ConfigError(
            f"ImageNet folder {folder} does not exist; expected {Path(root)}/{{train,val}}/<wnid>/"
            "*.JPEG"
        )
    entries = sorted(os.scandir(folder), key=lambda e: e.name)
    found = [e.name for e in entries if e.is_dir()]
    loose = [e.name for e in entries if e.is_file() and _is_image(e.name)]
    if loose and not found:
        raise ConfigError(
            f"{folder} holds {len(loose)} images but no class folders: sort them into "
            f"{split}/<wnid>/ (for the official validation set, e.g. with the devkit's "
            "ground truth or valprep.sh)"
        )
    if not found:
        raise ConfigError(f"{folder} has no class folders; expected {split}/<wnid>/*.JPEG")
    if classes is None:
        classes = found
    elif sorted(found) != sorted(classes):
        missing = sorted(set(classes) - set(found))[:3]
        extra = sorted(set(found) - set(classes))[:3]
        raise ConfigError(
            f"{folder} has {len(found)} class folders, train has {len(classes)}; "
            f"missing {missing or 'none'}, unexpected {extra or 'none'}"
        )
    paths: list[str] = []
    labels: list[int] = []
    for label, name in enumerate(classes):
        files = sorted(
            e.path for e in os.scandir(folder / name) if e.is_file() and _is_image(e.name)
        )
        if not files:
            raise ConfigError(
                f"class folder {folder / name} holds no images ({', '.join(EXTENSIONS)})"
            )
        paths += files
        labels += [label] * len(files)
    return Split(tuple(paths), np.asarray(labels, dtype=np.int64), tuple(classes))


def scan_imagenet(
    root: str | Path, *, num_classes: int | None = IMAGENET_CLASSES, strict_wnids: bool = True
) -> tuple[Split, Split]:
    """The train and val splits of an ImageFolder tree, with the same sorted class list.

    ``num_classes`` (1,000 for ImageNet-1k; None: any) and ``strict_wnids`` (folder names look
    like ``n01440764``) guard against pointing at the wrong folder.
    """
    if root is None or not Path(root).is_dir():
        raise ConfigError(
            f"ImageNet root {root!r} is not a folder; pass --data-dir or set $BCPD_SIM_IMAGENET"
        )
    train = scan_split(root, "train")
    if num_classes is not None and len(train.classes) != num_classes:
        raise ConfigError(
            f"{Path(root) / 'train'} has {len(train.classes)} class folders, expected {num_classes}"
        )
    if strict_wnids:
        bad = [c for c in train.classes if not WNID.match(c)]
        if bad:
            raise ConfigError(
                f"class folder names must be WordNet ids like n01440764; found {bad[0]!r} "
                f"in {Path(root) / 'train'}"
            )
    val = scan_split(root, "val", classes=train.classes)
    return train, val


def holdout_split(split: Split, per_class: int, seed: int) -> tuple[Split, Split | None]:
    """Carve ``per_class`` images of every class (seeded) out of ``split``: (rest, holdout).

    The holdout selects the best epoch, so the official validation set stays a test set.
    """
    per_class = check_int("val_per_class", per_class, minimum=0)
    if per_class == 0:
        return split, None
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 17]))
    held: list[np.ndarray] = []
    for label in range(len(split.classes)):
        rows = np.flatnonzero(split.labels == label)
        if len(rows) <= per_class:
            raise ConfigError(
                f"val_per_class={per_class} leaves no training images of class "
                f"{split.classes[label]} ({len(rows)} images)"
            )
        held.append(np.sort(rng.choice(rows, per_class, replace=False)))
    hold = np.concatenate(held)
    keep = np.setdiff1d(np.arange(len(split)), hold)
    return split.subset(keep), split.subset(hold)


def limit_per_class(split: Split, limit: int | None) -> Split:
    """The first ``limit`` images (in sorted file order) of each class; all when None."""
    if limit is None:
        return split
    limit = check_int("limit per class", limit, minimum=1)
    rows = [np.flatnonzero(split.labels == k)[:limit] for k in range(len(split.classes))]
    return split.subset(np.concatenate(rows))


# -------------------------------------------------------------------------------- transforms


def sample_resized_crop(
    width: int, height: int, rng: np.random.Generator, scale=SCALE, ratio=RATIO
) -> tuple[int, int, int, int]:
    """torchvision's RandomResizedCrop box ``(left, top, w, h)``: 10 tries, then a centre crop."""
    area = width * height
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target = area * rng.uniform(scale[0], scale[1])
        aspect = math.exp(rng.uniform(*log_ratio))
        w = int(round(math.sqrt(target * aspect)))
        h = int(round(math.sqrt(target / aspect)))
        if 0 < w <= width and 0 < h <= height:
            top = int(rng.integers(0, height - h + 1))
            left = int(rng.integers(0, width - w + 1))
            return left, top, w, h
    in_ratio = width / height
    if in_ratio < min(ratio):
        w, h = width, int(round(width / min(ratio)))
    elif in_ratio > max(ratio):
        w, h = int(round(height * max(ratio))), height
    else:
        w, h = width, height
    return (width - w) // 2, (height - h) // 2, w, h


def train_transform(img, rng: np.random.Generator, size: int = CROP_SIZE):
    """Random-resized crop to ``size`` x ``size`` and a horizontal flip with probability 1/2."""
    from PIL import Image

    left, top, w, h = sample_resized_crop(img.width, img.height, rng)
    out = img.resize((size, size), Image.BILINEAR, box=(left, top, left + w, top + h))
    if rng.random() < 0.5:
        out = out.transpose(Image.FLIP_LEFT_RIGHT)
    return out


def eval_transform(img, size: int = CROP_SIZE, resize: int = RESIZE_SIZE):
    """Shorter side to ``resize`` (torchvision's rounding), then the centre ``size`` crop."""
    from PIL import Image

    w, h = img.size
    if w <= h:
        nw, nh = resize, int(resize * h / w)
    else:
        nw, nh = int(resize * w / h), resize
    img = img.resize((nw, nh), Image.BILINEAR)
    top = int(round((nh - size) / 2.0))
    left = int(round((nw - size) / 2.0))
    return img.crop((left, top, left + size, top + size))


def sample_generator(seed: int, epoch: int, index: int) -> np.random.Generator:
    """The random stream of one image in one epoch (independent of worker and rank)."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), int(epoch), int(index)]))


class ImageFolderDataset(Dataset):
    """Decodes ``split`` images with Pillow; ``dataset[(index, epoch)]`` -> (HWC uint8, label,
    index). Augmented (train transform) when ``augment``, else the evaluation transform."""

    def __init__(
        self,
        split: Split,
        *,
        augment: bool,
        seed: int = 0,
        crop_size: int = CROP_SIZE,
        resize_size: int = RESIZE_SIZE,
    ) -> None:
        self.split = split
        self.augment = augment
        self.seed = int(seed)
        self.crop_size = check_int("crop_size", crop_size, minimum=1)
        self.resize_size = check_int("resize_size", resize_size, minimum=crop_size)

    def __len__(self) -> int:
        return len(self.split)

    def load(self, index: int, epoch: int = 0) -> np.ndarray:
        """The transformed image ``index`` of ``epoch`` as an (H, W, 3) uint8 array."""
        from PIL import Image

        path = self.split.paths[index]
        try:
            with Image.open(path) as raw:
                img = raw.convert("RGB")
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot decode image {path} ({exc})") from None
        if self.augment:
            img = train_transform(img, sample_generator(self.seed, epoch, index), self.crop_size)
        else:
            img = eval_transform(img, self.crop_size, self.resize_size)
        return np.array(img, dtype=np.uint8)

    def __getitem__(self, key: tuple[int, int]) -> tuple[np.ndarray, int, int]:
        index, epoch = key
        return self.load(index, epoch), int(self.split.labels[index]), int(index)


def _collate(items):
    images = torch.from_numpy(np.stack([it[0] for it in items]))
    labels = torch.tensor([it[1] for it in items], dtype=torch.int64)
    index = torch.tensor([it[2] for it in items], dtype=torch.int64)
    return images, labels, index


# ------------------------------------------------------------------------------------ batches


def global_batches(
    n: int, batch_size: int, *, shuffle: bool, seed: int, epoch: int, drop_last: bool
) -> list[np.ndarray]:
    """The epoch's global batches of image indices (a permutation seeded by (seed, epoch))."""
    if shuffle:
        rng = np.random.default_rng(np.random.SeedSequence([int(seed), int(epoch), 1]))
        order = rng.permutation(n)
    else:
        order = np.arange(n)
    stop = (n // batch_size) * batch_size if drop_last else n
    return [order[i : i + batch_size] for i in range(0, stop, batch_size)]


def rank_slice(batch: np.ndarray, rank: int, world_size: int) -> np.ndarray:
    """Rank ``rank``'s contiguous part of a global batch (sizes differ by at most one)."""
    return np.array_split(batch, world_size)[rank]


class ImageNetLoader:
    """Batches ``(x, y, idx)`` of an :class:`ImageFolderDataset` on ``device``.

    ``batch_size`` is the global batch; each of the ``world_size`` ranks gets its slice
    (training) or every ``world_size``-th image (evaluation, ``shuffle=False``). ``x`` is float32
    (B, 3, H, W), normalised, channels_last if asked (the HWC uint8 batch becomes NCHW by a view).
    Call :meth:`set_epoch` before iterating (it selects the permutation and the augmentation).
    """

    def __init__(
        self,
        dataset: ImageFolderDataset,
        batch_size: int,
        device: torch.device | str = "cpu",
        *,
        shuffle: bool = False,
        drop_last: bool = False,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        num_workers: int = 0,
        channels_last: bool = False,
        mean: tuple[float, float, float] = IMAGENET_MEAN,
        std: tuple[float, float, float] = IMAGENET_STD,
    ) -> None:
        self.dataset = dataset
        self.batch_size = check_int("batch_size", batch_size, minimum=1)
        self.world_size = check_int("world_size", world_size, minimum=1)
        self.rank = check_int("rank", rank, minimum=0)
        if self.batch_size < self.world_size:
            raise ConfigError(f"batch_size {batch_size} is smaller than the {world_size} processes")
        self.device = torch.device(device)
        self.shuffle = shuffle
        self.augment = dataset.augment
        self.drop_last = drop_last
        self.seed = int(seed)
        self.channels_last = channels_last
        self.num_workers = check_int("num_workers", num_workers, minimum=0)
        self.dataset_size = len(dataset)
        self.epoch = 0
        std_t = torch.tensor(std, dtype=torch.float32, device=self.device).view(1, 3, 1, 1)
        mean_t = torch.tensor(mean, dtype=torch.float32, device=self.device).view(1, 3, 1, 1)
        self.scale = 1.0 / 255.0 / std_t
        self.shift = -mean_t / std_t
        self._loader: DataLoader | None = None

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def _batches(self) -> list[np.ndarray]:
        if not self.shuffle:  # evaluation: round-robin shard, in order, batch_size / W per rank
            mine = np.arange(self.rank, self.dataset_size, self.world_size)
            step = max(1, self.batch_size // self.world_size)
            return [mine[i : i + step] for i in range(0, len(mine), step)]
        batches = global_batches(
            self.dataset_size,
            self.batch_size,
            shuffle=True,
            seed=self.seed,
            epoch=self.epoch,
            drop_last=self.drop_last,
        )
        if batches and len(batches[-1]) < self.world_size:  # no rank may get an empty slice
            batches = batches[:-1]
        return [rank_slice(b, self.rank, self.world_size) for b in batches]

    def __len__(self) -> int:
        return len(self._batches())

    def global_batch_len(self, i: int) -> int:
        """Images in global batch ``i`` of a shuffled pass (all ranks together)."""
        return min(self.batch_size, self.dataset_size - i * self.batch_size)

    @property
    def num_images(self) -> int:
        """Images this rank evaluates (its round-robin share) or trains on in one pass."""
        return self.images_per_epoch

    @property
    def images_per_epoch(self) -> int:
        """Images this rank sees in one pass."""
        return int(sum(len(b) for b in self._batches()))

    def _keys(self) -> list[list[tuple[int, int]]]:
        return [[(int(i), self.epoch) for i in b] for b in self._batches()]

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        loader = DataLoader(
            self.dataset,
            batch_sampler=self._keys(),
            num_workers=self.num_workers,
            collate_fn=_collate,
            pin_memory=self.device.type == "cuda",
            persistent_workers=False,
        )
        for images, labels, index in loader:
            images = images.to(self.device, non_blocking=True)
            x = torch.addcmul(self.shift, images.permute(0, 3, 1, 2).float(), self.scale)
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            else:
                x = x.contiguous()
            yield x, labels.to(self.device, non_blocking=True), index.to(self.device)
