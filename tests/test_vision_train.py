"""Teacher losses, recipes, the training loop (resume, checkpoints, run records) and the CLI."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from bcpd_sim import cli
from bcpd_sim.errors import ConfigError
from bcpd_sim.vision import losses as vlosses
from bcpd_sim.vision.data import write_fake_cifar100
from bcpd_sim.vision.losses import mse_logits_loss, mse_loss, teacher_loss
from bcpd_sim.vision.pipeline import DeviceLoader
from bcpd_sim.vision.recipes import StepSchedule, get_recipe, make_optimizer, make_scheduler
from bcpd_sim.vision.train import (
    TeacherConfig,
    load_model_from_checkpoint,
    read_summary,
    train_teacher,
)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One intra-op thread: on a shared 2-core machine two OpenMP threads can run 5-10x slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# ---------------------------------------------------------------------------------- losses


def _fixed_logits():
    rng = np.random.default_rng(0)
    return rng.normal(size=(6, 5)) * 2, rng.integers(0, 5, size=6)


def test_mse_loss_value_and_gradient_match_the_formula_and_differ_from_ce():
    z, y = _fixed_logits()
    onehot = np.eye(5)[y]
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    # Brier: mean_n sum_k (p - e)^2; gradient wrt logits: 2/N * p_j ((p_j - e_j) - sum_k p_k (p_k - e_k)).
    value = np.mean(np.sum((p - onehot) ** 2, axis=1))
    r = p - onehot
    grad = 2 / len(z) * p * (r - np.sum(p * r, axis=1, keepdims=True))
    zt = torch.tensor(z, requires_grad=True)
    loss = teacher_loss("mse")(zt, torch.tensor(y))
    loss.backward()
    np.testing.assert_allclose(loss.item(), value, rtol=1e-6)
    np.testing.assert_allclose(zt.grad.numpy(), grad, rtol=1e-5, atol=1e-7)
    # Cross-entropy gives a different value and gradient ((p - e) / N).
    zc = torch.tensor(z, requires_grad=True)
    ce = teacher_loss("ce")(zc, torch.tensor(y))
    ce.backward()
    np.testing.assert_allclose(zc.grad.numpy(), (p - onehot) / len(z), rtol=1e-5, atol=1e-7)
    assert abs(ce.item() - loss.item()) > 0.1
    assert np.abs(zc.grad.numpy() - grad).max() > 1e-2
    # The scale option multiplies value and gradient.
    zs = torch.tensor(z, requires_grad=True)
    scaled = teacher_loss("mse", mse_scale=3.0)(zs, torch.tensor(y))
    scaled.backward()
    np.testing.assert_allclose(scaled.item(), 3 * value, rtol=1e-6)
    np.testing.assert_allclose(zs.grad.numpy(), 3 * grad, rtol=1e-5, atol=1e-7)


def test_mse_logits_is_the_official_variant_and_names_are_checked():
    z, y = _fixed_logits()
    expected = np.mean((z - np.eye(5)[y]) ** 2)
    got = mse_logits_loss(torch.tensor(z), torch.tensor(y)).item()
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    assert teacher_loss("mse_logits").fn is mse_logits_loss
    assert teacher_loss("mse").fn is mse_loss
    with pytest.raises(ConfigError, match="unknown loss 'MSE'"):
        teacher_loss("MSE")
    with pytest.raises(ConfigError, match="mse_scale"):
        teacher_loss("ce", mse_scale=2.0)


def test_cifar_teacher_losses_are_the_ensembles_named_losses():
    """The CIFAR side uses the ensemble registry's teacher-loss names, with the same meaning:
    each CIFAR loss equals the batch mean of the ensemble loss of that name (its options)."""
    from bcpd_sim.ensemble import TEACHER_LOSSES, loss_and_grad, make_loss

    z, y = _fixed_logits()
    zt, yt = torch.tensor(z), torch.tensor(y)
    for name in vlosses.list_losses():
        assert name in TEACHER_LOSSES, name
        base, options = TEACHER_LOSSES[name]
        per_sample, _ = loss_and_grad(make_loss(base, options), zt[None], y=yt[None])
        # the CIFAR losses compute in float32 (bf16-safe); the ensemble's here in float64
        assert float(teacher_loss(name)(zt, yt)) == pytest.approx(
            float(per_sample.mean()), rel=1e-6
        )


# --------------------------------------------------------------------------------- recipes


def test_recipes_follow_the_benchmark_and_schedule():
    std = get_recipe("standard")
    assert (std.epochs, std.batch_size, std.lr) == (240, 64, 0.05)
    assert (std.momentum, std.weight_decay) == (0.9, 5e-4)
    assert std.milestones == (150, 180, 210) and std.gamma == 0.1
    assert std.lr_for("mobilenetv2") == 0.01 and std.lr_for("shufflenetv1") == 0.01
    assert std.lr_for("resnet56") == 0.05
    fast = get_recipe("fast")
    assert fast.batch_size == 512 and fast.bf16 and fast.channels_last and fast.warmup_epochs > 0
    assert get_recipe("standard", epochs=100).milestones == (62, 75, 87)
    sched = StepSchedule(steps_per_epoch=10, warmup_epochs=2, milestones=(3, 5), gamma=0.1)
    assert sched(0) == pytest.approx(1 / 20) and sched(19) == pytest.approx(1.0)
    assert sched(29) == 1.0 and sched(30) == pytest.approx(0.1) and sched(50) == pytest.approx(0.01)
    model = torch.nn.Linear(2, 2)
    opt = make_optimizer(model.parameters(), std, "resnet20")
    sch = make_scheduler(opt, std, steps_per_epoch=2)
    for _ in range(2 * 150):
        opt.step()
        sch.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(0.005)
    with pytest.raises(ConfigError, match="recipe"):
        get_recipe("slow")


# ---------------------------------------------------------------------------- training loop


def _config(out, **kw) -> TeacherConfig:
    base = dict(
        out=str(out),
        arch="resnet8",
        loss="ce",
        recipe="tiny",
        data="synthetic",
        num_classes=10,
        train_limit=600,
        test_limit=200,
        val_size=100,
        device="cpu",
    )
    base.update(kw)
    return TeacherConfig(**base)


TIMING = ["epoch_seconds", "images_per_s"]


def test_two_epochs_learn_and_resume_to_the_same_result(tmp_path, monkeypatch):
    full = train_teacher(_config(tmp_path / "full"))
    # Chance is 0.1 with ten classes.
    assert full["last_epoch_test_acc"] > 0.25
    assert full["best_epoch"] in (1, 2) and full["best_epoch_test_acc"] is not None
    assert {"last_epoch_test_kl_pstar", "best_epoch_test_mse_pstar", "bayes_test_acc"} <= set(full)

    class Interrupt(Exception):
        pass

    # Interrupt once at the end of epoch 1 (after its checkpoint) ...
    def stop(epoch, row):
        if epoch == 1:
            raise Interrupt

    with pytest.raises(Interrupt):
        train_teacher(_config(tmp_path / "cut"), on_epoch_end=stop)
    # ... and once in the middle of epoch 2, as a kill would (15 steps per epoch).
    real_iter = DeviceLoader.__iter__

    def dying_iter(self):
        for i, batch in enumerate(real_iter(self)):
            if self.shuffle and i == 5:
                raise Interrupt
            yield batch

    with monkeypatch.context() as m:
        m.setattr(DeviceLoader, "__iter__", dying_iter)
        with pytest.raises(Interrupt):
            train_teacher(_config(tmp_path / "cut"))
    assert not (tmp_path / "cut" / "summary.json").exists()
    resumed = train_teacher(_config(tmp_path / "cut", device="auto"))
    assert resumed == full
    a = torch.load(tmp_path / "full/checkpoints/last.pt", weights_only=False)
    b = torch.load(tmp_path / "cut/checkpoints/last.pt", weights_only=False)
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key
    ma = pd.read_csv(tmp_path / "full/metrics.csv").drop(columns=TIMING)
    mb = pd.read_csv(tmp_path / "cut/metrics.csv").drop(columns=TIMING)
    pd.testing.assert_frame_equal(ma, mb)

    # The run record: config, seed, versions, effective settings; both accuracies labelled.
    record = json.loads((tmp_path / "full/config.json").read_text())
    assert record["seed"] == 0 and record["config"]["arch"] == "resnet8"
    assert record["environment"]["torch"] == torch.__version__
    assert record["effective"]["augment"] is False  # synthetic data: p* is for unaugmented images
    assert set(read_summary(tmp_path / "full")) >= {"last_epoch_test_acc", "best_epoch_test_acc"}
    assert {"last.pt", "best.pt", "epoch_0001.pt", "epoch_0002.pt"} <= {
        p.name for p in (tmp_path / "full/checkpoints").iterdir()
    }
    # A finished run is reported, not retrained; a different config is refused.
    assert train_teacher(_config(tmp_path / "full")) == full
    with pytest.raises(ConfigError, match="different config.*loss"):
        train_teacher(_config(tmp_path / "full", loss="mse"))
    # The best checkpoint rebuilds the model (for distillation).
    model, ckpt = load_model_from_checkpoint(tmp_path / "full/checkpoints/best.pt", num_classes=10)
    assert ckpt["epoch"] == full["best_epoch"] and not model.training
    with pytest.raises(ConfigError, match="10 classes"):
        load_model_from_checkpoint(tmp_path / "full/checkpoints/best.pt", num_classes=100)


def test_full_train_uses_every_image_and_reports_the_last_epoch(tmp_path):
    summary = train_teacher(_config(tmp_path / "full", val_size=None, full_train=True, epochs=1))
    record = json.loads((tmp_path / "full/config.json").read_text())
    assert record["data"]["n_val"] == 0 and record["data"]["n_train"] == 600
    assert record["recipe"]["val_size"] == 0 and record["config"]["full_train"] is True
    assert (
        summary["protocol"] == "full_train_last_epoch"
        and "no validation split" in summary["selection"]
    )
    assert summary["best_epoch"] is None and summary["best_epoch_test_acc"] is None
    assert summary["last_epoch_test_acc"] > 0
    with pytest.raises(ConfigError, match="full_train uses no validation split"):
        _config(tmp_path / "bad", full_train=True, val_size=100).validate()


def test_mse_teacher_really_trains_with_mse(tmp_path, monkeypatch):
    calls = {"ce": 0, "mse": 0}
    real_ce, real_mse = vlosses.LOSSES["ce"], vlosses.LOSSES["mse"]
    seen_first = {}

    def spy_ce(logits, targets, scale=1.0):
        calls["ce"] += 1
        return real_ce(logits, targets, scale)

    def spy_mse(logits, targets, scale=1.0):
        calls["mse"] += 1
        out = real_mse(logits, targets, scale)
        if "value" not in seen_first:
            p = torch.softmax(logits.detach().double(), 1)
            e = F.one_hot(targets, p.shape[1]).double()
            seen_first["value"] = out.item()
            seen_first["formula"] = scale * ((p - e) ** 2).sum(1).mean().item()
        return out

    monkeypatch.setitem(vlosses.LOSSES, "ce", spy_ce)
    monkeypatch.setitem(vlosses.LOSSES, "mse", spy_mse)
    summary = train_teacher(_config(tmp_path / "mse", loss="mse", mse_scale=2.0, epochs=1))
    # 600 images minus 100 for validation, batch 32, last partial batch dropped: 15 steps.
    assert calls["ce"] == 0 and calls["mse"] == 500 // 32
    assert seen_first["value"] == pytest.approx(seen_first["formula"], rel=1e-5)
    record = json.loads((tmp_path / "mse/config.json").read_text())
    assert record["config"]["loss"] == "mse" and record["config"]["mse_scale"] == 2.0
    assert record["config"]["loss_function"].endswith(".spy_mse")  # the function actually called
    metrics = pd.read_csv(tmp_path / "mse/metrics.csv")
    assert metrics["train_loss"].iloc[0] < 2 * 2.0  # Brier <= 2, times the scale; CE would be ~2.3
    assert summary["loss"] == "mse"


# ------------------------------------------------------------------------------------- CLI


def _cli(capsys, *args):
    code = cli.main(["cifar100", "teacher", *args])
    return code, capsys.readouterr()


def test_cli_runs_on_official_format_data(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("BCPD_SIM_PROGRESS", "0")
    write_fake_cifar100(tmp_path / "cifar", n_train=300, n_test=60, num_classes=100)
    args = "--arch resnet8 --loss mse --recipe tiny --epochs 1 --val-size 50 --device cpu"
    code, out = _cli(
        capsys, *args.split(), "--data-dir", str(tmp_path / "cifar"), "--out", str(tmp_path / "run")
    )
    assert code == 0, out.err
    assert "last-epoch (1) test acc" in out.out and "best-epoch (1, by val acc)" in out.out
    record = json.loads((tmp_path / "run/config.json").read_text())
    assert record["effective"]["augment"] is True and record["data"]["n_val"] == 50


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--arch", "resnet9000"], "unknown arch 'resnet9000'"),
        (["--loss", "brier"], "unknown loss 'brier'"),
        (["--recipe", "slow"], "unknown recipe 'slow'"),
        (["--data", "imagenet"], "unknown data 'imagenet'"),
        (["--data-dir", "/nonexistent/cifar"], "does not exist"),
    ],
)
def test_cli_bad_input_is_one_line_exit_2(tmp_path, capsys, monkeypatch, args, message):
    monkeypatch.delenv("BCPD_SIM_CIFAR100", raising=False)
    code, out = _cli(capsys, "--arch", "resnet8", "--out", str(tmp_path / "x"), *args)
    assert code == 2
    lines = out.err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], out.err
    assert not (tmp_path / "x" / "checkpoints").exists()


def test_cli_missing_out_is_a_usage_error(capsys):
    assert cli.main(["cifar100", "teacher", "--arch", "resnet8"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--out" in err[0]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--train-limit", "0"], "train_limit must be an integer in [1, 10000000], got 0"),
        (["--set", "train_limit=0"], "(--train-limit)"),
        (["--num-classes", "1001"], "num_classes must be an integer in [2, 1000]"),
        (["--batch-size", "100000"], "batch_size must be an integer in [1, 65536]"),
        (["--epochs", "0"], "epochs must be an integer in [1, 100000]"),
        (["--lr", "0"], "lr must be a number in (0.0, 100.0], got 0.0"),
        (["--seed", "-1"], "seed must be an integer in [0, 4294967295]"),
        (["--set", "epochs=2.5"], "epochs must be an integer or none, got 2.5"),
        (["--set", "archh=resnet8"], "unknown config key 'archh'"),
        (["--loss", "ce", "--mse-scale", "2"], "mse_scale applies to the mse losses only"),
    ],
)
def test_bad_values_are_refused_before_any_work_and_by_print_config(
    tmp_path, capsys, args, message
):
    for extra in ([], ["--print-config"]):
        code, out = _cli(capsys, "--out", str(tmp_path / "x"), *args, *extra)
        assert code == 2 and out.out == ""
        lines = out.err.strip().splitlines()
        assert len(lines) == 1 and message in lines[0], out.err
        assert not (tmp_path / "x").exists()


def test_config_file_set_and_print_config_round_trip(tmp_path, capsys):
    from bcpd_sim.config import read_toml

    toml = tmp_path / "teacher.toml"
    toml.write_text('arch = "resnet8"\nloss = "mse"\nrecipe = "tiny"\nepochs = 3\n')
    code, out = _cli(
        capsys, "--config", str(toml), "--set", "epochs=1", "--out", "o", "--print-config"
    )
    assert code == 0
    printed = tmp_path / "printed.toml"
    printed.write_text(out.out)
    raw = read_toml(printed)
    # flags override the file, --set overrides both; the config's defaults fill the rest
    assert raw["arch"] == "resnet8" and raw["loss"] == "mse" and raw["epochs"] == 1
    assert raw["out"] == "o" and raw["device"] == "auto" and raw["data"] == "cifar100"
    assert TeacherConfig(**raw).validate() == TeacherConfig(
        out="o", arch="resnet8", loss="mse", recipe="tiny", epochs=1
    )


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_fast_recipe_runs_on_cuda(tmp_path):
    summary = train_teacher(
        _config(tmp_path / "gpu", recipe="fast", epochs=1, batch_size=64, device="cuda")
    )
    record = json.loads((tmp_path / "gpu/config.json").read_text())
    assert record["effective"]["bf16"] and record["effective"]["channels_last"]
    assert summary["last_epoch_test_acc"] > 0
