"""Off a terminal: one plain line per finished cell or epoch; BCPD_SIM_PROGRESS=0 silences it."""

from __future__ import annotations

import io as _io
import re

import pytest
from test_rundir import TINY

from bcpd_sim import cli, progress
from bcpd_sim.progress import ProgressLog, format_seconds


class FakeTerminal(_io.StringIO):
    def isatty(self) -> bool:
        return True


def test_lines_name_the_unit_metric_elapsed_and_eta(monkeypatch):
    monkeypatch.delenv("BCPD_SIM_PROGRESS", raising=False)
    clock = iter([100.0, 130.0, 160.0, 220.0])
    monkeypatch.setattr(progress.time, "perf_counter", lambda: next(clock))
    out = _io.StringIO()
    log = ProgressLog("figure1", 5, stream=out)
    assert log.finished("simulated-etas", cached=True) is None  # resumed: counted, not timed
    log.finished("trained-ce", "mean student acc 0.7100")  # 30 s for one cell, 3 left
    log.finished("trained-mse", "mean student acc 0.7200")  # 60 s for two, 2 left
    lines = out.getvalue().splitlines()
    assert lines == [
        "[figure1] cell 2/5 trained-ce done: mean student acc 0.7100; elapsed 30s, ETA 1m30s",
        "[figure1] cell 3/5 trained-mse done: mean student acc 0.7200; elapsed 1m00s, ETA 1m00s",
    ]
    assert log.finished("last").endswith("done; elapsed 2m00s, ETA 40s")


def test_silent_on_a_terminal_and_when_switched_off(monkeypatch):
    monkeypatch.delenv("BCPD_SIM_PROGRESS", raising=False)
    term = FakeTerminal()
    ProgressLog("x", 2, stream=term).finished("a", "m")
    assert term.getvalue() == ""
    for off in ("0", "false", "no"):
        monkeypatch.setenv("BCPD_SIM_PROGRESS", off)
        pipe = _io.StringIO()
        ProgressLog("x", 2, stream=pipe).finished("a", "m")
        assert pipe.getvalue() == ""


@pytest.mark.parametrize(
    ("s", "text"), [(0, "0s"), (59.6, "1m00s"), (185, "3m05s"), (7620, "2h07m")]
)
def test_format_seconds(s, text):
    assert format_seconds(s) == text


def test_figure1_prints_one_line_per_finished_cell(tmp_path, capsys, monkeypatch):
    from bcpd_sim.figure1.config import load_config
    from bcpd_sim.figure1.study import run_figure1

    monkeypatch.delenv("BCPD_SIM_PROGRESS", raising=False)
    overrides = [TINY[i + 1] for i, a in enumerate(TINY) if a == "--set"]
    run_figure1(load_config("smoke", overrides=overrides), tmp_path / "r")
    out = capsys.readouterr().out
    pattern = (
        r"\[figure1\] cell 1/1 simulated-eta_uniform done: mean student acc 0\.\d{4} "
        r"\(6 students\); elapsed \S+, ETA 0s"
    )
    assert re.search(pattern, out), out


def test_cifar_training_prints_one_line_per_epoch(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("BCPD_SIM_PROGRESS", raising=False)
    args = (
        "cifar100 teacher --arch resnet8 --recipe tiny --data synthetic --num-classes 10 "
        "--train-limit 64 --test-limit 32 --val-size 16 --epochs 1 --device cpu --out"
    ).split()
    assert cli.main([*args, str(tmp_path / "t")]) == 0
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("[")]
    assert len(lines) == 1, lines
    assert re.match(r"\[.+\] epoch 1/1 done: train loss \d+\.\d{4}, test acc \d\.\d{4}; ", lines[0])
    assert lines[0].endswith("ETA 0s")
