"""The shared trainer's GPU-only paths, exercised on CPU stand-ins (issue 18): dynamo's cache
reset per run, the compile fallback over the whole first step, resuming a checkpoint written with
the fused optimiser, and a data order that does not depend on the device."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch

import bcpd_sim.vision.distill.trainer as distill_trainer
import bcpd_sim.vision.trainer as trainer_mod
from bcpd_sim.vision.bundle import load_data
from bcpd_sim.vision.distill import create_distiller
from bcpd_sim.vision.distill.trainer import DistillTrainer, freeze
from bcpd_sim.vision.losses import teacher_loss
from bcpd_sim.vision.models import create_model
from bcpd_sim.vision.pipeline import DeviceLoader, epoch_generator
from bcpd_sim.vision.recipes import get_recipe
from bcpd_sim.vision.trainer import Trainer, compiled_graph_count, supervised_criterion

TIMING = ["epoch_seconds", "images_per_s"]


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _data(num_classes=10):
    return load_data(
        "synthetic", num_classes=num_classes, train_limit=48, test_limit=16, val_size=16
    )


def _recipe(epochs=1):
    return get_recipe("tiny", epochs=epochs, batch_size=16, val_size=16, milestones=())


def _teacher_run(out, *, num_classes=10, epochs=1, compile=False, data=None):
    torch.manual_seed(0)
    model = create_model("resnet8", num_classes=num_classes)
    return Trainer(
        out,
        model,
        data or _data(num_classes),
        _recipe(epochs),
        criterion=supervised_criterion(teacher_loss("ce")),
        seed=0,
        config={"arch": "resnet8", "num_classes": num_classes},
        device="cpu",
        compile=compile,
    )


def _effective(run_dir):
    return json.loads((run_dir / "config.json").read_text())["effective"]


@pytest.fixture()
def compile_on_cpu(monkeypatch):
    """torch.compile with the 'eager' backend (dynamo only: no C compiler), allowed on CPU."""
    monkeypatch.setattr(trainer_mod, "COMPILE_DEVICES", ("cuda", "cpu"))
    real = torch.compile
    monkeypatch.setattr(torch, "compile", lambda model, mode=None: real(model, backend="eager"))
    yield
    torch._dynamo.reset()


def test_more_than_eight_architectures_in_one_process_all_run_compiled(tmp_path, compile_on_cpu):
    """Every model shares CifarModel.forward and dynamo keeps 8 compiled versions of a function.
    With the per-run reset, run 9 and 10 are compiled and say so; without it they would run
    eagerly (and, checked below, now say that instead of claiming to be compiled)."""
    for k in range(10):
        run = tmp_path / f"r{k}"
        _teacher_run(run, num_classes=2 + k, compile=True).fit()
        eff = _effective(run)
        # "compiled" is written only after dynamo produced a graph in the run's first step
        assert eff["compiled"] is True and "compile_fallback" not in eff, (k, eff)
        assert compiled_graph_count() >= 1


def test_without_the_reset_the_record_says_the_run_was_eager(tmp_path, compile_on_cpu, monkeypatch):
    monkeypatch.setattr(trainer_mod, "reset_compiler", lambda: None)
    torch._dynamo.reset()
    said = []
    for k in range(10):
        run = tmp_path / f"r{k}"
        _teacher_run(run, num_classes=2 + k, compile=True).fit()
        said.append(_effective(run)["compiled"])
    assert said[:8] == [True] * 8 and said[8:] == [False, False]
    assert _effective(tmp_path / "r9")["compile_fallback"] == "dynamo compiled no graph"


class _FakeCompiled(torch.nn.Module):
    """Stands in for a compiled module that fails: at its first forward (``where='forward'``), or
    in the backward of its output (``where='backward'``, as a lazily compiled backward does)."""

    def __init__(self, model, where):
        super().__init__()
        self.model, self.where = model, where

    def forward(self, x, **kw):
        if self.where == "forward":
            raise RuntimeError("forced compile failure (forward)")
        out = self.model(x, **kw)
        if self.where == "backward" and torch.is_grad_enabled():
            logits = _FailInBackward.apply(out[0] if kw else out)
            return (logits, out[1]) if kw else logits
        return out


class _FailInBackward(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x.clone()

    @staticmethod
    def backward(ctx, grad):
        raise RuntimeError("forced compile failure (backward)")


def _distill_run(out, fail=None, monkeypatch=None):
    torch.manual_seed(0)
    teacher = freeze(create_model("resnet8", num_classes=10))
    student = create_model("resnet8", num_classes=10)
    distiller = create_distiller("kd", teacher, student)
    if fail is not None:
        part, where = fail

        def fake(model, enabled, device, mode=None):
            if not enabled:
                return model, False
            is_teacher = model is teacher
            broken = (part == "teacher") == is_teacher
            return (_FakeCompiled(model, where if broken else None), True)

        monkeypatch.setattr(trainer_mod, "maybe_compile", fake)
        monkeypatch.setattr(distill_trainer, "maybe_compile", fake)
    tr = DistillTrainer(
        out,
        student,
        teacher,
        distiller,
        _data(),
        _recipe(),
        seed=0,
        config={"arch": "resnet8"},
        device="cpu",
        compile=fail is not None,
    )
    return tr.fit(), tr


@pytest.mark.parametrize(
    "fail", [("teacher", "forward"), ("student", "forward"), ("student", "backward")]
)
def test_compile_failure_anywhere_in_the_first_step_falls_back_cleanly(tmp_path, monkeypatch, fail):
    eager, _ = _distill_run(tmp_path / "eager")
    with pytest.warns(UserWarning, match="compiled step failed"):
        fell, tr = _distill_run(tmp_path / "fell", fail, monkeypatch)
    assert not tr.compiled and tr.forward is tr.model and tr.teacher_forward is tr.teacher
    eff = _effective(tmp_path / "fell")
    assert eff["compiled"] is False and "forced compile failure" in eff["compile_fallback"]
    # Nothing of the failed attempt leaks: the run equals the eager one exactly.
    assert fell == eager
    a = pd.read_csv(tmp_path / "eager/metrics.csv").drop(columns=TIMING)
    b = pd.read_csv(tmp_path / "fell/metrics.csv").drop(columns=TIMING)
    pd.testing.assert_frame_equal(a, b)


def test_checkpoint_written_with_fused_sgd_resumes_with_this_devices_kernel(tmp_path):
    class Stop(Exception):
        pass

    def stop(epoch, row):
        raise Stop

    data = _data()
    full = _teacher_run(tmp_path / "full", epochs=2, data=data).fit()
    with pytest.raises(Stop):
        _teacher_run(tmp_path / "cut", epochs=2, data=data).fit(on_epoch_end=stop)
    last = tmp_path / "cut/checkpoints/last.pt"
    ckpt = torch.load(last, weights_only=False)
    for group in ckpt["optimizer"]["param_groups"]:
        group["fused"] = True  # as written on a GPU
    torch.save(ckpt, last)
    tr = _teacher_run(tmp_path / "cut", epochs=2, data=data)
    tr.setup()
    tr.resume()
    assert all(not g.get("fused") for g in tr.optimizer.param_groups)
    assert _teacher_run(tmp_path / "cut", epochs=2, data=data).fit() == full


def test_data_order_is_drawn_on_the_cpu_whatever_the_device():
    ds = _data().train
    loader = DeviceLoader(ds, 8, "cpu", shuffle=True, seed=3)
    for epoch in (0, 5):
        loader.set_epoch(epoch)
        want = torch.randperm(len(ds), generator=epoch_generator(3, epoch, "cpu"))
        assert torch.equal(loader.order(), want)
    assert torch.equal(DeviceLoader(ds, 8, "cpu").order(), torch.arange(len(ds)))


@pytest.mark.parametrize("bf16", [False, True])
def test_the_teacher_forward_follows_the_recipes_bf16(tmp_path, monkeypatch, bf16):
    """The teacher's autocast is the recipe's choice (it used to be bf16 on CUDA regardless)."""
    import contextlib

    seen = []

    def spy(device, enabled):
        seen.append(enabled)
        return contextlib.nullcontext()

    monkeypatch.setattr(distill_trainer, "autocast", spy)
    teacher = freeze(create_model("resnet8", num_classes=10))
    distiller = create_distiller("kd", teacher, None)
    criterion = distill_trainer.distill_criterion(teacher, distiller, torch.device("cpu"), bf16)
    student = create_model("resnet8", num_classes=10)
    loss, _ = criterion(student, torch.randn(4, 3, 32, 32), torch.arange(4), None, 0)
    assert seen == [bf16] and torch.isfinite(loss)
    recipe = get_recipe("tiny", bf16=bf16)
    tr = DistillTrainer(tmp_path, student, teacher, distiller, _data(), recipe, seed=0, config={})
    tr.setup()
    tr.compile()
    seen.clear()
    tr.criterion(student, torch.randn(4, 3, 32, 32), torch.arange(4), None, 0)
    assert seen == [bf16]
