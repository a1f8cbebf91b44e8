"""ImageNet ImageFolder reading, Pillow transforms and the rank-sharded loader."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from bcpd_sim.errors import ConfigError
from bcpd_sim.imagenet.data import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    ImageFolderDataset,
    ImageNetLoader,
    eval_transform,
    holdout_split,
    sample_resized_crop,
    scan_imagenet,
)
from bcpd_sim.imagenet.fake import fake_wnids, write_fake_imagefolder


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return write_fake_imagefolder(
        tmp_path_factory.mktemp("imnet"), num_classes=3, train_per_class=6, val_per_class=2
    )


def test_scan_sorted_classes_and_labels(folder):
    train, val = scan_imagenet(folder, num_classes=3)
    assert train.classes == tuple(fake_wnids(3)) == val.classes
    assert len(train) == 18 and len(val) == 6
    for path, label in zip(train.paths, train.labels):
        assert f"/train/{train.classes[label]}/" in path


def test_class_order_is_sorted_not_creation_order(tmp_path):
    from PIL import Image

    for split in ("train", "val"):
        for wnid in ("n00000009", "n00000002"):  # created out of order
            (tmp_path / split / wnid).mkdir(parents=True)
            Image.new("RGB", (8, 8)).save(tmp_path / split / wnid / "a.JPEG")
    train, _ = scan_imagenet(tmp_path, num_classes=2)
    assert train.classes == ("n00000002", "n00000009")


def _copy(folder, tmp_path):
    dst = tmp_path / "copy"
    shutil.copytree(folder, dst)
    return dst


@pytest.mark.parametrize(
    "breakage, message",
    [
        (lambda r: shutil.rmtree(r / "val"), "does not exist"),
        (lambda r: shutil.rmtree(r / "train" / "n00000001"), "class folders"),
        (lambda r: [f.unlink() for f in (r / "val" / "n00000002").iterdir()], "holds no images"),
        (lambda r: (r / "train" / "n00000002").rename(r / "train" / "cats"), "WordNet ids"),
    ],
)
def test_malformed_layouts_give_one_line_errors(folder, tmp_path, breakage, message):
    root = _copy(folder, tmp_path)
    breakage(root)
    with pytest.raises(ConfigError, match=message) as info:
        scan_imagenet(root, num_classes=None if "WordNet" in message else 3)
    assert "\n" not in str(info.value)


def test_flat_val_folder_is_explained(folder, tmp_path):
    root = _copy(folder, tmp_path)
    for sub in list((root / "val").iterdir()):
        for f in sub.iterdir():
            f.rename(root / "val" / f.name)
        sub.rmdir()
    with pytest.raises(ConfigError, match="no class folders: sort them"):
        scan_imagenet(root, num_classes=3)


def test_wrong_class_count_and_missing_root(folder, tmp_path):
    with pytest.raises(ConfigError, match="expected 1000"):
        scan_imagenet(folder)
    with pytest.raises(ConfigError, match="not a folder"):
        scan_imagenet(tmp_path / "nowhere")


def test_holdout_split_is_per_class_disjoint_and_seeded(folder):
    train, _ = scan_imagenet(folder, num_classes=3)
    rest, held = holdout_split(train, 2, seed=0)
    assert np.bincount(held.labels).tolist() == [2, 2, 2]
    assert not set(rest.paths) & set(held.paths)
    assert len(rest) + len(held) == len(train)
    assert holdout_split(train, 2, seed=0)[1].paths == held.paths
    with pytest.raises(ConfigError, match="val_per_class"):
        holdout_split(train, 6, seed=0)


def test_resized_crop_box_follows_torchvision_rules():
    rng = np.random.default_rng(0)
    fractions, ratios = [], []
    for _ in range(2000):
        left, top, w, h = sample_resized_crop(300, 200, rng)
        assert 0 <= left and left + w <= 300 and 0 <= top and top + h <= 200
        fractions.append(w * h / 60000)
        ratios.append(w / h)
    # Accepted boxes: area fraction in [0.08, 1], aspect in [3/4, 4/3] up to rounding.
    assert min(fractions) > 0.07 and max(fractions) <= 1.0
    assert min(ratios) > 0.74 and max(ratios) < 1.35
    # A strip far outside the aspect range falls back to the centre crop of aspect 4/3 or 3/4.
    never = np.random.default_rng(1)
    assert sample_resized_crop(400, 10, never, scale=(1.0, 1.0)) == (
        (400 - round(10 * 4 / 3)) // 2,
        0,
        round(10 * 4 / 3),
        10,
    )


def test_eval_transform_is_a_centre_crop_after_resize():
    from PIL import Image

    pixels = np.random.default_rng(0).integers(0, 256, (256, 300, 3), dtype=np.uint8)
    out = np.asarray(eval_transform(Image.fromarray(pixels), 224, 256))
    top, left = round((256 - 224) / 2), round((300 - 224) / 2)  # shorter side is already 256
    np.testing.assert_array_equal(out, pixels[top : top + 224, left : left + 224])
    small = eval_transform(Image.fromarray(pixels[:50, :80]), 224, 256)
    assert small.size == (224, 224)


def test_augmentation_depends_only_on_seed_epoch_index(folder):
    train, _ = scan_imagenet(folder, num_classes=3)
    ds = ImageFolderDataset(train, augment=True, seed=3, crop_size=24, resize_size=28)
    a = ds.load(4, epoch=1)
    assert a.shape == (24, 24, 3) and a.dtype == np.uint8
    again = ImageFolderDataset(train, augment=True, seed=3, crop_size=24, resize_size=28)
    np.testing.assert_array_equal(a, again.load(4, epoch=1))
    other_seed = ImageFolderDataset(train, augment=True, seed=4, crop_size=24, resize_size=28)
    assert not np.array_equal(a, other_seed.load(4, epoch=1))
    assert not np.array_equal(a, ds.load(4, epoch=2))


def _run(loader, epoch=0):
    loader.set_epoch(epoch)
    return [(x.clone(), y.clone(), i.clone()) for x, y, i in loader]


def test_two_ranks_split_each_global_batch(folder):
    train, _ = scan_imagenet(folder, num_classes=3)
    ds = ImageFolderDataset(train, augment=True, seed=0, crop_size=16, resize_size=20)
    one = _run(ImageNetLoader(ds, 6, shuffle=True, drop_last=True, seed=5), epoch=1)
    ranks = [
        _run(
            ImageNetLoader(ds, 6, shuffle=True, drop_last=True, seed=5, rank=r, world_size=2),
            epoch=1,
        )
        for r in range(2)
    ]
    assert len(one) == 3 and all(len(r) == 3 for r in ranks)
    for b, (x, _, i) in enumerate(one):
        torch.testing.assert_close(torch.cat([ranks[0][b][0], ranks[1][b][0]]), x, rtol=0, atol=0)
        assert torch.equal(torch.cat([ranks[0][b][2], ranks[1][b][2]]), i)
    other = _run(ImageNetLoader(ds, 6, shuffle=True, drop_last=True, seed=5), epoch=2)
    assert not torch.equal(other[0][2], one[0][2])


def test_eval_shards_cover_every_image_once_and_normalise(folder):
    _, val = scan_imagenet(folder, num_classes=3)
    ds = ImageFolderDataset(val, augment=False, crop_size=16, resize_size=20)
    seen = []
    for r in range(2):
        for x, y, i in ImageNetLoader(ds, 4, rank=r, world_size=2, channels_last=True):
            assert x.is_contiguous(memory_format=torch.channels_last)
            for row, k in zip(x, i.tolist()):
                raw = torch.from_numpy(ds.load(k)).permute(2, 0, 1).double() / 255
                mean = torch.tensor(IMAGENET_MEAN, dtype=torch.float64)[:, None, None]
                std = torch.tensor(IMAGENET_STD, dtype=torch.float64)[:, None, None]
                torch.testing.assert_close(row.double(), (raw - mean) / std, atol=1e-5, rtol=0)
                assert int(y[i.tolist().index(k)]) == int(val.labels[k])
            seen += i.tolist()
    assert sorted(seen) == list(range(len(val)))


def test_worker_processes_give_the_same_batches(folder):
    train, _ = scan_imagenet(folder, num_classes=3)
    ds = ImageFolderDataset(train, augment=True, seed=0, crop_size=16, resize_size=20)
    a = _run(ImageNetLoader(ds, 6, shuffle=True, seed=1, num_workers=0))
    b = _run(ImageNetLoader(ds, 6, shuffle=True, seed=1, num_workers=2))
    for (xa, _, ia), (xb, _, ib) in zip(a, b):
        assert torch.equal(xa, xb) and torch.equal(ia, ib)


def test_undecodable_image_names_the_file(folder, tmp_path):
    root = _copy(folder, tmp_path)
    bad = root / "train" / "n00000000" / "n00000000_0.JPEG"
    bad.write_bytes(b"not a jpeg")
    train, _ = scan_imagenet(root, num_classes=3)
    with pytest.raises(ConfigError, match="cannot decode image .*n00000000_0.JPEG"):
        ImageFolderDataset(train, augment=False).load(0)


def test_bundle_holds_out_selection_split_and_builds_sharded_loaders(folder, monkeypatch):
    from bcpd_sim.imagenet.bundle import load_imagenet, make_imagenet_loaders
    from bcpd_sim.imagenet.recipes import get_imagenet_recipe

    monkeypatch.setenv("BCPD_SIM_IMAGENET", str(folder))
    data = load_imagenet(num_classes=3, val_per_class=1, crop_size=16, resize_size=20)
    assert (len(data.train), len(data.val), len(data.test)) == (15, 3, 6)
    assert data.info["n_val"] == 3 and not data.has_p_star and data.test.p_star is None
    recipe = get_imagenet_recipe("tiny", batch_size=4, eval_batch_size=4)
    cpu = torch.device("cpu")
    train, val, test = make_imagenet_loaders(data, recipe, cpu, seed=0, rank=1, world_size=2)
    assert train.augment and not test.augment
    x, y, idx = next(iter(train))
    assert x.shape == (2, 3, 16, 16)
    assert test.num_images == 3 and sum(len(b[1]) for b in test) == 3
    monkeypatch.delenv("BCPD_SIM_IMAGENET")
    with pytest.raises(ConfigError, match="BCPD_SIM_IMAGENET"):
        load_imagenet()
