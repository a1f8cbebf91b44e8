"""Atomic writes: complete files or none, no temporaries left, normal permissions."""

from __future__ import annotations

import os

import pandas as pd
import pytest

from bcpd_sim import io


def test_atomic_write_replaces_and_cleans_up(tmp_path):
    target = tmp_path / "sub" / "a.json"
    io.write_json(target, {"x": 1})
    io.write_json(target, {"x": 2})
    assert target.read_text().strip().endswith("}") and '"x": 2' in target.read_text()
    assert os.stat(target).st_mode & 0o044  # readable by group/others like any file (umask aside)
    assert not list(target.parent.glob(".*.tmp"))


def test_failed_write_keeps_the_old_file(tmp_path):
    target = tmp_path / "t.csv"
    io.write_table(target, pd.DataFrame({"a": [1, 2]}))

    def boom(path):
        path.write_text("partial")
        raise RuntimeError("killed mid-write")

    with pytest.raises(RuntimeError):
        io.atomic_write(target, boom)
    assert pd.read_csv(target).a.tolist() == [1, 2]
    assert not list(tmp_path.glob(".*.tmp"))


def test_table_suffixes(tmp_path):
    frame = pd.DataFrame({"a": [1.5], "b": ["x"]})
    io.write_table(tmp_path / "t.parquet", frame)
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "t.parquet"), frame)
    with pytest.raises(ValueError, match="parquet or .csv"):
        io.write_table(tmp_path / "t.txt", frame)
