"""CIFAR-100 in its official python layout, plus a writer of small datasets in that layout.

The official archive ``cifar-100-python.tar.gz`` unpacks to a folder ``cifar-100-python/`` holding
three pickles: ``train`` and ``test`` (keys ``data``: N x 3072 uint8, channel-major, i.e. 1024 red
then 1024 green then 1024 blue values per image; ``fine_labels``; ``coarse_labels``) and ``meta``
(``fine_label_names``, ``coarse_label_names``). The files were pickled by Python 2, so their keys
may come back as ``bytes``; both spellings are accepted.

The data folder comes from an explicit argument or the ``BCPD_SIM_CIFAR100`` environment variable;
it may be the ``cifar-100-python`` folder itself or its parent. :func:`download_cifar100` fetches the
official archive (when online), checks its size and md5 before extracting anything, and extracts it.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import shutil
import tarfile
import urllib.request
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ..errors import ConfigError
from ..io import atomic_path, atomic_write
from ..validation import check_int

ENV_VAR = "BCPD_SIM_CIFAR100"
ARCHIVE_URL = "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz"
ARCHIVE_NAME = "cifar-100-python.tar.gz"
ARCHIVE_SIZE = 169_001_437
ARCHIVE_MD5 = "eb9058c3a382ffc7106e4002c42a8d85"
FOLDER_NAME = "cifar-100-python"
IMAGE_SHAPE = (3, 32, 32)

HOW_TO_OBTAIN = (
    f"get the official archive {ARCHIVE_NAME} ({ARCHIVE_SIZE:,} bytes, md5 {ARCHIVE_MD5}) from "
    f"{ARCHIVE_URL}, extract it, and pass its folder with --data-dir or the {ENV_VAR} environment "
    "variable (or add --download on a machine that is online)"
)


@dataclass
class ImageDataset:
    """Images (N, 3, 32, 32) with integer labels, as held in host memory.

    ``images`` is uint8 in 0..255 (real CIFAR) or float32 in [0, 1] (synthetic data, kept in
    float so that the exact BCPD stays exact). ``p_star`` (N, K) float64 is the exact Bayes
    conditional probability p*(y | image) when known, else None. ``indices`` are the rows of the
    source split each image came from (used to carve validation splits reproducibly).
    """

    images: np.ndarray
    labels: np.ndarray
    num_classes: int
    class_names: list[str] = field(default_factory=list)
    p_star: np.ndarray | None = None
    name: str = "dataset"
    indices: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.images.ndim != 4 or self.images.shape[1:] != IMAGE_SHAPE:
            raise ConfigError(
                f"{self.name}: images must have shape (N, 3, 32, 32), got {self.images.shape}"
            )
        if self.images.dtype not in (np.uint8, np.float32):
            raise ConfigError(
                f"{self.name}: images must be uint8 or float32, got {self.images.dtype}"
            )
        self.labels = np.asarray(self.labels, dtype=np.int64)
        if self.labels.shape != (len(self.images),):
            raise ConfigError(
                f"{self.name}: {len(self.labels)} labels for {len(self.images)} images"
            )
        if len(self.labels) and (self.labels.min() < 0 or self.labels.max() >= self.num_classes):
            raise ConfigError(f"{self.name}: labels must lie in [0, {self.num_classes})")
        if self.p_star is not None and self.p_star.shape != (len(self.images), self.num_classes):
            raise ConfigError(f"{self.name}: p_star must have shape (N, {self.num_classes})")
        if self.indices is None:
            self.indices = np.arange(len(self.images))

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, rows: np.ndarray, name: str | None = None) -> ImageDataset:
        """The images at ``rows`` (a new dataset; arrays are copied)."""
        rows = np.asarray(rows)
        return replace(
            self,
            images=self.images[rows],
            labels=self.labels[rows],
            p_star=None if self.p_star is None else self.p_star[rows],
            indices=self.indices[rows],
            name=name or self.name,
        )

    def head(self, limit: int | None) -> ImageDataset:
        """The first ``limit`` images (all when ``limit`` is None or not smaller than N)."""
        if limit is None or limit >= len(self):
            return self
        return self.subset(np.arange(check_int("limit", limit, minimum=1)))


def split_validation(
    dataset: ImageDataset, val_size: int, seed: int
) -> tuple[ImageDataset, ImageDataset | None]:
    """Carve a seeded random validation split of ``val_size`` images out of a training set.

    Returns ``(train, val)``; ``val`` is None when ``val_size`` is 0. The test set is never used
    for selection: this is where the validation images come from.
    """
    val_size = check_int("val_size", val_size, minimum=0)
    if val_size == 0:
        return dataset, None
    if val_size >= len(dataset):
        raise ConfigError(
            f"val_size must be smaller than the training set ({len(dataset)} images), got {val_size}"
        )
    perm = np.random.default_rng([int(seed), 0xC1FA]).permutation(len(dataset))
    val_rows, train_rows = np.sort(perm[:val_size]), np.sort(perm[val_size:])
    return (
        dataset.subset(train_rows, name=f"{dataset.name}-train"),
        dataset.subset(val_rows, name=f"{dataset.name}-val"),
    )


# --------------------------------------------------------------------------------------- reading


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """The CIFAR-100 folder from ``data_dir`` or ``$BCPD_SIM_CIFAR100``; error if neither is set."""
    if data_dir is None or str(data_dir) == "":
        data_dir = os.environ.get(ENV_VAR) or None
    if data_dir is None:
        raise ConfigError(
            f"no CIFAR-100 data folder given (--data-dir or {ENV_VAR}): {HOW_TO_OBTAIN}"
        )
    return Path(data_dir).expanduser()


def find_cifar100_folder(data_dir: str | os.PathLike) -> Path:
    """The folder holding train/test/meta: ``data_dir`` itself or ``data_dir/cifar-100-python``."""
    data_dir = Path(data_dir)
    for candidate in (data_dir, data_dir / FOLDER_NAME):
        if all((candidate / part).is_file() for part in ("train", "test", "meta")):
            return candidate
    if not data_dir.exists():
        raise FileNotFoundError(f"CIFAR-100 data folder {data_dir} does not exist: {HOW_TO_OBTAIN}")
    raise FileNotFoundError(
        f"CIFAR-100 data folder {data_dir} has no train/test/meta files (nor a {FOLDER_NAME}/ "
        f"folder holding them): {HOW_TO_OBTAIN}"
    )


def _unpickle(path: Path, what: str = "CIFAR-100", how: str = HOW_TO_OBTAIN) -> dict[str, object]:
    try:
        with open(path, "rb") as fh:
            obj = pickle.load(fh, encoding="latin1")
    except Exception as exc:  # truncated or not a pickle at all
        raise ConfigError(f"{what} file {path} is unreadable ({exc}); {how}") from None
    if not isinstance(obj, dict):
        raise ConfigError(f"{what} file {path} does not hold a dict; {how}")
    return {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in obj.items()}


def _names(values) -> list[str]:
    return [v.decode("latin1") if isinstance(v, bytes) else str(v) for v in values]


def _read_split(path: Path, num_classes: int, class_names: list[str], name: str) -> ImageDataset:
    obj = _unpickle(path)
    for key in ("data", "fine_labels"):
        if key not in obj:
            raise ConfigError(f"CIFAR-100 file {path} lacks the key {key!r}; {HOW_TO_OBTAIN}")
    data = np.asarray(obj["data"])
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        raise ConfigError(
            f"CIFAR-100 file {path}: 'data' must be N x 3072 uint8, got {data.shape} {data.dtype}; "
            f"{HOW_TO_OBTAIN}"
        )
    labels = np.asarray(obj["fine_labels"], dtype=np.int64)
    if labels.shape != (len(data),) or (
        len(labels) and not 0 <= labels.min() <= labels.max() < num_classes
    ):
        raise ConfigError(f"CIFAR-100 file {path}: bad 'fine_labels'; {HOW_TO_OBTAIN}")
    images = np.ascontiguousarray(data.reshape(len(data), *IMAGE_SHAPE))
    return ImageDataset(images, labels, num_classes, list(class_names), name=name)


def load_cifar100(
    data_dir: str | os.PathLike | None = None, *, download: bool = False
) -> tuple[ImageDataset, ImageDataset]:
    """Read the official CIFAR-100 python layout; returns ``(train, test)`` with fine labels.

    ``data_dir`` defaults to ``$BCPD_SIM_CIFAR100``. With ``download=True`` a missing dataset is
    fetched with :func:`download_cifar100` first. Missing or corrupt files raise
    FileNotFoundError / ConfigError with instructions for obtaining the dataset.
    """
    root = resolve_data_dir(data_dir)
    if download:
        try:
            find_cifar100_folder(root)
        except FileNotFoundError:
            download_cifar100(root)
    folder = find_cifar100_folder(root)
    meta = _unpickle(folder / "meta")
    if "fine_label_names" not in meta:
        raise ConfigError(
            f"CIFAR-100 file {folder / 'meta'} lacks 'fine_label_names'; {HOW_TO_OBTAIN}"
        )
    class_names = _names(meta["fine_label_names"])
    num_classes = len(class_names)
    train = _read_split(folder / "train", num_classes, class_names, "cifar100-train")
    test = _read_split(folder / "test", num_classes, class_names, "cifar100-test")
    return train, test


# ----------------------------------------------------------------------------------- downloading


def file_md5(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """The md5 hex digest of a file, read in chunks."""
    digest = hashlib.md5()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def verify_archive(
    path: str | os.PathLike,
    *,
    size: int = ARCHIVE_SIZE,
    md5: str = ARCHIVE_MD5,
    how: str = HOW_TO_OBTAIN,
) -> None:
    """Raise ConfigError unless the file at ``path`` has exactly ``size`` bytes and md5 ``md5``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"archive {path} does not exist; {how}")
    actual_size = path.stat().st_size
    if actual_size != size:
        raise ConfigError(
            f"archive {path} has {actual_size:,} bytes, expected {size:,} (truncated or not the "
            f"official file); {how}"
        )
    actual_md5 = file_md5(path)
    if actual_md5 != md5:
        raise ConfigError(
            f"archive {path} has md5 {actual_md5}, expected {md5} (corrupt download); {how}"
        )


