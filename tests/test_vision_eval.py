"""``bcpd-sim cifar100 eval``: metrics against direct formulas, and equality with the numbers the
training run recorded for the same checkpoint."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from bcpd_sim.cli import main
from bcpd_sim.vision.checkpoint_eval import metrics_from_logits, run_data_settings, topk_accuracy
from bcpd_sim.vision.train import TeacherConfig, train_teacher


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_metrics_match_direct_formulas():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(50, 8)) * 3
    y = rng.integers(0, 8, size=50)
    p_star = rng.dirichlet(np.ones(8), size=50)
    got = metrics_from_logits(z, y, p_star)
    q = np.exp(z - z.max(1, keepdims=True))
    q /= q.sum(1, keepdims=True)
    top5 = np.argsort(-z, axis=1)[:, :5]
    assert got["top5"] == pytest.approx(np.mean([y[i] in top5[i] for i in range(50)]))
    assert got["acc"] == pytest.approx(np.mean(z.argmax(1) == y))
    assert got["nll"] == pytest.approx(-np.mean(np.log(q[np.arange(50), y])), rel=1e-12)
    assert got["brier"] == pytest.approx(np.mean(((q - np.eye(8)[y]) ** 2).sum(1)), rel=1e-12)
    assert got["mse_pstar"] == pytest.approx(np.mean(((q - p_star) ** 2).sum(1)), rel=1e-12)
    kl = np.mean((p_star * np.log(p_star / q)).sum(1))
    assert got["kl_pstar"] == pytest.approx(kl, rel=1e-12)
    # ECE with 15 equal-width bins, one bin at a time
    conf, right = q.max(1), (q.argmax(1) == y)
    ece = 0.0
    for b in range(15):
        inside = (conf > b / 15) & (conf <= (b + 1) / 15)
        if inside.any():
            ece += inside.mean() * abs(right[inside].mean() - conf[inside].mean())
    assert got["ece"] == pytest.approx(ece, rel=1e-12)
    # top-k with ties counts the label as found; k >= K finds everything
    assert topk_accuracy(torch.zeros(3, 4), [0, 1, 3], k=1) == 1.0
    assert metrics_from_logits(z[:, :3], y % 3)["top5"] == 1.0


def test_data_settings_follow_the_run_and_overrides():
    ckpt = {
        "config": {"data": None, "resolved_data": {"data": "synthetic", "num_classes": 10}},
        "recipe": {"val_size": 16, "test_limit": 32},
    }
    s = run_data_settings(ckpt)
    assert s["data"] == "synthetic" and s["num_classes"] == 10 and s["val_size"] == 16
    assert run_data_settings(ckpt, test_limit=8, data_seed=3)["test_limit"] == 8
    assert run_data_settings({"config": {}, "recipe": None})["data"] == "cifar100"


def test_eval_equals_what_training_recorded(tmp_path, capsys):
    out = tmp_path / "run"
    train_teacher(
        TeacherConfig(
            out=str(out),
            arch="resnet8",
            loss="mse",
            data="synthetic",
            num_classes=10,
            epochs=2,
            recipe="tiny",
            device="cpu",
            train_limit=80,
            val_size=16,
            test_limit=32,
            batch_size=32,
        )
    )
    history = pd.read_csv(out / "metrics.csv")
    summary = json.loads((out / "summary.json").read_text())
    for name, row in (("last.pt", history.iloc[-1]), ("best.pt", None)):
        if row is None:
            row = history[history["epoch"] == summary["best_epoch"]].iloc[0]
        path = out / "checkpoints" / name
        assert main(["cifar100", "eval", str(path), "--out", str(tmp_path / "e.json")]) == 0
        table = capsys.readouterr().out
        assert "top-5 accuracy" in table and "MSE to p*" in table
        result = json.loads((tmp_path / "e.json").read_text())
        assert result["n"] == 32 and result["data"]["data"] == "synthetic"
        for key in ("acc", "top5", "nll", "brier", "mse_pstar", "kl_pstar"):
            assert result["metrics"][key] == pytest.approx(row[f"test_{key}"], rel=1e-9, abs=1e-12)
    assert "best_epoch_test_top5" in summary and "last_epoch_test_top5" in summary
    # JSON on stdout; the validation split on request; bad input exits 2
    assert main(["cifar100", "eval", str(path), "--json", "--split", "val"]) == 0
    assert json.loads(capsys.readouterr().out)["n"] == 16
    assert main(["cifar100", "eval", str(tmp_path / "missing.pt")]) == 2
    assert main(["cifar100", "eval", str(path), "--num-classes", "5"]) == 2
