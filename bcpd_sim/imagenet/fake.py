"""A tiny ImageNet-shaped ImageFolder of generated JPEGs, for tests and smoke runs.

Each class gets its own mean colour plus noise, so a small network can learn something on it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..validation import check_int


def fake_wnids(num_classes: int) -> list[str]:
    """WordNet-id-shaped folder names ``n00000000``, ``n00000001``, ... (already sorted)."""
    return [f"n{k:08d}" for k in range(num_classes)]


def write_fake_imagefolder(
    root: str | Path,
    *,
    num_classes: int = 3,
    train_per_class: int = 6,
    val_per_class: int = 2,
    size: tuple[int, int] = (40, 32),
    seed: int = 0,
) -> Path:
    """Write ``root/{train,val}/<wnid>/*.JPEG`` (width x height ``size``, varying by +-25%)."""
    check_int("num_classes", num_classes, minimum=1)
    root = Path(root)
    rng = np.random.default_rng(seed)
    colours = rng.integers(30, 226, size=(num_classes, 3))
    from PIL import Image

    for split, count in (("train", train_per_class), ("val", val_per_class)):
        for k, wnid in enumerate(fake_wnids(num_classes)):
            folder = root / split / wnid
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                w = int(size[0] * rng.uniform(0.75, 1.25))
                h = int(size[1] * rng.uniform(0.75, 1.25))
                noise = rng.normal(0, 25, size=(h, w, 3))
                pixels = np.clip(colours[k] + noise, 0, 255).astype(np.uint8)
                Image.fromarray(pixels).save(folder / f"{wnid}_{i}.JPEG", quality=90)
    return root
