"""The device-resident input pipeline: batch augmentation and normalisation (run on CPU here)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bcpd_sim.vision.data import ImageDataset
from bcpd_sim.vision.pipeline import (
    CIFAR100_MEAN,
    CIFAR100_STD,
    DeviceLoader,
    epoch_generator,
    random_crop_flip,
)


def _candidates(image: np.ndarray) -> list[np.ndarray]:
    """All 9 x 9 x 2 crops (zero padding 4) and flips of one (C, H, W) image."""
    padded = np.pad(image, ((0, 0), (4, 4), (4, 4)))
    out = []
    for dy in range(9):
        for dx in range(9):
            crop = padded[:, dy : dy + 32, dx : dx + 32]
            out += [crop, crop[:, :, ::-1]]
    return out


def test_crop_flip_shapes_seeding_and_semantics():
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.integers(1, 256, size=(16, 3, 32, 32), dtype=np.uint8))
    a = random_crop_flip(x, epoch_generator(7, 0, "cpu"))
    b = random_crop_flip(x, epoch_generator(7, 0, "cpu"))
    c = random_crop_flip(x, epoch_generator(8, 0, "cpu"))
    assert a.shape == x.shape and a.dtype == x.dtype
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    # Each output is one of the crop/flip candidates of its own input (an independent check).
    flips = 0
    for i in range(len(x)):
        matches = [
            j
            for j, cand in enumerate(_candidates(x[i].numpy()))
            if np.array_equal(cand, a[i].numpy())
        ]
        assert matches, f"image {i} is not a padded crop/flip of its input"
        flips += matches[0] % 2
    assert 0 < flips < len(x)
    # Float images go through the same gather.
    xf = x.float() / 255
    af = random_crop_flip(xf, epoch_generator(7, 0, "cpu"))
    assert af.dtype == torch.float32 and torch.equal(af, a.float() / 255)


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_loader_normalises_and_covers_each_image_once(dtype):
    rng = np.random.default_rng(1)
    raw = rng.integers(0, 256, size=(50, 3, 32, 32), dtype=np.uint8)
    images = raw if dtype == np.uint8 else (raw / 255).astype(np.float32)
    ds = ImageDataset(images, rng.integers(0, 10, size=50), 10)
    loader = DeviceLoader(ds, 16, shuffle=True, seed=3, return_index=True)
    assert len(loader) == 4
    seen = []
    for x, y, idx in loader:
        assert x.dtype == torch.float32 and x.shape[1:] == (3, 32, 32)
        expect = (raw[idx.numpy()] / 255.0 - np.array(CIFAR100_MEAN)[:, None, None]) / np.array(
            CIFAR100_STD
        )[:, None, None]
        np.testing.assert_allclose(x.numpy(), expect, atol=1e-5)
        np.testing.assert_array_equal(y.numpy(), ds.labels[idx.numpy()])
        seen += idx.tolist()
    assert sorted(seen) == list(range(50))


def test_loader_epochs_are_seeded_and_independent_of_history():
    rng = np.random.default_rng(2)
    ds = ImageDataset(
        rng.integers(0, 256, size=(40, 3, 32, 32), dtype=np.uint8), rng.integers(0, 10, 40), 10
    )

    def epoch_batches(loader, epoch):
        loader.set_epoch(epoch)
        return [x.clone() for x, _ in loader]

    a = DeviceLoader(ds, 8, shuffle=True, augment=True, drop_last=True, seed=5)
    b = DeviceLoader(ds, 8, shuffle=True, augment=True, drop_last=True, seed=5)
    e1 = epoch_batches(a, 1)
    epoch_batches(b, 0)  # b has run epoch 0 first; epoch 1 must still be identical
    assert all(torch.equal(u, v) for u, v in zip(e1, epoch_batches(b, 1)))
    assert not all(torch.equal(u, v) for u, v in zip(e1, epoch_batches(a, 2)))
    assert len(e1) == 5 and a.images_per_epoch == 40
    c = DeviceLoader(ds, 16, drop_last=True, channels_last=True)
    x, _ = next(iter(c))
    assert len(c) == 2 and x.is_contiguous(memory_format=torch.channels_last)
    # No shuffle, no augmentation: dataset order.
    d = DeviceLoader(ds, 64)
    x, y = next(iter(d))
    assert len(d) == 1 and torch.equal(y, torch.from_numpy(ds.labels))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_pipeline_matches_the_cpu_normalisation():
    rng = np.random.default_rng(3)
    ds = ImageDataset(
        rng.integers(0, 256, size=(64, 3, 32, 32), dtype=np.uint8), rng.integers(0, 10, 64), 10
    )
    gpu = DeviceLoader(ds, 32, "cuda", shuffle=True, augment=True, channels_last=True)
    cpu = DeviceLoader(ds, 32, "cpu")
    x, y = next(iter(gpu))
    assert x.device.type == "cuda" and x.shape == (32, 3, 32, 32)
    assert x.is_contiguous(memory_format=torch.channels_last)
    plain = DeviceLoader(ds, 32, "cuda")
    for (a, _), (b, _) in zip(plain, cpu):
        torch.testing.assert_close(a.cpu(), b)
