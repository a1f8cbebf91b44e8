"""CIFAR-100 official-layout reader, writer, archive verification and validation split."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from bcpd_sim.errors import ConfigError
from bcpd_sim.vision import data as vdata
from bcpd_sim.vision.data import (
    ImageDataset,
    download_cifar100,
    extract_archive,
    file_md5,
    load_cifar100,
    make_archive,
    split_validation,
    verify_archive,
    write_cifar100,
    write_fake_cifar100,
)


def _random_split(rng, n, k=100):
    return rng.integers(0, 256, size=(n, 3, 32, 32), dtype=np.uint8), rng.integers(0, k, size=n)


@pytest.mark.parametrize("bytes_keys", [False, True])
def test_round_trip_official_layout(tmp_path, bytes_keys):
    rng = np.random.default_rng(0)
    xtr, ytr = _random_split(rng, 37)
    xte, yte = _random_split(rng, 11)
    names = [f"name{i}" for i in range(100)]
    folder = write_cifar100(tmp_path, xtr, ytr, xte, yte, class_names=names, bytes_keys=bytes_keys)
    assert folder.name == "cifar-100-python"
    # The raw files follow the official layout: N x 3072 uint8, channel-major.
    with open(folder / "train", "rb") as fh:
        raw = pickle.load(fh, encoding="latin1")
    key = (lambda k: k.encode()) if bytes_keys else (lambda k: k)
    assert raw[key("data")].shape == (37, 3072) and raw[key("data")].dtype == np.uint8
    np.testing.assert_array_equal(raw[key("data")][5, :1024], xtr[5, 0].ravel())  # red plane first
    assert set(raw) >= {key("fine_labels"), key("coarse_labels")}
    # Parent folder and the cifar-100-python folder itself are both accepted.
    for where in (tmp_path, folder):
        train, test = load_cifar100(where)
        np.testing.assert_array_equal(train.images, xtr)
        np.testing.assert_array_equal(train.labels, ytr)
        np.testing.assert_array_equal(test.images, xte)
        np.testing.assert_array_equal(test.labels, yte)
        assert train.class_names == names and train.num_classes == 100
        assert train.images.dtype == np.uint8 and train.p_star is None


def test_env_var_and_missing_data(tmp_path, monkeypatch):
    write_fake_cifar100(tmp_path / "c", n_train=20, n_test=10)
    monkeypatch.setenv(vdata.ENV_VAR, str(tmp_path / "c"))
    train, test = load_cifar100()
    assert len(train) == 20 and len(test) == 10
    monkeypatch.delenv(vdata.ENV_VAR)
    with pytest.raises(ConfigError, match="BCPD_SIM_CIFAR100"):
        load_cifar100()
    with pytest.raises(FileNotFoundError, match="cifar-100-python.tar.gz"):
        load_cifar100(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="md5 eb9058c3a382ffc7106e4002c42a8d85"):
        load_cifar100(tmp_path / "empty")


def test_corrupt_files_are_reported(tmp_path):
    folder = write_fake_cifar100(tmp_path, n_train=20, n_test=10)
    (folder / "train").write_bytes((folder / "train").read_bytes()[:100])
    with pytest.raises(ConfigError, match="unreadable.*obtain|unreadable"):
        load_cifar100(tmp_path)
    folder = write_fake_cifar100(tmp_path, n_train=20, n_test=10)
    with open(folder / "test", "wb") as fh:
        pickle.dump({"data": np.zeros((3, 100), np.uint8), "fine_labels": [0, 1, 2]}, fh)
    with pytest.raises(ConfigError, match="N x 3072 uint8"):
        load_cifar100(tmp_path)


def test_archive_size_and_md5_are_checked_before_extracting(tmp_path):
    folder = write_fake_cifar100(tmp_path / "src", n_train=30, n_test=10)
    archive = make_archive(folder, tmp_path / "dl" / vdata.ARCHIVE_NAME)
    size, md5 = archive.stat().st_size, file_md5(archive)
    verify_archive(archive, size=size, md5=md5)
    # The official constants: a fake archive fails on size first.
    with pytest.raises(ConfigError, match="169,001,437"):
        verify_archive(archive)
    # Right size, wrong md5: detected, and nothing is extracted.
    with pytest.raises(ConfigError, match="md5"):
        extract_archive(archive, tmp_path / "out", size=size, md5="0" * 32)
    assert not (tmp_path / "out" / vdata.FOLDER_NAME).exists()
    # Corrupt one byte (same size): the md5 check catches it.
    blob = bytearray(archive.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    bad = tmp_path / "bad.tar.gz"
    bad.write_bytes(bytes(blob))
    with pytest.raises(ConfigError, match="md5"):
        verify_archive(bad, size=size, md5=md5)
    # Verified archive extracts and loads.
    out = extract_archive(archive, tmp_path / "out", size=size, md5=md5)
    train, _ = load_cifar100(out)
    assert len(train) == 30


def test_download_verifies_then_extracts(tmp_path):
    folder = write_fake_cifar100(tmp_path / "src", n_train=25, n_test=5)
    archive = make_archive(folder, tmp_path / "served.tar.gz")
    size, md5 = archive.stat().st_size, file_md5(archive)
    url = archive.resolve().as_uri()
    with pytest.raises(ConfigError, match="md5"):
        download_cifar100(tmp_path / "a", url=url, size=size, md5="f" * 32)
    assert not (tmp_path / "a" / vdata.FOLDER_NAME).exists()
    assert not (tmp_path / "a" / vdata.ARCHIVE_NAME).exists()  # a bad download is not kept
    got = download_cifar100(tmp_path / "b", url=url, size=size, md5=md5)
    train, test = load_cifar100(got)
    assert len(train) == 25 and len(test) == 5
    with pytest.raises(ConfigError, match="could not download"):
        download_cifar100(tmp_path / "c", url=(tmp_path / "missing.tgz").as_uri())


def test_validation_split_is_seeded_disjoint_and_keeps_rows():
    rng = np.random.default_rng(1)
    images, labels = _random_split(rng, 50, k=5)
    p = rng.dirichlet(np.ones(5), size=50)
    ds = ImageDataset(images, labels, 5, p_star=p)
    train, val = split_validation(ds, 10, seed=3)
    assert len(train) == 40 and len(val) == 10
    assert set(train.indices).isdisjoint(val.indices)
    assert set(train.indices) | set(val.indices) == set(range(50))
    np.testing.assert_array_equal(val.images, images[val.indices])
    np.testing.assert_array_equal(val.p_star, p[val.indices])
    again, val2 = split_validation(ds, 10, seed=3)
    np.testing.assert_array_equal(val.indices, val2.indices)
    assert split_validation(ds, 0, seed=3)[1] is None
    with pytest.raises(ConfigError, match="val_size"):
        split_validation(ds, 50, seed=0)
