"""Importing RepDistiller / mdistiller teachers: every layout of their CIFAR-100 zoo converts
(each tensor lands once, same shape and role, nothing left over), the command, and its errors.

The layouts (names and shapes of their ``state_dict()`` at 100 classes) are in
``tests/data/repdistiller_mdistiller_cifar100_state_dicts.json``; fake checkpoints are built from
them with random tensors.
"""

from __future__ import annotations

import argparse
import json
from collections import OrderedDict
from pathlib import Path

import pytest
import torch

from bcpd_sim.cli import main
from bcpd_sim.errors import ConfigError
from bcpd_sim.vision.checkpoint import load_model
from bcpd_sim.vision.interop import (
    arch_from_path,
    convert_state_dict,
    foreign_roles,
    import_checkpoint,
    our_arch,
    our_roles,
    rename,
)
from bcpd_sim.vision.models import count_parameters, create_model

LAYOUTS = json.loads(
    (
        Path(__file__).parent / "data" / "repdistiller_mdistiller_cifar100_state_dicts.json"
    ).read_text()
)


def fake_state_dict(arch: str, seed: int = 0) -> OrderedDict:
    """Random tensors with their names and shapes (BN counters as int64 scalars, running
    variances positive, so the network computes finite outputs)."""
    g = torch.Generator().manual_seed(seed)
    out = OrderedDict()
    for key, shape in LAYOUTS[arch].items():
        if key.endswith("num_batches_tracked"):
            out[key] = torch.tensor(1000 + len(out))
        elif key.endswith("running_var"):
            out[key] = 0.5 + torch.rand(shape, generator=g)
        else:
            out[key] = 0.1 * torch.randn(shape, generator=g)
    return out


@pytest.mark.parametrize("arch", sorted(LAYOUTS))
def test_every_foreign_layout_lands_whole(arch):
    foreign = fake_state_dict(arch)
    ours = convert_state_dict(foreign, arch)
    model = create_model(our_arch(arch), num_classes=100)
    model.load_state_dict(ours)  # strict: nothing missing, nothing unexpected
    assert len(ours) == len(foreign) == len(model.state_dict())
    roles, their_roles = our_roles(model), foreign_roles(foreign)
    assert set(roles) == set(ours)
    targets = [rename(k, our_arch(arch)) for k in foreign]
    assert len(set(targets)) == len(targets)  # one-to-one
    assert targets == list(model.state_dict())  # both zoos build their layers in the same order
    for key, target in zip(foreign, targets):
        assert torch.equal(model.state_dict()[target], foreign[key]), key  # this tensor landed
        assert their_roles[key] == roles[target], key
    # trainable parameter counts agree with the reference table
    n_foreign = sum(
        v.numel()
        for k, v in foreign.items()
        if not k.rsplit(".", 1)[-1].startswith(("running", "num_"))
    )
    assert count_parameters(model) == n_foreign


def test_roles_are_read_from_structure():
    roles = foreign_roles(fake_state_dict("vgg8"))
    assert roles["block0.0.weight"] == "conv.weight" and roles["block0.0.bias"] == "conv.bias"
    assert (
        roles["block0.1.weight"] == "bn.weight"
        and roles["block0.1.running_var"] == "bn.running_var"
    )
    assert (
        roles["classifier.weight"] == "linear.weight" and roles["classifier.bias"] == "linear.bias"
    )


def test_wrong_arch_shape_and_leftovers_are_refused():
    sd = fake_state_dict("resnet8")
    with pytest.raises(ConfigError, match="lacks .* tensor.*wrong --arch"):
        convert_state_dict(sd, "resnet14")
    with pytest.raises(ConfigError, match="no counterpart"):
        convert_state_dict({**sd, "extra.weight": torch.zeros(3)}, "resnet8")
    bad = dict(sd)
    bad["conv1.weight"] = torch.zeros(16, 3, 1, 1)
    with pytest.raises(ConfigError, match=r"shape \(16, 3, 1, 1\)"):
        convert_state_dict(bad, "resnet8")
    with pytest.raises(ConfigError, match="arch"):
        convert_state_dict(sd, "resnet9")


def test_arch_from_repdistiller_and_mdistiller_folders(tmp_path):
    assert (
        arch_from_path("save/models/resnet32x4_cifar100_lr_0.05_decay_0.0005_trial_0/x.pth")
        == "resnet32x4"
    )
    assert (
        arch_from_path("save/models/wrn_40_2_cifar100_lr_0.05_decay_0.0005_trial_0/x.pth")
        == "wrn_40_2"
    )
    assert arch_from_path("cifar_teachers/ShuffleV2_vanilla/ckpt_epoch_240.pth") == "ShuffleV2"
    with pytest.raises(ConfigError, match="give --arch"):
        arch_from_path("downloads/teacher.pth")


