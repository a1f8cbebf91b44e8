"""Binary students from merged classes (the paper's Table 4) on toy MLPs with exact p*.

A mixture's classes are merged into super-classes (:class:`bcpd_sim.mixtures.SuperClassMixture`;
by default the first half against the second, as CIFAR-2x5 merges classes 0-4 and 5-9). Teachers
are trained on the merged labels with CE and with MSE (all seeds of a loss as one batched
ensemble); each teacher is distilled into a student with every method (``kd``: 0.1 CE + 0.9 KL at
T = 4 on the teacher's logits, ``soft``: KL to the teacher's probabilities at T = 1; all students
of a method as one batched ensemble), and ``none`` students learn the merged labels with CE alone
as the no-teacher baseline. Accuracies and distances to the merged p* are on the test split.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import softmax

from ... import io, metrics
from ...ensemble import MemberSpec, train
from ...ensemble.losses import TEACHER_LOSSES
from ...errors import ConfigError
from ...mixtures import SuperClassMixture, list_mixtures, make_mixture
from ...provenance import environment
from ...validation import check_choice, check_int, check_positive
from ..config import load_study_config, to_toml

METHODS = ("kd", "soft")
OPTIMIZERS = ("sgd", "adam")


@dataclass
class BinaryConfig:
    """Settings of the binary (merged-class) study on MLPs."""

    preset: str = "quick"
    mixture: str = "paper"
    groups: list[list[int]] = field(default_factory=list)  # empty: first half vs second half
    mixture_seed: int = 0
    sample_seed: int = 1
    n_train: int = 5000
    n_val: int = 5000
    n_test: int = 20000
    width: list[int] = field(default_factory=lambda: [128, 128])
    lr: float = 2e-3
    momentum: float = 0.9
    batch_size: int = 32
    teacher_epochs: int = 30
    student_epochs: int = 30
    teacher_losses: list[str] = field(default_factory=lambda: ["ce", "mse"])
    methods: list[str] = field(default_factory=lambda: ["kd", "soft"])
    seeds: int = 6
    kd_temperature: float = 4.0
    kd_alpha: float = 0.1
    kd_beta: float = 0.9
    select: str = "best_val_acc"  # on the validation split, never on test
    device: str = "auto"
    seed: int = 0

    def validate(self) -> None:
        check_choice("mixture", self.mixture, list_mixtures())
        for key in ("n_train", "n_val", "n_test", "batch_size", "seeds"):
            check_int(key, getattr(self, key), minimum=1)
        for key in ("teacher_epochs", "student_epochs"):
            check_int(key, getattr(self, key), minimum=1)
        if not self.teacher_losses:
            raise ConfigError("teacher_losses must not be empty; e.g. ['ce', 'mse']")
        for t in self.teacher_losses:
            check_choice("teacher_losses", t, TEACHER_LOSSES)
        for m in self.methods:
            check_choice("methods", m, METHODS)
        for h in self.width:
            check_int("width", h, minimum=1)
        for key in ("lr", "kd_temperature"):
            check_positive(key, getattr(self, key))
        for key in ("kd_alpha", "kd_beta", "momentum"):
            check_positive(key, getattr(self, key), allow_zero=True)
        check_choice("select", self.select, ("best_val_acc", "best_val_loss", "last"))
        check_choice("device", self.device, ("auto", "cpu", "cuda"))
        self.mixture_object()  # checks groups against the mixture's classes

    def mixture_object(self) -> SuperClassMixture:
        base = make_mixture(self.mixture, seed=self.mixture_seed)
        if not self.groups:
            return SuperClassMixture.halves(base)
        return SuperClassMixture(base, self.groups)


PRESETS: dict[str, dict[str, Any]] = {
    "quick": {},
    "smoke": {
        "n_train": 400,
        "n_val": 300,
        "n_test": 2000,
        "width": [32, 32],
        "lr": 5e-3,
        "teacher_epochs": 3,
        "student_epochs": 3,
        "seeds": 2,
    },
    "large": {"n_test": 90000, "teacher_epochs": 100, "student_epochs": 100, "seeds": 32},
}


def load_config(preset: str = "quick", *, file=None, overrides=None) -> BinaryConfig:
    return load_study_config(BinaryConfig, PRESETS, preset, file=file, overrides=overrides)


def _kwargs(cfg: BinaryConfig, val) -> dict[str, Any]:
    return {
        "x_val": val.x,
        "y_val": val.y,
        "num_classes": 2 if not cfg.groups else len(cfg.groups),
        "lr": cfg.lr,
        "batch_size": cfg.batch_size,
        "optimizer": "sgd",
        "optimizer_options": {"momentum": cfg.momentum},
        "width": cfg.width,
        "select": cfg.select,
        "device": None if cfg.device == "auto" else cfg.device,
    }


def _evaluate(ens, test, prefix: str) -> dict[str, np.ndarray]:
    q = ens.predict_proba(test.x)
    last = ens.predict_proba(test.x, checkpoint="last")
    return {
        f"{prefix}_acc": metrics.accuracy(q, test.y),
        f"{prefix}_acc_last": metrics.accuracy(last, test.y),
        f"{prefix}_mse_to_bcpd": metrics.mse_to_bcpd(q, test.p_star),
        f"{prefix}_kl_to_bcpd": metrics.kl_to_bcpd(q, test.p_star),
        f"{prefix}_selected_epoch": ens.selected_epoch,
    }


def run_binary(cfg: BinaryConfig, out: str | Path) -> pd.DataFrame:
    """Train teachers and students; write ``results.parquet``, ``summary.json``, ``config.toml``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    mix = cfg.mixture_object()
    full = mix.sample(cfg.n_train + cfg.n_val + cfg.n_test, seed=cfg.sample_seed)
    tr, val, te = full.split(cfg.n_train, cfg.n_val, cfg.n_test)
    kw = _kwargs(cfg, val)
    seeds = [cfg.seed * 100_000 + i for i in range(cfg.seeds)]
    rows = []

    # Teachers: one batched ensemble per loss; remember their logits for distillation.
    logits_tr, logits_val, teacher_cols = [], [], []
    for name in cfg.teacher_losses:
        loss, options = TEACHER_LOSSES[name]
        ens = train(
            tr.x, tr.y, members=seeds, loss=loss, loss_options=options,
            epochs=cfg.teacher_epochs, **kw,
        )  # fmt: skip
        logits_tr.append(ens.predict_logits(tr.x))
        logits_val.append(ens.predict_logits(val.x))
        ev = _evaluate(ens, te, "teacher")
        for i, s in enumerate(seeds):
            teacher_cols.append(
                {"teacher_loss": name, "teacher_seed": s, **{k: v[i] for k, v in ev.items()}}
            )
    z_tr, z_val = np.concatenate(logits_tr), np.concatenate(logits_val)

    # Students: one batched ensemble per method over every teacher (per-member targets).
    # The student of teacher seed i has the same seed under every teacher loss: CE and MSE
    # students are paired (same initial weights and data order), not only their teachers.
    student_seeds = [50_000 + i % cfg.seeds for i in range(len(teacher_cols))]
    for method in cfg.methods:
        if method == "kd":
            opts = {"alpha": cfg.kd_alpha, "beta": cfg.kd_beta, "temperature": cfg.kd_temperature}
            extra = {"teacher_logits": z_tr, "val_teacher_logits": z_val}
        else:
            opts = {"temperature": 1.0}
            extra = {"targets": softmax(z_tr, -1), "val_targets": softmax(z_val, -1)}
        ens = train(
            tr.x, tr.y, members=[MemberSpec(seed=s) for s in student_seeds], loss=method,
            loss_options=opts, epochs=cfg.student_epochs, **extra, **kw,
        )  # fmt: skip
        ev = _evaluate(ens, te, "student")
        for i, t in enumerate(teacher_cols):
            rows.append(
                {**t, "method": method, "student_seed": student_seeds[i]}
                | {k: v[i] for k, v in ev.items()}
            )
    # The no-teacher baseline: CE on the merged labels, same student seeds as the first teachers.
    ens = train(tr.x, tr.y, members=student_seeds[: cfg.seeds], loss="ce",
                epochs=cfg.student_epochs, **kw)  # fmt: skip
    ev = _evaluate(ens, te, "student")
    for i, s in enumerate(student_seeds[: cfg.seeds]):
        rows.append(
            {"teacher_loss": "none", "teacher_seed": -1, "method": "none", "student_seed": s}
            | {k: v[i] for k, v in ev.items()}
        )
    frame = pd.DataFrame(rows)
    frame["bayes_acc"] = float(np.mean(te.p_star.argmax(1) == te.y))
    frame["groups"] = str([list(g) for g in mix.groups])
    for key, value in asdict(cfg).items():
        if not isinstance(value, list):
            frame[f"cfg_{key}"] = value
    io.write_table(out / "results.parquet", frame)
    io.write_text(out / "config.toml", to_toml(cfg))
    summary = summarize(frame)
    summary["seconds"] = time.perf_counter() - t0
    summary["environment"] = environment()
    io.write_json(out / "summary.json", summary)
    return frame


