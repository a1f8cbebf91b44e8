"""Semi-supervised distillation (the paper's Figure 2) on toy MLPs with exact p*.

A pool of n points is drawn; only its first f n points are labelled. Teachers learn the labelled
part with CE or with MSE; students learn the whole pool: the teacher's probabilities on the
unlabelled part (KL at T = 1) and the labels on the labelled part (CE, i.e. KL to the one-hot
label), each point weighted equally. The unlabelled labels are never read: the teachers use only
the first f n rows and the students' targets there come from the teachers.

Every labelled fraction and seed of a teacher loss is one batched ensemble (per-member training
set sizes and epochs; a teacher's epochs are chosen so that it takes about ``teacher_steps``
optimiser steps, at most ``max_teacher_epochs`` epochs); its students are a second one (per-member
soft targets). Teacher distances to p* are measured on the unlabelled pool, accuracies on a test
split. Checkpoints: the last epoch (no labelled validation set is assumed).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import io, metrics
from ..ensemble import MemberSpec, train
from ..ensemble.losses import TEACHER_LOSSES
from ..errors import ConfigError
from ..mixtures import Sample, list_mixtures, make_mixture
from ..provenance import environment
from ..simplex import onehot
from ..validation import check_choice, check_int, check_positive
from .config import load_study_config, to_toml


@dataclass
class SemisupConfig:
    """Settings of the semi-supervised study."""

    preset: str = "quick"
    mixture: str = "paper"
    mixture_seed: int = 0
    sample_seed: int = 1
    n_pool: int = 5_000
    n_test: int = 20_000
    fractions: list[float] = field(default_factory=lambda: [0.01, 0.02, 0.05, 0.1, 0.2, 0.5])
    teacher_losses: list[str] = field(default_factory=lambda: ["ce", "mse"])
    seeds: int = 4
    teacher_steps: int = 1500  # optimiser steps per teacher, whatever its labelled-set size
    max_teacher_epochs: int = 60
    student_epochs: int = 15
    width: list[int] = field(default_factory=lambda: [128, 128])
    lr: float = 2e-3
    momentum: float = 0.9
    batch_size: int = 32
    device: str = "auto"
    seed: int = 0

    def validate(self) -> None:
        check_choice("mixture", self.mixture, list_mixtures())
        for key in ("n_pool", "n_test", "seeds", "teacher_steps", "max_teacher_epochs"):
            check_int(key, getattr(self, key), minimum=1)
        check_int("student_epochs", self.student_epochs, minimum=1)
        check_int("batch_size", self.batch_size, minimum=1)
        if not self.fractions:
            raise ConfigError("fractions must list at least one labelled fraction in (0, 1)")
        for f in self.fractions:
            if isinstance(f, bool) or not isinstance(f, (int, float)) or not 0 < f < 1:
                raise ConfigError(f"fractions must lie in (0, 1) (exclusive), got {f!r}")
            if round(f * self.n_pool) < 1:
                raise ConfigError(f"fractions: {f} of n_pool={self.n_pool} labels no point")
        if not self.teacher_losses:
            raise ConfigError("teacher_losses must not be empty; e.g. ['ce', 'mse']")
        for t in self.teacher_losses:
            check_choice("teacher_losses", t, TEACHER_LOSSES)
        for h in self.width:
            check_int("width", h, minimum=1)
        check_positive("lr", self.lr)
        check_positive("momentum", self.momentum, allow_zero=True)
        check_choice("device", self.device, ("auto", "cpu", "cuda"))


PRESETS: dict[str, dict[str, Any]] = {
    "quick": {},
    "smoke": {
        "n_pool": 600,
        "n_test": 1000,
        "fractions": [0.05, 0.5],
        "seeds": 2,
        "teacher_steps": 40,
        "max_teacher_epochs": 10,
        "student_epochs": 2,
        "width": [32],
        "lr": 5e-3,
    },
    "large": {
        "n_pool": 50_000,
        "n_test": 90_000,
        "seeds": 16,
        "teacher_steps": 10_000,
        "max_teacher_epochs": 300,
        "student_epochs": 30,
    },
}


def load_config(preset: str = "quick", *, file=None, overrides=None) -> SemisupConfig:
    return load_study_config(SemisupConfig, PRESETS, preset, file=file, overrides=overrides)


def prepare_data(cfg: SemisupConfig) -> tuple[Sample, Sample]:
    """The pool (labelled rows first) and the test split."""
    mix = make_mixture(cfg.mixture, seed=cfg.mixture_seed)
    full = mix.sample(cfg.n_pool + cfg.n_test, seed=cfg.sample_seed)
    pool, test = full.split(cfg.n_pool, cfg.n_test)
    return pool, test


def plan(cfg: SemisupConfig) -> pd.DataFrame:
    """One row per (fraction, seed): labelled-set size, teacher epochs and seeds."""
    rows = []
    for i, f in enumerate(cfg.fractions):
        n_lab = int(round(f * cfg.n_pool))
        steps = math.ceil(n_lab / cfg.batch_size)
        epochs = int(min(cfg.max_teacher_epochs, max(1, math.ceil(cfg.teacher_steps / steps))))
        for s in range(cfg.seeds):
            rows.append(
                {
                    "fraction": float(f),
                    "n_labelled": n_lab,
                    "n_unlabelled": cfg.n_pool - n_lab,
                    "teacher_epochs": epochs,
                    "teacher_seed": cfg.seed * 100_000 + i * 1_000 + s,
                    "student_seed": cfg.seed * 100_000 + 50_000 + i * 1_000 + s,
                    "replicate": s,
                }
            )
    return pd.DataFrame(rows)


def _kwargs(cfg: SemisupConfig, k: int) -> dict[str, Any]:
    return {
        "num_classes": k,
        "lr": cfg.lr,
        "batch_size": cfg.batch_size,
        "optimizer": "sgd",
        "optimizer_options": {"momentum": cfg.momentum},
        "width": cfg.width,
        "select": "last",
        "device": None if cfg.device == "auto" else cfg.device,
    }


def train_loss_cell(cfg: SemisupConfig, loss_name: str, pool: Sample, grid: pd.DataFrame):
    """Teachers (on their labelled rows) and students (on the whole pool) for one teacher loss."""
    k = pool.p_star.shape[1]
    loss, options = TEACHER_LOSSES[loss_name]
    kw = _kwargs(cfg, k)
    teachers = train(
        pool.x, pool.y, loss=loss, loss_options=options,
        members=[MemberSpec(seed=int(r.teacher_seed), epochs=int(r.teacher_epochs),
                            n_train=int(r.n_labelled)) for r in grid.itertuples()],
        epochs=int(grid.teacher_epochs.max()), **kw,
    )  # fmt: skip
    q_pool = teachers.predict_proba(pool.x)  # (E, n, K)
    targets = q_pool.copy()
    for m, n_lab in enumerate(grid.n_labelled.to_numpy()):
        targets[m, :n_lab] = onehot(pool.y[:n_lab], k)  # CE on the labelled part
    students = train(
        pool.x, pool.y, loss="soft", loss_options={"temperature": 1.0}, targets=targets,
        members=[MemberSpec(seed=int(s)) for s in grid.student_seed], epochs=cfg.student_epochs,
        **kw,
    )  # fmt: skip
    return teachers, students, q_pool


def run_semisup(
    cfg: SemisupConfig, out: str | Path, data: tuple[Sample, Sample] | None = None
) -> pd.DataFrame:
    """Run every teacher loss; write ``results.parquet``, ``summary.json``, ``config.toml``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    pool, test = data if data is not None else prepare_data(cfg)
    grid = plan(cfg)
    frames = []
    for name in cfg.teacher_losses:
        teachers, students, q_pool = train_loss_cell(cfg, name, pool, grid)
        unl = np.arange(cfg.n_pool)[None, :] >= grid.n_labelled.to_numpy()[:, None]  # (E, n)
        diff = ((q_pool - pool.p_star[None]) ** 2).sum(-1)
        q_test = teachers.predict_proba(test.x)
        s_test = students.predict_proba(test.x)
        frames.append(
            grid.assign(
                teacher_loss=name,
                teacher_acc=metrics.accuracy(q_test, test.y),
                teacher_mse_to_bcpd_unlabelled=(diff * unl).sum(1) / unl.sum(1),
                teacher_mse_to_bcpd=metrics.mse_to_bcpd(q_test, test.p_star),
                teacher_kl_to_bcpd=metrics.kl_to_bcpd(q_test, test.p_star),
                student_acc=metrics.accuracy(s_test, test.y),
                student_mse_to_bcpd=metrics.mse_to_bcpd(s_test, test.p_star),
                student_kl_to_bcpd=metrics.kl_to_bcpd(s_test, test.p_star),
            )
        )
    frame = pd.concat(frames, ignore_index=True)
    frame["bayes_acc"] = float(np.mean(test.p_star.argmax(1) == test.y))
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
    """Per fraction and loss: means; paired MSE - CE by seed; student accuracy vs teacher distance."""
    from ..figure1.stats import bootstrap_interval, correlation, paired_difference

    table = []
    for (f, loss), part in frame.groupby(["fraction", "teacher_loss"], sort=True):
        table.append(
            {
                "fraction": float(f),
                "teacher_loss": loss,
                "n": int(len(part)),
                "teacher_acc_mean": float(part.teacher_acc.mean()),
                "teacher_mse_to_bcpd_unlabelled_mean": float(
                    part.teacher_mse_to_bcpd_unlabelled.mean()
                ),
                "student_acc_mean": float(part.student_acc.mean()),
                "student_acc_sd": float(part.student_acc.std(ddof=1)) if len(part) > 1 else 0.0,
            }
        )
    paired = {}
    if {"ce", "mse"} <= set(frame.teacher_loss):
        for f, part in frame.groupby("fraction", sort=True):
            a = part[part.teacher_loss == "mse"].sort_values("replicate")
            b = part[part.teacher_loss == "ce"].sort_values("replicate")
            paired[f"{f:g}"] = {
                "student": paired_difference(a.student_acc.to_numpy(), b.student_acc.to_numpy()),
                "teacher": paired_difference(a.teacher_acc.to_numpy(), b.teacher_acc.to_numpy()),
            }
    x = frame.teacher_mse_to_bcpd_unlabelled.to_numpy(float)
    y = frame.student_acc.to_numpy(float)
    lo, hi = bootstrap_interval(x, y, "spearman", resamples=1000)
    return {
        "bayes_acc": float(frame.bayes_acc.iloc[0]),
        "table": table,
        "paired_mse_minus_ce": paired,
        "spearman_student_acc_vs_teacher_mse_unlabelled": {
            "r": correlation(x, y, "spearman"),
            "ci_low": lo,
            "ci_high": hi,
            "n": int(len(x)),
        },
    }