def _repdistiller_last(tmp_path, arch="resnet8") -> Path:
    """RepDistiller's ``<arch>_last.pth``: opt namespace, model, optimizer."""
    folder = tmp_path / f"{arch}_cifar100_lr_0.05_decay_0.0005_trial_0"
    folder.mkdir()
    path = folder / f"{arch}_last.pth"
    opt = argparse.Namespace(model=arch, learning_rate=0.05, lr_decay_epochs=[150, 180, 210])
    torch.save({"opt": opt, "model": fake_state_dict(arch), "optimizer": {"state": {}}}, path)
    return path


def test_import_command_writes_a_checkpoint_anyone_can_open(tmp_path, capsys):
    src = _repdistiller_last(tmp_path)
    out = tmp_path / "imported"
    assert (
        main(["cifar100", "import", str(src), "--format", "repdistiller", "--out", str(out)]) == 0
    )
    assert "resnet8" in capsys.readouterr().out
    raw = torch.load(out / "teacher.pt", weights_only=True)
    assert raw["arch"] == "resnet8" and raw["num_classes"] == 100 and raw["loss"] == "ce"
    assert raw["kind"] == "imported" and raw["source"]["options"]["learning_rate"] == 0.05
    model, _ = load_model(out / "teacher.pt")
    assert torch.equal(model.conv1.weight, fake_state_dict("resnet8")["conv1.weight"])
    record = json.loads((out / "import.json").read_text())
    assert record["format"] == "repdistiller" and len(record["sha256"]) == 64


def test_mdistiller_release_file_and_bad_input(tmp_path, capsys):
    folder = tmp_path / "MobileNetV2_vanilla"
    folder.mkdir()
    path = folder / "ckpt_epoch_240.pth"
    torch.save({"model": fake_state_dict("MobileNetV2"), "epoch": 240, "best_acc": 64.6}, path)
    ckpt = import_checkpoint(path, "mdistiller")
    assert ckpt["arch"] == "mobilenetv2" and ckpt["epoch"] == 240
    assert ckpt["source"]["reported_accuracy"] == pytest.approx(64.6)
    # a wrong --arch, an unknown format and a missing file: one line, exit 2
    argv = ["cifar100", "import", str(path), "--format", "mdistiller", "--out", str(tmp_path / "o")]
    assert main([*argv, "--arch", "resnet8"]) == 2
    assert (
        main(
            [
                "cifar100",
                "import",
                str(tmp_path / "nope.pth"),
                "--format",
                "mdistiller",
                "--out",
                "o",
            ]
        )
        == 2
    )
    with pytest.raises(SystemExit):
        main(["cifar100", "import", str(path), "--format", "timm", "--out", "o"])
    err = capsys.readouterr().err
    assert all(line.startswith(("bcpd-sim", "usage")) for line in err.strip().splitlines())


def test_converted_teacher_distils_a_student_end_to_end(tmp_path):
    """A fake mdistiller resnet8 teacher, imported, distils a student on synthetic data."""
    from bcpd_sim.vision.distill.trainer import DistillConfig, distill

    folder = tmp_path / "resnet8_vanilla"
    folder.mkdir()
    torch.save({"model": fake_state_dict("resnet8"), "epoch": 240}, folder / "ckpt_epoch_240.pth")
    out = tmp_path / "imported"
    argv = ["cifar100", "import", str(folder / "ckpt_epoch_240.pth"), "--format", "mdistiller"]
    assert main([*argv, "--out", str(out)]) == 0
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        result = distill(
            DistillConfig(
                out=str(tmp_path / "run"),
                teacher=str(out / "teacher.pt"),
                student="resnet8",
                method="kd",
                data="synthetic",
                num_classes=100,
                recipe="tiny",
                epochs=1,
                device="cpu",
                train_limit=80,
                val_size=16,
                test_limit=32,
                batch_size=32,
            )
        )
    finally:
        torch.set_num_threads(before)
    assert result["teacher_arch"] == "resnet8" and result["teacher_loss"] == "ce"
    assert 0.0 <= result["test_acc_last"] <= 1.0
    student = torch.load(tmp_path / "run" / "checkpoints" / "last.pt", weights_only=True)
    assert student["arch"] == "resnet8" and student["num_classes"] == 100
