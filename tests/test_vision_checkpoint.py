"""Checkpoints anyone can open: plain types, weights_only loading, RNG round trip, upgrade path."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from bcpd_sim.errors import ConfigError
from bcpd_sim.vision.checkpoint import (
    CHECKPOINT_FORMAT,
    capture_rng_state,
    load_checkpoint,
    load_model,
    restore_rng_state,
    save_checkpoint,
    to_plain,
    upgrade_checkpoint,
)
from bcpd_sim.vision.models import create_model
from bcpd_sim.vision.recipes import get_recipe, make_optimizer, make_scheduler


def _draws() -> tuple:
    return (
        random.random(),
        np.random.rand(3).tolist(),
        float(np.random.standard_normal()),
        torch.rand(3).tolist(),
    )


def test_rng_state_is_plain_and_restores_every_generator():
    np.random.standard_normal()  # leave a cached gaussian in numpy's state
    state = capture_rng_state()
    assert isinstance(state["numpy"]["keys"], torch.Tensor)
    first = _draws()
    restore_rng_state(state)
    assert _draws() == first
    # the same through a weights_only save and load
    restore_rng_state(state)
    buf = __import__("io").BytesIO()
    torch.save(to_plain(state), buf)
    buf.seek(0)
    restore_rng_state(torch.load(buf, weights_only=True))
    assert _draws() == first


def test_to_plain_converts_numpy_and_refuses_objects():
    out = to_plain({"a": np.arange(3), "b": np.float32(1.5), "c": (np.int64(2), [None])})
    assert torch.equal(out["a"], torch.arange(3))
    assert out["b"] == 1.5 and type(out["b"]) is float
    assert out["c"] == (2, [None])
    with pytest.raises(TypeError, match=r"checkpoint\['f'\] holds a function"):
        to_plain({"f": lambda: 0})


def _full_state(tmp_path):
    model = create_model("resnet8", num_classes=10)
    recipe = get_recipe("tiny")
    opt = make_optimizer(model.parameters(), recipe, "resnet8")
    sched = make_scheduler(opt, recipe, steps_per_epoch=3)
    model(torch.randn(4, 3, 32, 32)).sum().backward()
    opt.step()
    sched.step()
    return (
        model,
        opt,
        sched,
        {
            "kind": "full",
            "arch": "resnet8",
            "num_classes": 10,
            "loss": "mse",
            "epoch": 1,
            "model": model.state_dict(),
            "optimizer": opt.state_dict(),
            "scheduler": sched.state_dict(),
            "rng": capture_rng_state(),
            "history": [{"epoch": 1, "test_acc": np.float64(0.5)}],
            "best": {"epoch": 1, "val_acc": 0.5},
            "config": {"out": tmp_path, "seed": 0},
            "recipe": recipe.to_dict(),
            "seed": 0,
        },
    )


def test_full_checkpoint_loads_with_weights_only_and_restores(tmp_path):
    model, opt, sched, state = _full_state(tmp_path)
    path = save_checkpoint(tmp_path / "last.pt", state)
    raw = torch.load(path, weights_only=True)  # what any user does
    assert raw["format"] == CHECKPOINT_FORMAT and raw["loss"] == "mse"
    fresh = create_model(raw["arch"], raw["num_classes"])
    fresh.load_state_dict(raw["model"])
    for k, v in model.state_dict().items():
        assert torch.equal(fresh.state_dict()[k], v)
    opt2 = make_optimizer(fresh.parameters(), get_recipe("tiny"), "resnet8")
    opt2.load_state_dict(raw["optimizer"])
    sched2 = make_scheduler(opt2, get_recipe("tiny"), steps_per_epoch=3)
    sched2.load_state_dict(raw["scheduler"])
    assert sched2.get_last_lr() == sched.get_last_lr()
    assert raw["config"]["out"] == str(tmp_path)
    loaded, ckpt = load_model(path, num_classes=10)
    assert not loaded.training and ckpt["epoch"] == 1
    with pytest.raises(ConfigError, match="has 10 classes, expected 100"):
        load_model(path, num_classes=100)


def test_first_format_is_refused_in_one_line_and_upgrades(tmp_path):
    _, _, _, state = _full_state(tmp_path)
    rng = {**state["rng"], "numpy": np.random.get_state()}
    legacy = {**state, "format": "bcpd_sim.vision/checkpoint-1", "rng": rng}
    del legacy["loss"]
    path = tmp_path / "old.pt"
    torch.save(legacy, path)
    with pytest.raises(ConfigError) as err:
        load_checkpoint(path)
    assert "\n" not in str(err.value) and "upgrade" in str(err.value)
    upgrade_checkpoint(path)
    ckpt = load_checkpoint(path)
    restore_rng_state(ckpt["rng"])
    assert np.random.get_state()[2] == rng["numpy"][2]
    assert ckpt["loss"] is None and isinstance(ckpt["rng"]["numpy"]["keys"], torch.Tensor)
    torch.save({"model": {}}, tmp_path / "foreign.pt")
    with pytest.raises(ConfigError, match="not a bcpd-sim vision checkpoint"):
        load_checkpoint(tmp_path / "foreign.pt")
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "missing.pt")


def test_every_checkpoint_a_run_writes_opens_with_weights_only(tmp_path):
    from bcpd_sim.vision.distill.trainer import DistillConfig, distill
    from bcpd_sim.vision.train import TeacherConfig, train_teacher

    tiny = dict(recipe="tiny", device="cpu", train_limit=80, val_size=16, test_limit=32)
    tiny.update(batch_size=32, epochs=2, checkpoint_every=1)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        teacher = tmp_path / "teacher"
        train_teacher(
            TeacherConfig(
                out=str(teacher),
                arch="resnet8",
                loss="mse",
                data="synthetic",
                num_classes=10,
                **tiny,
            )
        )
        student = tmp_path / "student"
        distill(
            DistillConfig(
                out=str(student),
                teacher=str(teacher / "checkpoints" / "best.pt"),
                student="resnet8",
                method="fitnet",
                **tiny,
            )
        )
    finally:
        torch.set_num_threads(before)
    paths = sorted(tmp_path.rglob("*.pt"))
    names = {p.name for p in paths}
    assert {"last.pt", "best.pt", "epoch_0001.pt", "epoch_0002.pt"} <= names and len(paths) >= 8
    for path in paths:
        raw = torch.load(path, weights_only=True)  # PyTorch's safe default, on every file
        assert raw["format"] == CHECKPOINT_FORMAT
        model = create_model(raw["arch"], raw["num_classes"])
        model.load_state_dict(raw["model"])
        assert raw["loss"] == ("mse" if "teacher" in path.parts[-3] else "fitnet")
