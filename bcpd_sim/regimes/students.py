"""Students of one cell: every used teacher distilled on each input set with each student loss.

A teacher is *used* when its lr is its loss's tuned lr or the shared lr. For each student input
set (the teacher's own training inputs, or fresh inputs from the same distribution) and each
student loss, one batched ensemble call trains the students of all used teachers. Student seeds
depend only on the replicate, so students of CE and MSE teachers are paired. Students keep the
checkpoint with the best validation accuracy; the last epoch is reported beside it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import softmax

from .. import metrics
from ..ensemble import MemberSpec, train
from .config import STUDENT_LOSSES, RegimesConfig
from .teachers import TeacherSet
from .world import World


def student_seed(cfg: RegimesConfig, draw: int, replicate: int, j: int) -> int:
    return cfg.student.seed * 1_000_000 + 500_000 + draw * 1_000 + replicate * 10 + j


def used_teachers(cfg: RegimesConfig, sets: dict[str, TeacherSet]) -> pd.DataFrame:
    """One row per (loss, lr rule, replicate): which member of which loss it uses."""
    rows = []
    for loss, ts in sets.items():
        for rule, lr in (("tuned", ts.tuned_lr), ("shared", float(cfg.teacher.shared_lr))):
            # A teacher that diverged (non-finite outputs) has no students.
            part = ts.members[np.isclose(ts.members.teacher_lr, lr) & ~ts.members.diverged]
            for m in part.itertuples():
                rows.append(
                    {
                        "teacher_loss": loss,
                        "lr_rule": rule,
                        "member": m.member,
                        "replicate": m.replicate,
                    }
                )
    return pd.DataFrame(rows)


def train_students(
    cfg: RegimesConfig,
    draw: int,
    world: World,
    sets: dict[str, TeacherSet],
    work_dir: Path | None = None,
) -> pd.DataFrame:
    """One row per (used teacher, lr rule, student inputs, student loss, student index).

    On ``teacher_train`` inputs the KD loss's CE term uses the drawn labels (the teacher's own
    training labels); on ``fresh`` inputs, which carry no label, it uses the teacher's argmax
    (column ``student_hard_labels``). CNN students (``cfg.model == "cnn"``) each train in their
    own resumable run directory under ``work_dir``.
    """
    s = cfg.student
    used = used_teachers(cfg, sets)
    unique = used.drop_duplicates(["teacher_loss", "member"]).reset_index(drop=True)
    frames = []
    for inputs in s.inputs:
        sample = world.student_sample(inputs)
        groups = list(unique.groupby("teacher_loss", sort=False))
        z = np.concatenate(
            [
                sets[loss].ensemble.predict_logits(sample.x, members=list(part.member))
                for loss, part in groups
            ]
        )
        order = pd.concat([part for _, part in groups], ignore_index=True)
        which = np.repeat(np.arange(len(order)), s.per_teacher)
        js = np.tile(np.arange(s.per_teacher), len(order))
        seeds = [
            student_seed(cfg, draw, int(order.replicate[i]), int(j)) for i, j in zip(which, js)
        ]
        for student_loss in s.losses:
            if cfg.model == "cnn":
                from .cnn import fit_cnn_students

                names = [
                    f"{order.teacher_loss[i]}-m{order.member[i]}-{inputs}-{student_loss}-j{j}"
                    for i, j in zip(which, js)
                ]
                measured = fit_cnn_students(
                    cfg, world, inputs, student_loss, z[which], seeds, names, work_dir
                )
            else:
                ens = _train_one(cfg, world, sample, inputs, student_loss, z[which], seeds)
                measured = _student_metrics(ens, world)
            labels = hard_labels(inputs, student_loss)
            frame = order.iloc[which].reset_index(drop=True)
            frame = frame.assign(
                student_index=js,
                student_seed=seeds,
                student_inputs=inputs,
                student_loss=student_loss,
                student_hard_labels=labels,
                student_uses_labels=labels == "drawn",
                **measured,
            )
            frames.append(frame)
    students = pd.concat(frames, ignore_index=True)
    # Expand to lr rules (a teacher used by both rules has one set of students, reported twice).
    rules = used[["teacher_loss", "member", "lr_rule"]]
    return rules.merge(students.drop(columns=["lr_rule"]), on=["teacher_loss", "member"])


def hard_labels(inputs: str, student_loss: str) -> str:
    """The label of the student loss's CE term: ``drawn`` (the teacher's training labels),
    ``teacher_argmax`` (fresh inputs carry none) or ``none`` (no CE term)."""
    if STUDENT_LOSSES[student_loss][0] == "soft":
        return "none"
    return "drawn" if inputs == "teacher_train" else "teacher_argmax"


def _train_one(
    cfg: RegimesConfig,
    world: World,
    sample,
    inputs: str,
    student_loss: str,
    teacher_logits: np.ndarray,
    seeds: list[int],
):
    s = cfg.student
    name, options = STUDENT_LOSSES[student_loss]
    kwargs: dict[str, Any] = (
        {"targets": softmax(teacher_logits / options["temperature"], axis=-1)}
        if name == "soft"
        else {"teacher_logits": teacher_logits}
    )
    if hard_labels(inputs, student_loss) == "teacher_argmax":
        options = {**options, "hard_labels": "teacher"}
    return train(
        sample.x,
        sample.y,
        members=[MemberSpec(seed=seed) for seed in seeds],
        loss=name,
        loss_options=options,
        num_classes=world.num_classes,
        x_val=world.val.x,
        y_val=world.val.y,
        select="best_val_acc",
        lr=s.lr,
        epochs=s.epochs,
        width=tuple(s.width),
        batch_size=s.batch_size,
        optimizer_options={"momentum": s.momentum},
        device=cfg.device,
        **kwargs,
    )


def _student_metrics(ens, world: World) -> dict[str, np.ndarray]:
    q = ens.predict_proba(world.test.x)
    last = ens.predict_proba(world.test.x, checkpoint="last")
    return {
        "student_acc": metrics.accuracy(q, world.test.y),
        "student_acc_last": metrics.accuracy(last, world.test.y),
        "student_selected_epoch": ens.selected_epoch,
        "student_mse_to_bcpd": metrics.mse_to_bcpd(q, world.test.p_star),
    }
