"""Run directories: one writer at a time, fingerprinted caches, debris, and OS errors as one line."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import textwrap

import pandas as pd
import pytest

from bcpd_sim import io
from bcpd_sim.cli import main
from bcpd_sim.errors import ConfigError
from bcpd_sim.rundir import (
    FINGERPRINT_COLUMN,
    RunDirBusy,
    fingerprint,
    open_run_dir,
    sweep_temporaries,
)

# One small figure1 cell (6 students, 1 epoch): seconds, not minutes.
TINY = [
    "figure1",
    "--preset",
    "smoke",
    "--set",
    "trained.enabled=false",
    "--set",
    "simulated.temperatures=[]",
    "--set",
    "simulated.label_smoothing=[]",
    "--set",
    "simulated.eta_low=0",
    "--set",
    "train.epochs=1",
    "--set",
    "data.n_test=500",
    "--set",
    "bootstrap=20",
    "--set",
    "simulated.wrong_mass=[]",
    "--set",
    "data.draws=1",
]


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


def test_fingerprint_is_stable_and_discriminating():
    assert fingerprint("a = 1\n") == fingerprint("a = 1\n")
    assert fingerprint("a = 1\n") != fingerprint("a = 2\n")
    assert fingerprint({"b": 1, "a": 2}) == fingerprint({"a": 2, "b": 1})
    assert len(fingerprint("x")) == 16


def test_cached_tables_are_reused_only_by_the_config_that_made_them(tmp_path):
    with open_run_dir(tmp_path / "r", "x = 1\n") as run:
        run.write_table(tmp_path / "r" / "cell.parquet", pd.DataFrame({"v": [1, 2]}))
        cached = run.cached_table(tmp_path / "r" / "cell.parquet")
        assert cached.v.tolist() == [1, 2]
        assert (cached[FINGERPRINT_COLUMN] == fingerprint("x = 1\n")).all()
        assert run.cached_table(tmp_path / "r" / "missing.parquet") is None
    io.write_text(tmp_path / "r" / "config.toml", "x = 2\n")  # a config edited by hand
    with open_run_dir(tmp_path / "r", "x = 2\n") as run:
        assert run.cached_table(tmp_path / "r" / "cell.parquet") is None
    # an unstamped table (unknown provenance) is not reused either
    io.write_table(tmp_path / "r" / "plain.parquet", pd.DataFrame({"v": [1]}))
    with open_run_dir(tmp_path / "r", "x = 2\n") as run:
        assert run.cached_table(tmp_path / "r" / "plain.parquet") is None


def test_a_different_config_is_refused(tmp_path):
    with open_run_dir(tmp_path, "x = 1\n"):
        pass
    with pytest.raises(ConfigError, match="different config"), open_run_dir(tmp_path, "x = 2\n"):
        pass
    assert (tmp_path / "config.toml").read_text() == "x = 1\n"


def test_a_second_opener_in_this_process_is_refused_and_the_lock_is_released(tmp_path):
    (tmp_path / "config.toml").write_text("")
    with open_run_dir(tmp_path, command="first"):
        with pytest.raises(RunDirBusy, match=f"pid {os.getpid()}.*first"):
            with open_run_dir(tmp_path):
                pass
    with open_run_dir(tmp_path):  # released on exit
        pass
    with pytest.raises(ConfigError, match="not a directory"):
        with open_run_dir(tmp_path / "config.toml"):
            pass


def test_second_process_is_refused_with_one_line_and_nothing_mixed(tmp_path, capsys):
    out = tmp_path / "R"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import sys, time
                from bcpd_sim.rundir import open_run_dir
                with open_run_dir({str(out)!r}, "epochs = 4\\n", command="bcpd-sim figure1 ..."):
                    print("ready", flush=True)
                    sys.stdin.readline()
                """
            ),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=dict(os.environ, PYTHONPATH=os.getcwd()),
    )
    try:
        assert holder.stdout.readline().strip() == "ready"
        code = main([*TINY, "--set", "train.epochs=5", "--out", str(out)])
        line = one_line_error(capsys)
        assert code == 75
        assert f"pid {holder.pid}" in line and str(out) in line and "bcpd-sim figure1" in line
    finally:
        holder.communicate("done\n", timeout=60)
    assert (out / "config.toml").read_text() == "epochs = 4\n"  # the holder's config, untouched
    assert not (out / "cells").exists()


