"""Regime map, CNN variant: ResNet teachers memorise synthetic images with exact p*; lr selection
blind to the test set; summary = parquet; cells resume inside their runs; fresh-input students
never see a drawn label."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest
import torch

from bcpd_sim.errors import ConfigError
from bcpd_sim.mixtures.label_noise import symmetric_transition
from bcpd_sim.regimes.cnn import ModelGroup, make_teacher, train_cnn_teachers
from bcpd_sim.regimes.config import AXES, load_config
from bcpd_sim.regimes.students import _train_one, hard_labels
from bcpd_sim.regimes.study import run_regimes, torch_threads
from bcpd_sim.regimes.summary import paired_frame, write_summary
from bcpd_sim.regimes.world import make_world

#: The tiny CNN preset cut to one map column and the KD student loss: 2 cells (2 draws), 4
#: teacher runs, 8 student runs; about a minute on a quiet 2-core CPU.
SMALL = ["axes.n_train=[40]", "student.losses=['kd_t4']", "student.epochs=3", "data.n_test=100"]


@pytest.fixture(scope="module")
def cnn_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("regimes-cnn") / "run"
    cfg = load_config("cnn_tiny", overrides=SMALL)
    results, teachers = run_regimes(cfg, out)
    write_summary(out, results, cfg)
    return out, cfg, results, teachers


@pytest.mark.slow
def test_cnn_teachers_memorise_and_rows_say_what_they_are(cnn_run):
    out, cfg, res, teachers = cnn_run
    for name in ("results.parquet", "teachers.parquet", "config.toml"):
        assert (out / name).exists(), name
    # ResNet teachers reach 100% training accuracy (the regime the paper's CIFAR teachers are in).
    assert res.teacher_train_acc.max() >= 0.99
    assert set(res.model) == {"cnn"} and set(res.student_arch) == {"resnet8"}
    assert set(teachers.teacher_arch) == {"resnet8-w8"}
    assert set(res.teacher_loss) == {"ce", "mse"}
    assert set(res.draw) == {0, 1}
    assert set(res.student_inputs) == {"teacher_train", "fresh"}
    # The KD loss's CE term: drawn labels on the teacher's inputs, the teacher's argmax on fresh.
    kd = res[res.student_loss == "kd_t4"]
    assert set(kd[kd.student_inputs == "fresh"].student_hard_labels) == {"teacher_argmax"}
    assert set(kd[kd.student_inputs == "teacher_train"].student_hard_labels) == {"drawn"}
    assert not kd[kd.student_inputs == "fresh"].student_uses_labels.any()
    for col in ("student_acc", "student_acc_last", "mse_to_bcpd", "kl_to_bcpd", "teacher_ece"):
        assert res[col].notna().all(), col
    assert res.student_acc.between(0, 1).all()
    # Paired: the CE and MSE teachers of a replicate start from the same weights (same seed).
    t = teachers.set_index(["draw", "teacher_loss", "replicate"])
    assert (t.xs("ce", level=1).teacher_seed == t.xs("mse", level=1).teacher_seed).all()


@pytest.mark.slow
def test_cnn_summary_equals_the_parquet(cnn_run):
    out, cfg, res, _ = cnn_run
    summary = json.loads((out / "summary.json").read_text())
    joined = paired_frame(res, "mse", ["n_train", "width"])
    for cell in [c for c in summary["cells"] if c["loss_a"] == "mse"]:
        part = joined[
            (joined.lr_rule == cell["lr_rule"])
            & (joined.student_inputs == cell["student_inputs"])
            & (joined.student_loss == cell["student_loss"])
        ]
        d = (part.student_acc_a - part.student_acc_b).groupby(part.draw).mean()
        assert cell["student_gain"] == pytest.approx(d.mean(), abs=1e-12)
        ce = res[(res.teacher_loss == "ce") & (res.lr_rule == cell["lr_rule"])]
        ce = ce[(ce.student_inputs == cell["student_inputs"]) & (ce.student_loss == "kd_t4")]
        assert cell["ce_train_acc"] == pytest.approx(ce.teacher_train_acc.mean(), abs=1e-12)


@pytest.mark.slow
def test_a_cnn_cell_resumes_inside_its_runs(cnn_run):
    out, cfg, before, _ = cnn_run
    teacher_logs = sorted((out / "runs").rglob("teachers/*/metrics.csv"))
    assert teacher_logs
    stamps = [p.stat().st_mtime_ns for p in teacher_logs]
    # Forget one finished cell: its teachers and students are read back from their runs.
    next(iter(sorted((out / "cells").glob("*draw=1.parquet")))).unlink()
    again, _ = run_regimes(cfg, out)
    assert [p.stat().st_mtime_ns for p in teacher_logs] == stamps
    cols = ["teacher_loss", "draw", "student_inputs", "student_acc", "mse_to_bcpd", "teacher_acc"]
    key = ["draw", "teacher_loss", "lr_rule", "student_inputs", "student_loss"]
    pd.testing.assert_frame_equal(
        again.sort_values(key)[cols].reset_index(drop=True),
        before.sort_values(key)[cols].reset_index(drop=True),
    )


def _point(cfg):
    return {a: cfg.axis_values(a)[0] for a in AXES}


def test_cnn_lr_selection_never_reads_the_test_set(tmp_path):
    cfg = load_config(
        "cnn_tiny",
        overrides=["axes.n_train=[40]", "axes.epochs=[4]", "teacher.lr_grid=[0.01,0.05]"],
    )
    point = _point(cfg)
    world = make_world(cfg, point, 0)
    rng = np.random.default_rng(0)
    shuffled = dataclasses.replace(
        world, test=dataclasses.replace(world.test, y=rng.permutation(world.test.y))
    )
    with torch_threads(1):
        a = train_cnn_teachers(cfg, point, 0, world, tmp_path / "a")
        b = train_cnn_teachers(cfg, point, 0, shuffled, tmp_path / "b")
    assert {k: v.tuned_lr for k, v in a.items()} == {k: v.tuned_lr for k, v in b.items()}
    for k in a:
        pd.testing.assert_frame_equal(a[k].members, b[k].members)


def test_image_world_splits_are_independent_and_p_star_is_exact():
    cfg = load_config("cnn_tiny", overrides=["axes.n_train=[40]"])
    point = _point(cfg)
    w = make_world(cfg, point, 0)
    assert w.train.x.shape == (40, 3, 32, 32) and w.train.x.dtype == np.float32
    assert w.test.x.shape[0] == cfg.data.n_test and w.fresh.x.shape[0] == 40
    # Changing the test or validation size leaves the training images bit-identical.
    other = make_world(load_config("cnn_tiny", overrides=[*SMALL, "data.n_test=300"]), point, 0)
    assert np.array_equal(other.train.x, w.train.x) and np.array_equal(other.train.y, w.train.y)
    assert not np.array_equal(make_world(cfg, point, 1).train.x, w.train.x)  # a new draw
    # Exact p*: with symmetric label noise the images are the same and p* = p*_clean T
    # (T[k, j] = P(observed j | clean k)), an independent formula.
    noisy_cfg = load_config("cnn_tiny", overrides=["axes.n_train=[40]", "axes.label_noise=[0.3]"])
    noisy = make_world(noisy_cfg, _point(noisy_cfg), 0)
    assert np.array_equal(noisy.train.x, w.train.x)
    t = symmetric_transition(w.num_classes, 0.3)
    np.testing.assert_allclose(noisy.train.p_star, w.train.p_star @ t, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(w.train.p_star.sum(1), 1.0, rtol=1e-12)


def test_model_group_predicts_normalised_images_like_the_models():
    """ModelGroup's logits equal the model applied to the pipeline's normalised images."""
    from bcpd_sim.vision.pipeline import CIFAR100_MEAN, CIFAR100_STD

    torch.manual_seed(0)
    models = [make_teacher(8, 8, 4).eval() for _ in range(2)]
    x = np.random.default_rng(0).uniform(0.01, 0.99, (7, 3, 32, 32)).astype(np.float32)
    group = ModelGroup(models, np.array([1, 1]), device=torch.device("cpu"), batch_size=3)
    z = group.predict_logits(x)
    mean = torch.tensor(CIFAR100_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(CIFAR100_STD).view(1, 3, 1, 1)
    with torch.no_grad():
        ref = np.stack([m((torch.as_tensor(x) - mean) / std).double().numpy() for m in models])
    np.testing.assert_allclose(z, ref, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(group.predict_proba(x).sum(-1), 1.0, rtol=1e-12)
    assert group.predict_logits(x, members=[1]).shape == (1, 7, 4)


def test_mlp_students_on_fresh_inputs_never_read_the_drawn_labels():
    """kd_t4 on fresh inputs takes its CE label from the teacher: permuting the drawn labels of
    the fresh inputs changes no student."""
    cfg = load_config("smoke", overrides=["axes.n_train=[200]", "axes.width=[16]"])
    world = make_world(cfg, _point(cfg), 0)
    z = np.random.default_rng(1).normal(size=(2, len(world.fresh.y), world.num_classes))
    permuted = dataclasses.replace(
        world.fresh, y=np.random.default_rng(2).permutation(world.fresh.y)
    )
    with torch_threads(1):
        a = _train_one(cfg, world, world.fresh, "fresh", "kd_t4", z, [1, 2])
        b = _train_one(cfg, world, permuted, "fresh", "kd_t4", z, [1, 2])
        c = _train_one(cfg, world, world.train, "teacher_train", "kd_t4", z[:, :200], [1, 2])
    np.testing.assert_array_equal(a.predict_logits(world.test.x), b.predict_logits(world.test.x))
    assert hard_labels("fresh", "kd_t4") == "teacher_argmax"
    assert hard_labels("teacher_train", "kd_t4") == "drawn"
    assert hard_labels("fresh", "soft_t1") == "none"
    assert c is not None


@pytest.mark.parametrize(
    "overrides, fragment",
    [
        (["axes.family=['warped']"], "axes.family"),
        (["axes.depth=[9]"], "axes.depth"),
        (["teacher.losses=['ce','mse_mean']"], "teacher.losses"),
        (["cnn.student_arch=resnet9000"], "cnn.student_arch"),
        (["teacher.optimizer=adam"], "teacher.optimizer"),
        (["data.dim=500"], "data.dim"),
        (["model=transformer"], "model"),
        (["axes.n_train=[40000000]"], "axes.n_train"),
        (["teacher.select=best_val_loss"], "teacher.select"),
        (["cnn.signal=0"], "cnn.signal"),
        (["cnn.pixel_noise=-1"], "cnn.pixel_noise"),
        (["cnn.weight_decay=-0.1"], "cnn.weight_decay"),
        (["cnn.eval_batch_size=0"], "cnn.eval_batch_size"),
    ],
)
def test_bad_cnn_configs_are_refused_naming_the_key(overrides, fragment):
    with pytest.raises(ConfigError, match=fragment.replace(".", r"\.")):
        load_config("cnn_tiny", overrides=overrides)


def test_synthetic_label_noise_is_validated():
    from bcpd_sim.vision.synthetic import SyntheticSpec

    with pytest.raises(ConfigError, match="label_noise"):
        SyntheticSpec(label_noise=0.95).validate()


@pytest.mark.parametrize("preset", ["cnn_tiny", "cnn_quick", "cnn_large"])
def test_cnn_presets_validate_and_round_trip(preset, tmp_path):
    cfg = load_config(preset)
    assert cfg.model == "cnn"
    path = tmp_path / "c.toml"
    path.write_text(cfg.to_toml())
    assert load_config(preset, file=path) == cfg
