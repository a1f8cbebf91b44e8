"""CIFAR-10 loader on small fake files in the official layout; CIFAR-2x5; refusals in one line."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from bcpd_sim.errors import ConfigError
from bcpd_sim.vision import cifar10 as c10
from bcpd_sim.vision.data import file_md5, make_archive


def fake(rng, n):
    return rng.integers(0, 256, size=(n, 3, 32, 32), dtype=np.uint8), rng.integers(0, 10, size=n)


@pytest.fixture
def fake_dir(tmp_path):
    rng = np.random.default_rng(0)
    (xtr, ytr), (xte, yte) = fake(rng, 23), fake(rng, 7)
    folder = c10.write_cifar10(tmp_path / "data", xtr, ytr, xte, yte)
    return tmp_path / "data", folder, (xtr, ytr, xte, yte)


@pytest.mark.parametrize("bytes_keys", [False, True])
def test_round_trip_official_layout(tmp_path, bytes_keys):
    rng = np.random.default_rng(1)
    (xtr, ytr), (xte, yte) = fake(rng, 12), fake(rng, 5)
    folder = c10.write_cifar10(tmp_path, xtr, ytr, xte, yte, bytes_keys=bytes_keys)
    assert sorted(p.name for p in folder.iterdir()) == sorted(c10.FILES)
    # the files are what the official ones are: dicts with data N x 3072 uint8 and labels
    with open(folder / "data_batch_1", "rb") as fh:
        raw = pickle.load(fh, encoding="bytes")
    key = b"data" if bytes_keys else "data"
    assert raw[key].shape[1] == 3072 and raw[key].dtype == np.uint8
    for where in (tmp_path, folder):  # the parent or the folder itself
        train, test = c10.load_cifar10(where)
        np.testing.assert_array_equal(train.images, xtr)
        np.testing.assert_array_equal(train.labels, ytr)
        np.testing.assert_array_equal(test.images, xte)
        assert train.class_names == list(c10.CLASS_NAMES) and train.num_classes == 10


def test_cifar2x5_merges_0_4_against_5_9(fake_dir):
    root, _, (xtr, ytr, xte, yte) = fake_dir
    train, test = c10.load_cifar2x5(root)
    assert train.num_classes == 2
    np.testing.assert_array_equal(train.labels, (ytr >= 5).astype(int))
    np.testing.assert_array_equal(test.labels, (yte >= 5).astype(int))
    assert train.class_names[0] == "airplane+automobile+bird+cat+deer"
    # p*, when known, is summed per group
    base = c10.load_cifar10(root)[0].subset(np.arange(4))
    base.p_star = np.random.default_rng(0).dirichlet(np.ones(10), size=4)
    merged = c10.merge_classes(base)
    np.testing.assert_allclose(merged.p_star[:, 0], base.p_star[:, :5].sum(1))


def test_archive_is_verified_then_extracted(fake_dir, tmp_path):
    root, folder, (xtr, *_rest) = fake_dir
    archive_dir = tmp_path / "archive_only"
    archive_dir.mkdir()
    archive = make_archive(folder, archive_dir / c10.ARCHIVE_NAME)
    # make_archive packs under the CIFAR-100 folder name; repack under CIFAR-10's
    import tarfile

    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder, arcname=c10.FOLDER_NAME)
    size, md5 = archive.stat().st_size, file_md5(archive)
    # the fake archive is not the official one: refused (size first, then md5), nothing extracted
    with pytest.raises(ConfigError, match=f"expected {c10.ARCHIVE_SIZE:,}"):
        c10.load_cifar10(archive_dir)
    with pytest.raises(ConfigError, match=f"has md5 {md5}, expected {c10.ARCHIVE_MD5}"):
        c10.load_cifar10(archive_dir, size=size)
    assert not (archive_dir / c10.FOLDER_NAME).exists()
    train, _ = c10.load_cifar10(archive_dir, size=size, md5=md5)
    np.testing.assert_array_equal(train.images, xtr)
    assert (archive_dir / c10.FOLDER_NAME / "test_batch").is_file()


def test_missing_files_and_malformed_pickles(fake_dir, tmp_path, monkeypatch):
    root, folder, _ = fake_dir
    with pytest.raises(FileNotFoundError, match="does not exist"):
        c10.load_cifar10(tmp_path / "nowhere")
    monkeypatch.delenv(c10.ENV_VAR, raising=False)
    with pytest.raises(ConfigError, match=c10.ENV_VAR):
        c10.load_cifar10()
    monkeypatch.setenv(c10.ENV_VAR, str(root))
    assert len(c10.load_cifar10()[0]) == 23
    (folder / "data_batch_3").write_bytes(b"not a pickle")
    with pytest.raises(ConfigError, match="data_batch_3 is unreadable"):
        c10.load_cifar10(root)
    (folder / "data_batch_3").write_bytes(pickle.dumps({"data": np.zeros((2, 5), np.uint8)}))
    with pytest.raises(ConfigError, match="lacks the key 'labels'"):
        c10.load_cifar10(root)
    (folder / "data_batch_3").write_bytes(
        pickle.dumps({"data": np.zeros((2, 3072), np.uint8), "labels": [0, 12]})
    )
    with pytest.raises(ConfigError, match="bad 'labels'"):
        c10.load_cifar10(root)
    (folder / "data_batch_3").unlink()
    with pytest.raises(FileNotFoundError, match="lacks data_batch_3"):
        c10.load_cifar10(root)


@pytest.mark.parametrize("damage", ["md5", "missing", "pickle"])
def test_cli_refuses_with_one_line(damage, fake_dir, tmp_path, capsys):
    from bcpd_sim.cli import main

    root, folder, _ = fake_dir
    if damage == "md5":
        where = tmp_path / "bad_archive"
        where.mkdir()
        (where / c10.ARCHIVE_NAME).write_bytes(b"x" * 100)
    elif damage == "missing":
        where = tmp_path / "empty"
        where.mkdir()
    else:
        (folder / "test_batch").write_bytes(b"\x80\x04garbage")
        where = root
    args = ["binary", "--preset", "cnn_tiny", "--data", "cifar2x5", "--data-dir", str(where)]
    assert main([*args, "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("bcpd-sim: error:") and "\n" not in err
    assert c10.ARCHIVE_NAME in err  # says how to get the dataset
