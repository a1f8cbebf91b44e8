"""CIFAR-10 in its official python layout, and CIFAR-2x5 (its ten classes merged into two).

The official archive ``cifar-10-python.tar.gz`` (170,498,071 bytes, md5
``c58f30108f718f92721af3b95e74349a``) unpacks to ``cifar-10-batches-py/`` holding the pickles
``data_batch_1`` .. ``data_batch_5`` (training, 10,000 images each), ``test_batch`` and
``batches.meta`` (``label_names``). Each batch has ``data`` (N x 3072 uint8, channel-major) and
``labels``. The data folder comes from an argument or ``$BCPD_SIM_CIFAR10``; it may be the
``cifar-10-batches-py`` folder, its parent, or a folder holding only the archive (which is then
verified, size and md5, before anything is extracted). Verification, safe extraction and
unpickling are CIFAR-100's (:mod:`bcpd_sim.vision.data`).

CIFAR-2x5 (the paper's Table 4, after Mueller et al., "Subclass distillation"): classes 0-4
(airplane, automobile, bird, cat, deer) become class 0 and classes 5-9 (dog, frog, horse, ship,
truck) class 1.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np

from ..errors import ConfigError
from ..io import atomic_write
from .data import IMAGE_SHAPE, ImageDataset, _names, _unpickle, extract_archive

ENV_VAR = "BCPD_SIM_CIFAR10"
ARCHIVE_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
ARCHIVE_NAME = "cifar-10-python.tar.gz"
ARCHIVE_SIZE = 170_498_071
ARCHIVE_MD5 = "c58f30108f718f92721af3b95e74349a"
FOLDER_NAME = "cifar-10-batches-py"
TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
FILES = (*TRAIN_FILES, "test_batch", "batches.meta")
CLASS_NAMES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
GROUPS_2X5 = ((0, 1, 2, 3, 4), (5, 6, 7, 8, 9))

HOW_TO_OBTAIN = (
    f"get the official archive {ARCHIVE_NAME} ({ARCHIVE_SIZE:,} bytes, md5 {ARCHIVE_MD5}) from "
    f"{ARCHIVE_URL} and pass its folder (extracted or not) with --data-dir or the {ENV_VAR} "
    "environment variable"
)


def find_cifar10_folder(data_dir: str | os.PathLike) -> Path:
    """The folder holding the batches: ``data_dir`` itself or ``data_dir/cifar-10-batches-py``."""
    data_dir = Path(data_dir)
    for candidate in (data_dir, data_dir / FOLDER_NAME):
        if all((candidate / part).is_file() for part in FILES):
            return candidate
    if not data_dir.exists():
        raise FileNotFoundError(f"CIFAR-10 data folder {data_dir} does not exist: {HOW_TO_OBTAIN}")
    missing = [p for p in FILES if not (data_dir / FOLDER_NAME / p).is_file()]
    raise FileNotFoundError(
        f"CIFAR-10 data folder {data_dir} lacks {', '.join(missing)} (in itself or in "
        f"{FOLDER_NAME}/): {HOW_TO_OBTAIN}"
    )


def _read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    obj = _unpickle(path, "CIFAR-10", HOW_TO_OBTAIN)
    for key in ("data", "labels"):
        if key not in obj:
            raise ConfigError(f"CIFAR-10 file {path} lacks the key {key!r}; {HOW_TO_OBTAIN}")
    data = np.asarray(obj["data"])
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        raise ConfigError(
            f"CIFAR-10 file {path}: 'data' must be N x 3072 uint8, got {data.shape} {data.dtype}; "
            f"{HOW_TO_OBTAIN}"
        )
    labels = np.asarray(obj["labels"])
    if labels.shape != (len(data),) or (len(labels) and not 0 <= labels.min() <= labels.max() < 10):
        raise ConfigError(f"CIFAR-10 file {path}: bad 'labels'; {HOW_TO_OBTAIN}")
    return data.reshape(len(data), *IMAGE_SHAPE), labels.astype(np.int64)


def load_cifar10(
    data_dir: str | os.PathLike | None = None,
    *,
    size: int = ARCHIVE_SIZE,
    md5: str = ARCHIVE_MD5,
) -> tuple[ImageDataset, ImageDataset]:
    """Read the official CIFAR-10 python layout; returns ``(train, test)`` (50,000 / 10,000).

    When only the archive is present, it is verified (``size``, then ``md5``) and extracted
    first. Missing files raise FileNotFoundError, a wrong archive or a malformed pickle
    ConfigError; each message is one line saying how to get the dataset.
    """
    if data_dir is None or str(data_dir) == "":
        data_dir = os.environ.get(ENV_VAR) or None
    if data_dir is None:
        raise ConfigError(
            f"no CIFAR-10 data folder given (--data-dir or {ENV_VAR}): {HOW_TO_OBTAIN}"
        )
    root = Path(data_dir).expanduser()
    try:
        folder = find_cifar10_folder(root)
    except FileNotFoundError:
        if not (root / ARCHIVE_NAME).is_file():
            raise
        folder = extract_archive(
            root / ARCHIVE_NAME,
            root,
            size=size,
            md5=md5,
            how=HOW_TO_OBTAIN,
            find=find_cifar10_folder,
            folder_name=FOLDER_NAME,
        )
    meta = _unpickle(folder / "batches.meta", "CIFAR-10", HOW_TO_OBTAIN)
    if "label_names" not in meta or len(meta["label_names"]) != 10:
        raise ConfigError(
            f"CIFAR-10 file {folder / 'batches.meta'} lacks 10 'label_names'; {HOW_TO_OBTAIN}"
        )
    names = _names(meta["label_names"])
    parts = [_read_batch(folder / f) for f in TRAIN_FILES]
    x_tr = np.ascontiguousarray(np.concatenate([p[0] for p in parts]))
    y_tr = np.concatenate([p[1] for p in parts])
    x_te, y_te = _read_batch(folder / "test_batch")
    return (
        ImageDataset(x_tr, y_tr, 10, names, name="cifar10-train"),
        ImageDataset(np.ascontiguousarray(x_te), y_te, 10, names, name="cifar10-test"),
    )


def merge_classes(
    dataset: ImageDataset, groups=GROUPS_2X5, name: str | None = None
) -> ImageDataset:
    """The dataset with labels replaced by their group (p*, when known, summed per group)."""
    from ..mixtures.superclass import check_groups

    groups = check_groups([list(g) for g in groups], dataset.num_classes)
    group_of = np.empty(dataset.num_classes, dtype=np.int64)
    for g, members in enumerate(groups):
        group_of[list(members)] = g
    p_star = None
    if dataset.p_star is not None:
        p_star = np.stack([dataset.p_star[:, list(g)].sum(1) for g in groups], axis=1)
    names = [
        "+".join(dataset.class_names[k] for k in g) if dataset.class_names else f"group_{i}"
        for i, g in enumerate(groups)
    ]
    return ImageDataset(
        dataset.images,
        group_of[dataset.labels],
        len(groups),
        names,
        p_star=p_star,
        name=name or f"{dataset.name}-merged",
        indices=dataset.indices,
    )


def load_cifar2x5(
    data_dir: str | os.PathLike | None = None, **kwargs
) -> tuple[ImageDataset, ImageDataset]:
    """CIFAR-10 with classes 0-4 merged into class 0 and 5-9 into class 1."""
    train, test = load_cifar10(data_dir, **kwargs)
    return merge_classes(train, name="cifar2x5-train"), merge_classes(test, name="cifar2x5-test")


def write_cifar10(
    directory: str | os.PathLike,
    train_images: np.ndarray,
    train_labels: np.ndarray,
    test_images: np.ndarray,
    test_labels: np.ndarray,
    *,
    bytes_keys: bool = False,
) -> Path:
    """Write a dataset in the official CIFAR-10 python layout under ``directory/cifar-10-batches-py``.

    The training images are cut into five batches as in the official files (for tests and demos).
    """
    folder = Path(directory) / FOLDER_NAME
    folder.mkdir(parents=True, exist_ok=True)

    def dump(path: Path, obj: dict) -> None:
        obj = {(k.encode() if bytes_keys else k): v for k, v in obj.items()}
        atomic_write(path, lambda p: p.write_bytes(pickle.dumps(obj, protocol=2)))

    def batch(images, labels, label: str) -> dict:
        images = np.asarray(images)
        if images.dtype != np.uint8:
            raise ConfigError(f"images must be uint8, got {images.dtype}")
        data = np.ascontiguousarray(images.reshape(len(images), 3072))
        return {
            "batch_label": label,
            "labels": [int(v) for v in labels],
            "data": data,
            "filenames": [f"{label.replace(' ', '_')}_{i:05d}.png" for i in range(len(data))],
        }

    rows = np.array_split(np.arange(len(train_images)), 5)
    for i, r in enumerate(rows):
        dump(
            folder / TRAIN_FILES[i],
            batch(
                np.asarray(train_images)[r],
                np.asarray(train_labels)[r],
                f"training batch {i + 1} of 5",
            ),
        )
    dump(folder / "test_batch", batch(test_images, test_labels, "testing batch 1 of 1"))
    dump(
        folder / "batches.meta",
        {"label_names": list(CLASS_NAMES), "num_cases_per_batch": 10000, "num_vis": 3072},
    )
    return folder
