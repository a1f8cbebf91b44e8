"""TensorBoard logging: scalars written per epoch read back equal; a clear error without it."""

from __future__ import annotations

import builtins

import pytest

from bcpd_sim.errors import ConfigError
from bcpd_sim.vision import tb_log


def test_epoch_rows_become_scalars(tmp_path):
    pytest.importorskip("tensorboard", reason="the optional tensorboard package is not installed")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    logger = tb_log.EpochLogger(tmp_path)
    rows = [
        {"epoch": 1, "lr": 0.05, "train_loss": 2.5, "val_acc": 0.25, "test_top5": 0.5},
        {"epoch": 2, "lr": 0.05, "train_loss": 1.5, "val_acc": float("nan"), "test_top5": 0.75},
    ]
    for row in rows:
        logger(row["epoch"], row)
    logger.close()
    acc = EventAccumulator(str(tmp_path))
    acc.Reload()
    assert set(acc.Tags()["scalars"]) == {"run/lr", "train/loss", "val/acc", "test/top5"}
    loss = acc.Scalars("train/loss")
    assert [(e.step, e.value) for e in loss] == [(1, 2.5), (2, 1.5)]
    assert [e.step for e in acc.Scalars("val/acc")] == [1]  # non-finite values are skipped


def test_missing_tensorboard_is_one_clear_line(monkeypatch):
    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name.startswith("torch.utils.tensorboard") or name == "tensorboard":
            raise ImportError("No module named 'tensorboard'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(ConfigError, match=r"pip install 'bcpd-sim\[tensorboard\]'"):
        tb_log.require_tensorboard()


def test_chain_calls_each_callback():
    seen = []
    call = tb_log.chain(
        None, lambda e, r: seen.append(("a", e)), lambda e, r: seen.append(("b", e))
    )
    call(3, {})
    assert seen == [("a", 3), ("b", 3)] and tb_log.chain(None) is None


def test_teacher_run_with_tensorboard_writes_events_beside_metrics(tmp_path):
    pytest.importorskip("tensorboard", reason="the optional tensorboard package is not installed")
    import torch
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from bcpd_sim.vision.train import TeacherConfig, train_teacher

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train_teacher(
            TeacherConfig(
                out=str(tmp_path / "run"),
                arch="resnet8",
                data="synthetic",
                num_classes=10,
                recipe="tiny",
                epochs=2,
                device="cpu",
                train_limit=64,
                val_size=16,
                test_limit=16,
                batch_size=24,
                tensorboard=True,
            )  # fmt: skip
        )
    finally:
        torch.set_num_threads(before)
    run = tmp_path / "run"
    assert (run / "metrics.csv").is_file() and list(run.glob("events.out.tfevents.*"))
    acc = EventAccumulator(str(run))
    acc.Reload()
    assert [e.step for e in acc.Scalars("test/top5")] == [1, 2]
    assert {"train/loss", "val/acc", "test/mse_pstar"} <= set(acc.Tags()["scalars"])
