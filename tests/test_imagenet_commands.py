"""``bcpd-sim imagenet teacher | distill | eval | table`` on a tiny generated ImageFolder, in one
process and under ``torchrun`` with two (gloo)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from bcpd_sim.cli import main
from bcpd_sim.imagenet.fake import write_fake_imagefolder

SMALL = ["--num-classes", "3", "--val-per-class", "1", "--crop-size", "16", "--resize-size", "18"]
RUN = ["--recipe", "tiny", "--epochs", "1", "--batch-size", "6", "--lr", "0.01", "--workers", "0"]
RUN += ["--device", "cpu", "--checkpoint-every", "0"]


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    base = tmp_path_factory.mktemp("imagenet_cli")
    write_fake_imagefolder(
        base / "data", num_classes=3, train_per_class=5, val_per_class=2, size=(24, 20)
    )
    return base


def teacher(root: Path, loss: str, out: str, *extra: str) -> Path:
    args = [
        "imagenet",
        "teacher",
        "--arch",
        "mobilenetv1",
        "--loss",
        loss,
        "--out",
        str(root / out),
    ]
    assert main([*args, "--data-dir", str(root / "data"), *SMALL, *RUN, *extra]) == 0
    return root / out


@pytest.fixture(scope="module")
def teachers(root):
    return {loss: teacher(root, loss, f"t_{loss}") for loss in ("ce", "mse")}


def test_teacher_run_records_everything(teachers, capsys):
    run = teachers["ce"]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["world_size"] == 1 and summary["per_rank_batch_size"] == 6
    assert summary["best_epoch"] == 1 and summary["last_epoch"] == 1
    record = json.loads((run / "config.json").read_text())
    assert (
        record["config"]["resolved_data"]["val_per_class"] == 1 and record["config"]["loss"] == "ce"
    )
    assert record["data"]["n_train"] == 12 and record["data"]["n_test"] == 6
    assert record["recipe"]["lr"] == 0.01 and record["effective"]["world_size"] == 1
    ckpt = torch.load(run / "checkpoints" / "last.pt", weights_only=False)
    assert ckpt["arch"] == "mobilenetv1" and "model.13.4.running_var" in ckpt["model"]
    # Rerunning the finished run retrains nothing and reports the same numbers.
    before = (run / "checkpoints" / "last.pt").stat().st_mtime_ns
    teacher(run.parent, "ce", "t_ce")
    assert (run / "checkpoints" / "last.pt").stat().st_mtime_ns == before


def test_eval_matches_the_run_and_reads_plain_state_dicts(teachers, root, capsys):
    run = teachers["mse"]
    summary = json.loads((run / "summary.json").read_text())
    out = root / "eval.json"
    data = ["--data-dir", str(root / "data"), *SMALL, "--workers", "0", "--device", "cpu"]
    assert (
        main(
            [
                "imagenet",
                "eval",
                "--checkpoint",
                str(run / "checkpoints/last.pt"),
                *data,
                "--out",
                str(out),
            ]
        )
        == 0
    )
    assert json.loads(out.read_text())["test_acc"] == pytest.approx(summary["last_epoch_test_acc"])
    assert json.loads(out.read_text())["test_nll"] == pytest.approx(summary["last_epoch_test_nll"])
    plain = root / "torchvision_style.pth"
    torch.save(torch.load(run / "checkpoints/last.pt", weights_only=False)["model"], plain)
    assert main(["imagenet", "eval", "--checkpoint", str(plain), *data]) == 2  # no --arch
    assert "say its --arch" in capsys.readouterr().err
    assert (
        main(["imagenet", "eval", "--checkpoint", str(plain), "--arch", "mobilenetv1", *data]) == 0
    )
    assert f"top-1 {summary['last_epoch_test_acc']:.4f}" in capsys.readouterr().out


def test_distill_both_teachers_and_table(teachers, root, capsys):
    for loss, run in teachers.items():
        args = ["imagenet", "distill", "--teacher", str(run / "checkpoints/last.pt")]
        args += ["--student", "mobilenetv1", "--method", "kd", "--out", str(root / f"kd_{loss}")]
        assert main([*args, *RUN]) == 0
    result = json.loads((root / "kd_mse" / "result.json").read_text())
    assert result["dataset"] == "imagenet" and result["teacher_loss"] == "mse"
    assert result["method_hparams"] == {"ce_weight": 0.5, "kd_weight": 0.5, "temperature": 1.0}
    record = json.loads((root / "kd_mse" / "config.json").read_text())
    assert record["config"]["resolved_data"]["crop_size"] == 16  # inherited from the teacher's run
    capsys.readouterr()
    assert main(["imagenet", "table", str(root / "kd_ce"), str(root / "kd_mse")]) == 0
    table = capsys.readouterr().out
    assert "mobilenetv1 -> mobilenetv1" in table and "| kd |" in table


def test_bad_input_is_one_line(root, capsys):
    assert main(["imagenet", "teacher", "--arch", "resnet19", "--out", str(root / "x")]) == 2
    assert "unknown arch 'resnet19'" in capsys.readouterr().err
    code = main(["imagenet", "teacher", "--out", str(root / "y"), "--data-dir", str(root / "no")])
    assert code == 2 and "not a folder" in capsys.readouterr().err
    args = ["imagenet", "teacher", "--out", str(root / "z"), "--data-dir", str(root / "data")]
    assert main([*args, "--recipe", "tiny", "--device", "cpu"]) == 2  # 3 folders, 1000 expected
    assert "expected 1000" in capsys.readouterr().err


@pytest.mark.slow
def test_torchrun_two_processes(root, teachers):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = root / "t_ce_2proc"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2"]
    cmd += [
        f"--master_port={port}",
        "-m",
        "bcpd_sim",
        "imagenet",
        "teacher",
        "--arch",
        "mobilenetv1",
    ]
    cmd += ["--out", str(out), "--data-dir", str(root / "data"), *SMALL, *RUN]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.count("run written to") == 1  # rank 0 reports
    summary = json.loads((out / "summary.json").read_text())
    assert summary["world_size"] == 2 and summary["per_rank_batch_size"] == 3
    one = json.loads((teachers["ce"] / "summary.json").read_text())
    # Same data order and augmentation; BatchNorm sees 3 images per rank instead of 6, so the
    # runs differ slightly; the held-out and test counts are the same.
    assert summary["epochs_trained"] == one["epochs_trained"] == 1