def summarize(frame: pd.DataFrame) -> dict[str, Any]:
    """Per teacher loss and method: student accuracy, teacher quality; paired MSE - CE by seed."""
    from ...figure1.stats import paired_difference

    table = []
    for (loss, method), part in frame.groupby(["teacher_loss", "method"], sort=True):
        row = {
            "teacher_loss": loss,
            "method": method,
            "n": int(len(part)),
            "student_acc_mean": float(part.student_acc.mean()),
            "student_acc_sd": float(part.student_acc.std(ddof=1)) if len(part) > 1 else 0.0,
            "student_acc_last_mean": float(part.student_acc_last.mean()),
            "student_mse_to_bcpd_mean": float(part.student_mse_to_bcpd.mean()),
        }
        if loss != "none":
            row |= {
                "teacher_acc_mean": float(part.teacher_acc.mean()),
                "teacher_mse_to_bcpd_mean": float(part.teacher_mse_to_bcpd.mean()),
                "teacher_kl_to_bcpd_mean": float(part.teacher_kl_to_bcpd.mean()),
            }
        table.append(row)
    paired = {}
    losses = set(frame.teacher_loss)
    if {"ce", "mse"} <= losses:
        for method in sorted(set(frame.method) - {"none"}):
            part = frame[frame.method == method]
            a = part[part.teacher_loss == "mse"].sort_values("teacher_seed")
            b = part[part.teacher_loss == "ce"].sort_values("teacher_seed")
            paired[method] = paired_difference(a.student_acc.to_numpy(), b.student_acc.to_numpy())
        teachers = frame[frame.method == frame.method[frame.method != "none"].iloc[0]]
        a = teachers[teachers.teacher_loss == "mse"].sort_values("teacher_seed")
        b = teachers[teachers.teacher_loss == "ce"].sort_values("teacher_seed")
        paired["teacher"] = paired_difference(a.teacher_acc.to_numpy(), b.teacher_acc.to_numpy())
    return {
        "bayes_acc": float(frame.bayes_acc.iloc[0]),
        "groups": frame.groups.iloc[0],
        "table": table,
        "paired_mse_minus_ce": paired,
    }
