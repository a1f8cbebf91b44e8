"""The device loader under DDP: W ranks together see exactly the batches of one process."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bcpd_sim.vision.data import ImageDataset
from bcpd_sim.vision.pipeline import DeviceLoader


def _dataset(n: int) -> ImageDataset:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8)
    return ImageDataset(images, rng.integers(0, 10, n), 10)


def _pass(loader: DeviceLoader, epoch: int = 3):
    loader.set_epoch(epoch)
    return list(loader)


@pytest.mark.parametrize("world, n, drop_last", [(2, 40, True), (2, 38, False), (3, 39, False)])
def test_rank_slices_rebuild_the_global_batches(world, n, drop_last):
    ds = _dataset(n)
    kw = dict(shuffle=True, augment=True, drop_last=drop_last, seed=7, return_index=True)
    one = _pass(DeviceLoader(ds, 12, **kw))
    ranks = [_pass(DeviceLoader(ds, 12, rank=r, world_size=world, **kw)) for r in range(world)]
    assert all(len(r) == len(one) for r in ranks)
    for b, (x, y, idx) in enumerate(one):
        torch.testing.assert_close(torch.cat([r[b][0] for r in ranks]), x, rtol=0, atol=0)
        assert torch.equal(torch.cat([r[b][1] for r in ranks]), y)
        assert torch.equal(torch.cat([r[b][2] for r in ranks]), idx)
        sizes = [len(r[b][1]) for r in ranks]
        assert max(sizes) - min(sizes) <= 1 and min(sizes) >= 1
    per_rank = [
        DeviceLoader(ds, 12, rank=r, world_size=world, **kw).images_per_epoch for r in range(world)
    ]
    assert sum(per_rank) == sum(len(b[1]) for b in one)


def test_eval_shards_are_round_robin_and_complete():
    ds = _dataset(23)
    seen = []
    for r in range(3):
        loader = DeviceLoader(ds, 4, rank=r, world_size=3, return_index=True)
        rows = torch.cat([idx for _, _, idx in loader]).tolist()
        assert rows == list(range(r, 23, 3)) and loader.num_images == len(rows)
        seen += rows
    assert sorted(seen) == list(range(23))


def test_a_last_batch_smaller_than_the_world_is_dropped():
    ds = _dataset(37)  # 3 full batches of 12 and one image left: 2 ranks cannot share it
    assert len(DeviceLoader(ds, 12, shuffle=True, rank=1, world_size=2)) == 3


def test_one_process_unchanged():
    ds = _dataset(37)
    loader = DeviceLoader(ds, 12, shuffle=True, drop_last=False, seed=1)
    assert len(loader) == 4 and loader.images_per_epoch == 37 and loader.num_images == 37
