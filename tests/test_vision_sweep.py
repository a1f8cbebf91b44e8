"""The sweep: planning, skipping finished runs, local execution, the table, and Ray."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict

import pytest
import torch

from bcpd_sim.cli import main
from bcpd_sim.errors import ConfigError
from bcpd_sim.vision.sweep import SweepSpec, plan, run_sweep

TINY = dict(
    recipe="tiny",
    data="synthetic",
    num_classes=10,
    epochs=1,
    train_limit=64,
    val_size=16,
    test_limit=32,
    batch_size=32,
    device="cpu",
)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_plan_names_dependencies_and_teacher_seeds(tmp_path):
    spec = SweepSpec(
        out=str(tmp_path),
        pairs=[("resnet56", "resnet20"), ("wrn_40_2", "wrn_16_2")],
        methods=["kd", "dkd"],
        teacher_losses=["ce", "mse"],
        seeds=[0, 1, 2],
        teacher_seeds=2,
    )
    teachers, runs = plan(spec)
    assert len(teachers) == 2 * 2 * 2  # archs x losses x teacher seeds
    assert len(runs) == 2 * 2 * 2 * 3  # pairs x methods x losses x seeds
    run = next(r for r in runs if r.name == "wrn_40_2-mse-t0__wrn_16_2__dkd__s2")
    assert run.depends_on == "wrn_40_2-mse-t0"  # seed 2 uses teacher seed 2 % 2 = 0
    assert run.config.teacher.endswith("teachers/wrn_40_2-mse-t0/checkpoints/last.pt")
    assert not run.done
    (run.run_dir).mkdir(parents=True)
    (run.run_dir / "result.json").write_text("{}")
    assert not run.done  # no record of the config that made it: not reused
    record = {"config": {**asdict(run.config), "epochs": 7}}
    (run.run_dir / "config.json").write_text(json.dumps(record))
    assert not run.done  # made by another config: never reused
    record["config"]["epochs"] = run.config.epochs
    (run.run_dir / "config.json").write_text(json.dumps(record))
    assert run.done


@pytest.mark.parametrize(
    "bad, message",
    [
        (dict(pairs=[("resnet56", "nope")]), "unknown student architecture 'nope'"),
        (dict(methods=["kd", "xyz"]), "unknown distillation method 'xyz'"),
        (dict(teacher_losses=["hinge"]), "unknown teacher loss 'hinge'"),
        (dict(pairs=[]), "at least one"),
        (dict(method_options={"at": {}}), "not in the sweep"),
    ],
)
def test_spec_validation(tmp_path, bad, message):
    kwargs = dict(out=str(tmp_path), pairs=[("resnet56", "resnet20")], methods=["kd"])
    kwargs.update(bad)
    with pytest.raises(ConfigError, match=message):
        plan(SweepSpec(**kwargs))


def test_local_sweep_runs_skips_finished_and_writes_table(tmp_path, capsys):
    args = [
        "cifar100",
        "sweep",
        "--out",
        str(tmp_path),
        "--pair",
        "resnet8:resnet8",
        "--methods",
        "kd",
        "--teacher-losses",
        "ce",
        "mse",
        "--seeds",
        "0",
        "--recipe",
        "tiny",
        "--data",
        "synthetic",
        "--num-classes",
        "10",
        "--epochs",
        "1",
        "--train-limit",
        "64",
        "--val-size",
        "16",
        "--test-limit",
        "32",
        "--batch-size",
        "32",
        "--device",
        "cpu",
    ]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "sweep: 4 run, 0 already finished, 0 failed" in out
    assert (tmp_path / "table.md").is_file() and (tmp_path / "table.csv").is_file()
    assert "resnet8 -> resnet8 | kd" in (tmp_path / "table.md").read_text()
    result = json.loads(
        (tmp_path / "runs" / "resnet8-mse-t0__resnet8__kd__s0" / "result.json").read_text()
    )
    assert result["teacher_loss"] == "mse" and result["teacher_arch"] == "resnet8"
    # A rerun skips everything.
    assert main(args) == 0
    assert "sweep: 0 run, 4 already finished, 0 failed" in capsys.readouterr().out
    assert main([*args, "--dry-run"]) == 0
    assert capsys.readouterr().out.count("done  ") == 4


def test_failed_teacher_skips_its_runs(tmp_path):
    spec = SweepSpec(
        out=str(tmp_path),
        pairs=[("resnet8", "resnet8")],
        methods=["kd"],
        teacher_losses=["ce"],
        seeds=[0],
        **{**TINY, "data": "cifar100", "num_classes": None},
        data_dir=str(tmp_path / "no-cifar"),
    )
    report = run_sweep(spec, log=lambda m: None)
    assert not report.ok
    assert "does not exist" in report.failed["resnet8-ce-t0"]
    assert report.failed["resnet8-ce-t0__resnet8__kd__s0"] == "teacher resnet8-ce-t0 failed"


def test_ray_address_without_ray_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    spec = SweepSpec(out=str(tmp_path), pairs=[("resnet8", "resnet8")], **TINY)
    with pytest.raises(ConfigError, match="needs Ray"):
        run_sweep(spec, ray_address="auto")


@pytest.mark.slow
def test_sweep_on_local_ray_instance(tmp_path):
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        spec = SweepSpec(
            out=str(tmp_path),
            pairs=[("resnet8", "resnet8")],
            methods=["kd"],
            teacher_losses=["ce"],
            seeds=[0, 1],
            **TINY,
        )
        report = run_sweep(spec, ray_address="auto", log=lambda m: None)
        assert report.ok, report.failed
        assert sorted(report.ran) == [
            "resnet8-ce-t0",
            "resnet8-ce-t0__resnet8__kd__s0",
            "resnet8-ce-t0__resnet8__kd__s1",
        ]
        for seed in (0, 1):
            assert (
                tmp_path / "runs" / f"resnet8-ce-t0__resnet8__kd__s{seed}" / "result.json"
            ).is_file()
        again = run_sweep(spec, ray_address="auto", log=lambda m: None)
        assert again.ran == [] and len(again.skipped) == 3
    finally:
        ray.shutdown()


def test_sweep_reads_a_config_file_and_prints_it(tmp_path, capsys):
    toml = tmp_path / "sweep.toml"
    toml.write_text(
        'out = "S"\npairs = [["resnet56", "resnet20"], ["wrn_40_2", "wrn_16_2"]]\n'
        'methods = ["kd", "dkd"]\nseeds = [0, 1]\n[method_options.dkd]\nbeta = 4\n'
    )
    base = ["cifar100", "sweep", "--config", str(toml)]
    assert main([*base, "--set", "teacher_seeds=2", "--print-config"]) == 0
    out = capsys.readouterr().out
    assert 'pairs = [["resnet56", "resnet20"], ["wrn_40_2", "wrn_16_2"]]' in out
    assert "teacher_seeds = 2" in out and "method_options = {dkd = {beta = 4}}" in out
    assert main([*base, "--set", "method_options.dkd.beta=-1", "--print-config"]) == 2
    assert "dkd.beta must be finite and >= 0" in capsys.readouterr().err
    assert main([*base, "--pair", "resnet8:nope", "--print-config"]) == 2
    assert "unknown student architecture 'nope'" in capsys.readouterr().err
