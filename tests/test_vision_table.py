"""The CE-vs-MSE table on fabricated run directories, against numbers computed by hand."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from bcpd_sim.cli import main
from bcpd_sim.vision.table import build_table, collect_runs, to_markdown

T_975_2 = 4.302652729749464  # Student t quantile, 0.975, 2 degrees of freedom


def _write_run(root, name, **fields):
    record = {
        "dataset": "cifar100",
        "teacher_arch": "resnet56",
        "student_arch": "resnet20",
        "method": "kd",
        "teacher_mse_to_pstar": None,
        "teacher_kl_to_pstar": None,
    }
    record.update(fields)
    d = root / name
    d.mkdir(parents=True)
    (d / "result.json").write_text(json.dumps(record))
    return d


@pytest.fixture()
def runs_root(tmp_path):
    root = tmp_path / "sweep"
    last = {"ce": [0.70, 0.71, 0.72], "mse": [0.72, 0.72, 0.75]}
    best = {"ce": [0.71, 0.72, 0.73], "mse": [0.73, 0.73, 0.73]}
    teachers = {
        "ce": [("t_ce", 0.7234)] * 3,
        "mse": [("t_mse0", 0.71), ("t_mse1", 0.72), ("t_mse0", 0.71)],
    }
    for loss in ("ce", "mse"):
        for seed in range(3):
            ckpt, tacc = teachers[loss][seed]
            _write_run(
                root,
                f"kd-{loss}-s{seed}",
                teacher_loss=loss,
                seed=seed,
                test_acc_last=last[loss][seed],
                test_acc_best=best[loss][seed],
                teacher_checkpoint=ckpt,
                teacher_test_acc=tacc,
            )
    for loss, (mse, kl, acc) in {"ce": (0.2, 0.5, 0.90), "mse": (0.1, 0.3, 0.88)}.items():
        _write_run(
            root / "synthetic",
            f"dkd-{loss}",
            dataset="synthetic",
            teacher_arch="wrn_40_2",
            student_arch="wrn_16_2",
            method="dkd",
            teacher_loss=loss,
            seed=0,
            test_acc_last=acc - 0.05,
            test_acc_best=acc - 0.04,
            teacher_checkpoint=f"syn_{loss}",
            teacher_test_acc=acc,
            teacher_mse_to_pstar=mse,
            teacher_kl_to_pstar=kl,
        )
    # An unfinished run (no result.json) is ignored.
    (root / "unfinished").mkdir()
    return root


def test_table_numbers_match_hand_computation(runs_root):
    table = build_table(collect_runs([runs_root]))
    assert len(table) == 2
    kd = table[table["method"] == "kd"].iloc[0]
    assert kd["ce_last_mean"] == pytest.approx(71.0)
    assert kd["ce_last_sd"] == pytest.approx(1.0)
    assert kd["mse_last_mean"] == pytest.approx(73.0)
    assert kd["mse_last_sd"] == pytest.approx(math.sqrt(3))
    assert kd["ce_best_mean"] == pytest.approx(72.0)
    assert kd["mse_best_mean"] == pytest.approx(73.0)
    assert kd["mse_best_sd"] == pytest.approx(0.0, abs=1e-12)
    # Paired differences (MSE - CE) per seed: last 2, 1, 3; best 2, 1, 0 (sd 1 both).
    half = T_975_2 * 1.0 / math.sqrt(3)
    assert kd["diff_last_mean"] == pytest.approx(2.0)
    assert (kd["diff_last_lo"], kd["diff_last_hi"]) == pytest.approx((2 - half, 2 + half))
    assert kd["diff_best_mean"] == pytest.approx(1.0)
    assert (kd["diff_best_lo"], kd["diff_best_hi"]) == pytest.approx((1 - half, 1 + half))
    assert (kd["n_ce"], kd["n_mse"], kd["n_pairs"]) == (3, 3, 3)
    # Teachers: one CE checkpoint; two distinct MSE checkpoints (71, 72).
    assert kd["teacher_ce_acc_mean"] == pytest.approx(72.34)
    assert math.isnan(kd["teacher_ce_acc_sd"])
    assert kd["teacher_mse_acc_mean"] == pytest.approx(71.5)
    assert kd["teacher_mse_acc_sd"] == pytest.approx(math.sqrt(0.5))
    assert math.isnan(kd["teacher_ce_mse_pstar"])

    syn = table[table["dataset"] == "synthetic"].iloc[0]
    assert syn["diff_last_mean"] == pytest.approx(-2.0)
    assert math.isnan(syn["diff_last_lo"])
    assert (syn["teacher_ce_mse_pstar"], syn["teacher_mse_mse_pstar"]) == pytest.approx((0.2, 0.1))
    assert (syn["teacher_ce_kl_pstar"], syn["teacher_mse_kl_pstar"]) == pytest.approx((0.5, 0.3))

    md = to_markdown(table)
    assert (
        "| cifar100 | resnet56 -> resnet20 | kd | 71.00 ± 1.00 | 72.00 ± 1.00 | 73.00 ± 1.73 |"
        in md
    )
    assert f"+2.00 [{2 - half:+.2f}, {2 + half:+.2f}]" in md
    assert "teacher MSE to p* (CE)" in md and "0.2000" in md


def test_pairing_uses_only_common_seeds(tmp_path):
    for loss, seeds in (("ce", (0, 1)), ("mse", (1, 2))):
        for s in seeds:
            acc = 0.5 + 0.01 * s + (0.1 if loss == "mse" else 0.0)
            _write_run(
                tmp_path,
                f"{loss}{s}",
                teacher_loss=loss,
                seed=s,
                test_acc_last=acc,
                test_acc_best=acc,
                teacher_checkpoint=loss,
                teacher_test_acc=0.6,
            )
    row = build_table(collect_runs([tmp_path])).iloc[0]
    assert (row["n_ce"], row["n_mse"], row["n_pairs"]) == (2, 2, 1)
    assert row["diff_last_mean"] == pytest.approx(10.0)
    assert row["ce_last_mean"] == pytest.approx(50.5)


def test_table_cli_writes_markdown_and_csv(runs_root, tmp_path, capsys):
    out = tmp_path / "out" / "table.md"
    assert main(["cifar100", "table", str(runs_root), "--out", str(out)]) == 0
    assert "resnet56 -> resnet20" in capsys.readouterr().out
    assert out.is_file()
    csv = pd.read_csv(out.with_suffix(".csv"))
    assert set(csv["method"]) == {"kd", "dkd"}
    assert csv.loc[csv["method"] == "kd", "diff_last_mean"].item() == pytest.approx(2.0)


def test_table_cli_bad_input_exits_2(tmp_path, capsys):
    assert main(["cifar100", "table", str(tmp_path / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["cifar100", "table", str(tmp_path)]) == 2
    assert "no finished distillation runs" in capsys.readouterr().err
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "result.json").write_text(json.dumps({"method": "kd"}))
    assert main(["cifar100", "table", str(bad)]) == 2
    assert "lacks field" in capsys.readouterr().err


def test_top5_columns_when_runs_record_it(tmp_path, runs_root):
    assert "top-5" not in to_markdown(build_table(collect_runs([runs_root])))  # older results
    for loss, top5 in (("ce", (0.90, 0.92)), ("mse", (0.94, 0.96))):
        for seed in range(2):
            _write_run(
                tmp_path / "top5",
                f"{loss}-{seed}",
                teacher_loss=loss,
                seed=seed,
                test_acc_last=0.7,
                test_acc_best=0.7,
                teacher_checkpoint=loss,
                teacher_test_acc=0.7,
                test_top5_last=top5[seed],
                test_top5_best=top5[seed] + 0.01,
            )
    table = build_table(collect_runs([tmp_path / "top5"]))
    row = table.iloc[0]
    assert row["ce_top5_last_mean"] == pytest.approx(91.0)
    assert row["mse_top5_best_mean"] == pytest.approx(96.0)
    assert row["mse_top5_last_sd"] == pytest.approx(math.sqrt(2))
    md = to_markdown(table)
    assert "top-5 CE teacher: last / best" in md and "| 91.00 / 92.00 | 95.00 / 96.00 |" in md


def test_full_train_runs_form_their_own_labelled_rows(tmp_path):
    """Runs trained on every image (no validation split) are never pooled with split runs, and
    the table says which rows report the anchors' last-epoch protocol."""
    root = tmp_path / "runs"
    for loss, acc in (("ce", 0.70), ("mse", 0.72)):
        for protocol in (None, "full_train_last_epoch"):
            fields = {} if protocol is None else {"protocol": protocol}
            _write_run(
                root,
                f"{loss}-{protocol}",
                teacher_loss=loss,
                seed=0,
                test_acc_last=acc + (0.05 if protocol else 0.0),
                test_acc_best=None if protocol else acc,
                teacher_checkpoint=f"t_{loss}",
                teacher_test_acc=0.75,
                **fields,
            )
    table = build_table(collect_runs([root]))
    assert sorted(table["protocol"]) == ["full_train_last_epoch", "val_split"]
    full = table[table["protocol"] == "full_train_last_epoch"].iloc[0]
    assert full["ce_last_mean"] == pytest.approx(75.0) and math.isnan(full["ce_best_mean"])
    text = to_markdown(table)
    assert "| kd (full train, last) |" in text and "| kd |" in text
    assert "no validation split" in text.splitlines()[0]
