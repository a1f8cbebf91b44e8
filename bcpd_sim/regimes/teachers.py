"""Teachers of one cell: every loss over the learning-rate grid, the lr chosen on validation data.

One batched ensemble call per loss trains all its learning rates and replicates together. The
learning rate of a loss is chosen from the validation split only (mean validation accuracy over
replicates, ties to the lower mean validation NLL, then to the smaller lr); the test split is never
read here except to report metrics of the finished teachers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .. import metrics
from ..ensemble import Ensemble, MemberSpec, train
from .config import RegimesConfig, teacher_losses
from .world import World


@dataclass
class TeacherSet:
    """All teachers of one loss: the trained ensemble and one row per member."""

    loss: str
    ensemble: Ensemble
    members: pd.DataFrame  # member, teacher_lr, replicate, teacher_seed, val_acc, val_nll, ...
    tuned_lr: float


def teacher_seed(cfg: RegimesConfig, draw: int, replicate: int) -> int:
    """Shared by every loss and lr, so teachers are paired across losses (same init and order)."""
    return cfg.teacher.seed * 1_000_000 + draw * 1_000 + replicate


def lr_values(cfg: RegimesConfig) -> list[float]:
    """The grid plus the shared lr, sorted, each once."""
    return sorted({*map(float, cfg.teacher.lr_grid), float(cfg.teacher.shared_lr)})


def finite_members(metric, q: np.ndarray, *args) -> np.ndarray:
    """``metric(q, *args)`` per member, NaN for members whose outputs are not finite (a teacher
    that diverged at a large learning rate)."""
    ok = np.isfinite(q).all(axis=tuple(range(1, q.ndim)))
    out = np.full(len(q), np.nan)
    if ok.any():
        out[ok] = metric(q[ok], *args)
    return out


def select_lr(members: pd.DataFrame, grid: list[float]) -> float:
    """The grid lr with the best mean validation accuracy (ties: lower val NLL, then smaller lr).

    Reads only the ``val_acc`` and ``val_nll`` columns (computed on the validation split). An lr
    at which any replicate diverged (NaN) ranks last.
    """
    part = members[members.teacher_lr.isin(grid)]
    # Sum / count keeps a NaN (a diverged replicate) in the mean.
    table = part.groupby("teacher_lr")[["val_acc", "val_nll"]].sum(min_count=1)
    counts = part.groupby("teacher_lr")[["val_acc", "val_nll"]].count()
    sizes = part.groupby("teacher_lr").size()
    table = (table / counts).where(counts.eq(sizes, axis=0)).reset_index()
    table = table.sort_values(
        ["val_acc", "val_nll", "teacher_lr"], ascending=[False, True, True], kind="mergesort"
    )
    return float(table.teacher_lr.iloc[0])


def train_teachers(cfg: RegimesConfig, point: dict[str, Any], draw: int, world: World) -> dict:
    """Train every teacher loss of a cell; return ``{loss: TeacherSet}``."""
    t = cfg.teacher
    lrs = lr_values(cfg)
    grid = sorted(set(map(float, t.lr_grid)))
    width = (int(point["width"]),) * int(point["depth"])
    specs, rows = [], []
    for lr in lrs:
        for r in range(t.seeds):
            seed = teacher_seed(cfg, draw, r)
            specs.append(MemberSpec(seed=seed, lr=lr))
            rows.append({"teacher_lr": lr, "replicate": r, "teacher_seed": seed})
    out = {}
    val_needed = t.select != "last"
    for loss in t.losses:
        name, options = teacher_losses()[loss]
        ens = train(
            world.train.x,
            world.train.y,
            members=specs,
            loss=name,
            loss_options=options,
            num_classes=world.num_classes,
            epochs=int(point["epochs"]),
            width=width,
            batch_size=t.batch_size,
            optimizer=t.optimizer,
            optimizer_options={"momentum": t.momentum} if t.optimizer == "sgd" else None,
            select=t.select,
            x_val=world.val.x if val_needed else None,
            y_val=world.val.y if val_needed else None,
            device=cfg.device,
        )
        out[loss] = teacher_set(loss, ens, rows, world, grid)
    return out


def teacher_set(
    loss: str, ens, rows: list[dict[str, Any]], world: World, grid: list[float], **extra: Any
) -> TeacherSet:
    """Score the trained members of one loss on the validation split (accuracy, NLL; NaN where a
    member diverged) and choose the loss's lr from ``grid`` (:func:`select_lr`). ``ens`` is an
    ensemble or anything predicting like one; ``extra`` columns are added to every member row."""
    q_val = ens.predict_proba(world.val.x)
    members = pd.DataFrame(rows).assign(
        member=np.arange(len(rows)),
        diverged=~np.isfinite(q_val).all(axis=(1, 2)),
        val_acc=finite_members(metrics.accuracy, q_val, world.val.y),
        val_nll=finite_members(metrics.nll, q_val, world.val.y),
        teacher_selected_epoch=ens.selected_epoch,
        **extra,
    )
    return TeacherSet(loss, ens, members, select_lr(members, grid))


def teacher_metrics(ts: TeacherSet, world: World) -> pd.DataFrame:
    """Per member: accuracy on its training set and on test, overconfidence on its training
    inputs (mean max q - mean max p*), test ECE, and MSE / KL to p* on the training, fresh and
    test inputs."""
    ens = ts.ensemble
    q_tr = ens.predict_proba(world.train.x)
    q_fr = ens.predict_proba(world.fresh.x)
    q_te = ens.predict_proba(world.test.x)
    frame = ts.members.copy()
    frame["teacher_train_acc"] = finite_members(metrics.accuracy, q_tr, world.train.y)
    frame["teacher_acc"] = finite_members(metrics.accuracy, q_te, world.test.y)
    frame["teacher_overconfidence"] = q_tr.max(-1).mean(-1) - world.train.p_star.max(-1).mean()
    frame["teacher_ece"] = finite_members(metrics.ece, q_te, world.test.y)
    for tag, q, p in (
        ("teacher_train", q_tr, world.train.p_star),
        ("fresh", q_fr, world.fresh.p_star),
        ("heldout", q_te, world.test.p_star),
    ):
        frame[f"mse_to_bcpd_{tag}"] = finite_members(metrics.mse_to_bcpd, q, p)
        frame[f"kl_to_bcpd_{tag}"] = finite_members(metrics.kl_to_bcpd, q, p)
    frame["teacher_loss"] = ts.loss
    frame["tuned_lr"] = ts.tuned_lr
    return frame