def test_sweep_removes_only_this_toolkits_temporaries(tmp_path):
    ours = [
        tmp_path / ".results.parquet.ab12cd_3.tmp",
        tmp_path / "cells" / ".c.parquet.zz9k0a1b.tmp",
    ]
    theirs = [tmp_path / "notes.tmp", tmp_path / ".hidden.tmp", tmp_path / ".x.TOOLONGNAME.tmp"]
    deep = tmp_path / "a" / "b" / "c" / "d" / ".x.parquet.abcdefgh.tmp"
    for path in [*ours, *theirs, deep]:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")
    removed = sweep_temporaries(tmp_path)
    assert sorted(removed) == sorted(ours)
    assert all(p.exists() for p in [*theirs, deep])
    with open_run_dir(tmp_path / "cells"):
        pass  # opening a run directory sweeps too (nothing left to sweep here)


# --------------------------------------------------------------------------- operating-system errors
def test_read_only_out_is_one_line_naming_the_path(tmp_path, capsys, monkeypatch):
    def refuse(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", str(tmp_path / "ro"))

    monkeypatch.setattr("pathlib.Path.mkdir", refuse)
    code = main([*TINY, "--out", str(tmp_path / "ro" / "run")])
    line = one_line_error(capsys)
    assert code == 1 and str(tmp_path / "ro") in line and "Permission denied" in line


def test_atomic_write_names_the_target_not_the_temporary(tmp_path, monkeypatch):
    def full(self, data):
        raise OSError(errno.ENOSPC, "No space left on device", str(self))

    monkeypatch.setattr("pathlib.Path.write_bytes", full)
    with pytest.raises(OSError) as info:
        io.save_torch(tmp_path / "ckpt.pt", {"a": 1})
    assert info.value.errno == errno.ENOSPC and info.value.filename == str(tmp_path / "ckpt.pt")
    assert os.listdir(tmp_path) == []


def _mount_tmpfs(path, size: str) -> bool:
    path.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True
    )
    return done.returncode == 0


@pytest.fixture
def small_disk(tmp_path):
    mount = tmp_path / "disk"
    if os.geteuid() != 0 or not _mount_tmpfs(mount, "160k"):
        pytest.skip(
            "cannot mount a small tmpfs here (needs root); the monkeypatched tests cover it"
        )
    yield mount
    subprocess.run(["umount", str(mount)], check=False)


def test_full_disk_is_one_line_nothing_partial_and_a_rerun_resumes(small_disk, capsys):
    out = small_disk / "run"
    code = main([*TINY, "--out", str(out)])
    line = one_line_error(capsys)
    assert code == 1 and "No space left on device" in line and str(out) in line
    assert "rerun" in line
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]
    for table in out.rglob("*.parquet"):
        pd.read_parquet(table)  # every file there is complete
    cell = out / "cells" / "draw0-simulated-eta_uniform.parquet"
    assert cell.exists()  # the cell finished before the disk filled up
    before = cell.stat().st_mtime_ns
    subprocess.run(["mount", "-o", "remount,size=8m", str(small_disk)], check=True)
    capsys.readouterr()
    assert main([*TINY, "--out", str(out)]) == 0
    assert cell.stat().st_mtime_ns == before  # resumed: the finished cell was not retrained
    assert (out / "results.parquet").exists() and (out / "figure1.png").exists()


def test_read_only_file_system(small_disk, capsys):
    (small_disk / "existing").mkdir()
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    for out in (small_disk / "run", small_disk / "existing"):  # cannot create / cannot lock
        code = main([*TINY, "--out", str(out)])
        line = one_line_error(capsys)
        assert code == 1 and "Read-only file system" in line and str(out) in line


def test_out_of_memory_is_one_line(tmp_path, capsys, monkeypatch):
    def exhausted(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr("bcpd_sim.figure1.study.prepare_data", exhausted)
    assert main([*TINY, "--out", str(tmp_path / "r")]) == 1
    assert "out of memory" in one_line_error(capsys)