def extract_archive(
    archive: str | os.PathLike,
    root: str | os.PathLike,
    *,
    size: int = ARCHIVE_SIZE,
    md5: str = ARCHIVE_MD5,
    how: str = HOW_TO_OBTAIN,
    find=None,
    folder_name: str = FOLDER_NAME,
) -> Path:
    """Verify ``archive`` (size, then md5) and only then extract it under ``root``.

    ``find`` (default :func:`find_cifar100_folder`) locates the data folder inside the archive,
    which is moved to ``root/folder_name``; ``how`` is the instruction that errors end with.

    Members must stay inside ``root`` (no absolute paths, no ``..``, regular files and folders
    only). Extraction goes to a temporary folder renamed into place, so an interrupted extraction
    never leaves a half-written dataset. Returns the folder holding train/test/meta.
    """
    verify_archive(archive, size=size, md5=md5, how=how)
    find = find or find_cifar100_folder
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    staging = root / f".extract-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        inside = staging.resolve()
        with tarfile.open(archive, "r:gz") as tar:
            members = tar.getmembers()
            for m in members:
                target = (staging / m.name).resolve()
                if not (m.isfile() or m.isdir()) or not target.is_relative_to(inside):
                    raise ConfigError(f"archive {archive} has an unsafe member {m.name!r}")
            safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
            tar.extractall(staging, members=members, **safe)
        extracted = find(staging)
        final = root / folder_name
        if final.exists():
            shutil.rmtree(final)
        os.replace(extracted, final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return final


def download_cifar100(
    root: str | os.PathLike,
    *,
    url: str = ARCHIVE_URL,
    size: int = ARCHIVE_SIZE,
    md5: str = ARCHIVE_MD5,
) -> Path:
    """Download the official archive into ``root``, verify size and md5, then extract it.

    An archive already present in ``root`` is verified and reused; a download that fails the
    checks is deleted, never kept under the archive's name. Returns the data folder.
    """
    root = Path(root)
    archive = root / ARCHIVE_NAME
    if not archive.is_file():
        root.mkdir(parents=True, exist_ok=True)
        with atomic_path(archive) as tmp:
            try:
                with urllib.request.urlopen(url, timeout=60) as response, open(tmp, "wb") as out:
                    shutil.copyfileobj(response, out, length=1 << 20)
            except OSError as exc:
                raise ConfigError(f"could not download {url} ({exc}); {HOW_TO_OBTAIN}") from None
            verify_archive(tmp, size=size, md5=md5)
    return extract_archive(archive, root, size=size, md5=md5)


# --------------------------------------------------------------------------------------- writing


def write_cifar100(
    directory: str | os.PathLike,
    train_images: np.ndarray,
    train_labels: np.ndarray,
    test_images: np.ndarray,
    test_labels: np.ndarray,
    *,
    class_names: list[str] | None = None,
    num_coarse: int = 20,
    bytes_keys: bool = False,
) -> Path:
    """Write a dataset in the official CIFAR-100 python layout under ``directory/cifar-100-python``.

    Images are (N, 3, 32, 32) or (N, 3072) uint8; labels are fine labels. Coarse labels are
    ``fine % num_coarse`` (a placeholder for tests). ``bytes_keys=True`` writes ``bytes`` keys,
    as Python 2 pickles read with ``encoding="bytes"`` would have them. Files are written
    atomically. Returns the ``cifar-100-python`` folder.
    """
    folder = Path(directory) / FOLDER_NAME
    folder.mkdir(parents=True, exist_ok=True)
    n_fine = len(class_names) if class_names else 100
    names = list(class_names) if class_names else [f"class_{i:03d}" for i in range(n_fine)]

    def key(k: str):
        return k.encode() if bytes_keys else k

    def dump(path: Path, obj: dict) -> None:
        obj = {key(k): v for k, v in obj.items()}
        atomic_write(path, lambda p: p.write_bytes(pickle.dumps(obj, protocol=2)))

    for split, images, labels in (
        ("train", train_images, train_labels),
        ("test", test_images, test_labels),
    ):
        images = np.asarray(images)
        if images.dtype != np.uint8:
            raise ConfigError(f"{split} images must be uint8, got {images.dtype}")
        data = np.ascontiguousarray(images.reshape(len(images), 3072))
        fine = [int(v) for v in labels]
        dump(
            folder / split,
            {
                "filenames": [f"{split}_{i:05d}.png" for i in range(len(data))],
                "batch_label": f"{split} batch",
                "fine_labels": fine,
                "coarse_labels": [v % num_coarse for v in fine],
                "data": data,
            },
        )
    dump(
        folder / "meta",
        {
            "fine_label_names": names,
            "coarse_label_names": [f"superclass_{i:02d}" for i in range(num_coarse)],
        },
    )
    return folder


def write_fake_cifar100(
    directory: str | os.PathLike,
    *,
    n_train: int = 500,
    n_test: int = 100,
    num_classes: int = 100,
    seed: int = 0,
    noise: float = 40.0,
    bytes_keys: bool = False,
) -> Path:
    """Write a small, learnable stand-in for CIFAR-100 in the official layout (for tests/demos).

    Each class has a random smooth colour pattern; images are that pattern plus pixel noise of
    standard deviation ``noise`` (in 0..255 units), rounded to uint8.
    """
    n_train = check_int("n_train", n_train, minimum=1)
    n_test = check_int("n_test", n_test, minimum=1)
    num_classes = check_int("num_classes", num_classes, minimum=2)
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(40, 215, size=(num_classes, 3, 4, 4))
    patterns = np.repeat(np.repeat(coarse, 8, axis=2), 8, axis=3)

    def draw(n: int) -> tuple[np.ndarray, np.ndarray]:
        labels = rng.integers(0, num_classes, size=n)
        images = patterns[labels] + noise * rng.standard_normal((n, *IMAGE_SHAPE))
        return np.clip(np.rint(images), 0, 255).astype(np.uint8), labels

    (xtr, ytr), (xte, yte) = draw(n_train), draw(n_test)
    names = [f"class_{i:03d}" for i in range(num_classes)]
    return write_cifar100(directory, xtr, ytr, xte, yte, class_names=names, bytes_keys=bytes_keys)


def make_archive(folder: str | os.PathLike, archive: str | os.PathLike) -> Path:
    """Pack a ``cifar-100-python`` folder into a .tar.gz laid out like the official archive."""
    folder = Path(folder)

    def pack(tmp: Path) -> None:
        with tarfile.open(tmp, "w:gz") as tar:
            tar.add(folder, arcname=FOLDER_NAME)

    return atomic_write(archive, pack)
