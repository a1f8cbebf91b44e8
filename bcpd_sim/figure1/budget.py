"""What a Figure-1 config will cost: its training jobs' memory and work, checked before any run.

Each cell trains one or two batched jobs (:func:`bcpd_sim.ensemble.train`); the largest job and
the data must fit in memory together, and all jobs together must stay below
:data:`bcpd_sim.validation.MAX_FLOPS`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .. import validation as V
from ..ensemble.budget import memory_parts, training_flops


@dataclass(frozen=True)
class Job:
    """One batched training job of the study, and the float64 outputs it keeps per member."""

    key: str  # the config key that sets how many members it has
    what: str  # "students", "teachers"
    members: int
    width: Sequence[int]
    width_key: str
    soft_targets: bool
    samples: int  # examples each member trains on (epochs x points)
    outputs: int  # rows of K probabilities kept per member (predictions)
    repeats: float = 1.0  # how many such jobs the run trains (over all draws of the data)
    outputs_key: str = "data.n_test"
    epochs_key: str = "train.epochs"


def jobs(cfg: Any) -> list[Job]:
    """The largest simulated-target job, and each loss's teacher and student jobs."""
    from .config import simulated_sizes
    from .targets import TARGET_KINDS

    d, t, s, r = cfg.data, cfg.train, cfg.simulated, cfg.trained
    draws = getattr(d, "draws", 1)  # every draw of the data trains every cell again
    student = {
        "width": t.width,
        "width_key": "train.width",
        "soft_targets": True,
        "samples": t.epochs * d.n_train,
        "outputs": d.n_test,
    }
    out = []
    if s.enabled:
        sizes = simulated_sizes(s)
        kind = max(sizes, key=sizes.get)
        key, e = f"simulated.{TARGET_KINDS[kind].key}", sizes[kind]
        out.append(Job(key, "students", e, repeats=draws * sum(sizes.values()) / e, **student))
    if r.enabled:
        teachers = r.seeds * len(r.epochs) * len(r.n_train) * len(r.widths)
        losses = draws * len(r.losses)
        out.append(
            Job(
                "trained.seeds",
                "teachers",
                teachers,
                width=max(r.widths, key=sum),
                width_key="trained.widths",
                soft_targets=False,
                samples=max(r.epochs) * max(r.n_train),
                outputs=d.n_train + d.n_val + d.n_test,
                repeats=losses,
                outputs_key="data.n_train + n_val + n_test",
                epochs_key="trained.epochs",
            )
        )
        students = teachers * r.students_per_teacher
        out.append(Job("trained.seeds", "students", students, repeats=losses, **student))
    return out


def job_memory(cfg: Any, job: Job, *, dim: int, num_classes: int) -> list[tuple[str, str, float]]:
    """``(key, what, bytes)`` of one job: the trainer's allocations and the kept outputs."""
    d, t = cfg.data, cfg.train
    keys = {
        "members": job.key,
        "width": job.width_key,
        "batch_size": "train.batch_size",
        "n_train": "data.n_train",
        "targets": job.key,
    }
    parts = memory_parts(
        members=job.members,
        width=job.width,
        input_dim=dim,
        num_classes=num_classes,
        batch_size=t.batch_size,
        n_train=d.n_train,
        n_val=d.n_val,
        soft_targets=job.soft_targets,
        keys=keys,
    )
    kept = 3 * job.members * job.outputs * num_classes * 8.0  # logits, probabilities, metrics
    return [
        *parts,
        (f"{job.key} x {job.outputs_key}", f"{job.members:,} {job.what}' outputs", kept),
    ]


def check_jobs(cfg: Any, *, dim: int, num_classes: int) -> None:
    """Refuse the config if its data and largest job exceed memory, or its work is absurd."""
    d = cfg.data
    n_all = d.n_train + d.n_val + d.n_test
    data = ("data.n_test", "the sampled data", n_all * (dim + 2 * num_classes + 1) * 8.0 * 2)
    all_jobs = jobs(cfg)
    parts = [job_memory(cfg, j, dim=dim, num_classes=num_classes) for j in all_jobs]
    V.check_memory([data, *max(parts, key=lambda p: sum(b for _, _, b in p))])
    flops = [
        j.repeats
        * training_flops(
            members=j.members,
            width=j.width,
            input_dim=dim,
            num_classes=num_classes,
            samples=j.samples,
        )
        for j in all_jobs
    ]
    if all_jobs:
        biggest = all_jobs[max(range(len(flops)), key=flops.__getitem__)]
        trained = sum(j.members * j.repeats for j in all_jobs)
        draws = " x data.draws" if getattr(d, "draws", 1) > 1 else ""
        key = f"{biggest.key} x {biggest.epochs_key}{draws}"
        V.check_work(key, sum(flops), what=f"training {trained:,.0f} networks")
