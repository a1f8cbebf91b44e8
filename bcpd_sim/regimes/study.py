"""Run the regime map cell by cell, resumably: one cell = one point of the axes and one draw.

Each finished cell is written atomically to ``cells/<id>.parquet`` (students) and
``cells/<id>.teachers.parquet`` (every teacher of the lr grid), stamped with the config's
fingerprint; rerunning the same command skips finished cells, and the run directory is locked
(:mod:`bcpd_sim.rundir`) while a run lasts. Seeds depend only on the config, the draw and the replicate, never on the order
cells run in.
"""

from __future__ import annotations

import itertools
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from .. import io
from ..progress import ProgressLog, progress
from ..provenance import environment
from ..rundir import RunDir, open_run_dir
from .config import AXES, RegimesConfig, read_config
from .students import train_students
from .teachers import teacher_metrics, train_teachers
from .world import SAMPLING_SCHEME, make_world

#: Teacher columns copied onto each student row (distances on the row's own student inputs are
#: added as ``mse_to_bcpd`` / ``kl_to_bcpd``).
TEACHER_COLUMNS = [
    "teacher_lr",
    "tuned_lr",
    "teacher_seed",
    "teacher_selected_epoch",
    "val_acc",
    "val_nll",
    "teacher_train_acc",
    "teacher_acc",
    "teacher_overconfidence",
    "teacher_ece",
    "mse_to_bcpd_heldout",
    "kl_to_bcpd_heldout",
    "mse_to_bcpd_teacher_train",
    "mse_to_bcpd_fresh",
    "kl_to_bcpd_teacher_train",
    "kl_to_bcpd_fresh",
]


@dataclass(frozen=True)
class Cell:
    point: dict[str, Any]
    draw: int

    @property
    def id(self) -> str:
        parts = [f"{k}={self.point[k]}" for k in AXES]
        return "_".join(parts).replace(" ", "") + f"_draw={self.draw}"


def plan_cells(cfg: RegimesConfig) -> list[Cell]:
    """Every combination of axis values, for each draw (draw varies slowest)."""
    combos = itertools.product(*(cfg.axis_values(a) for a in AXES))
    points = [dict(zip(AXES, c)) for c in combos]
    return [Cell(p, draw) for draw in range(cfg.data.draws) for p in points]


def run_cell(
    cfg: RegimesConfig, cell: Cell, work_dir: Path | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train one cell's teachers and students; return (student rows, teacher rows).

    CNN cells (``cfg.model == "cnn"``) keep each teacher's and student's run in ``work_dir``
    (required then), where an interrupted cell resumes.
    """
    start, cpu = time.perf_counter(), time.process_time()
    world = make_world(cfg, cell.point, cell.draw)
    if cfg.model == "cnn":
        from .cnn import train_cnn_teachers

        if work_dir is None:
            raise ValueError("a CNN cell needs a work directory for its runs")
        sets = train_cnn_teachers(cfg, cell.point, cell.draw, world, work_dir)
    else:
        sets = train_teachers(cfg, cell.point, cell.draw, world)
    teachers = pd.concat([teacher_metrics(ts, world) for ts in sets.values()], ignore_index=True)
    students = train_students(cfg, cell.draw, world, sets, work_dir)
    rows = students.merge(
        teachers[["teacher_loss", "member", *TEACHER_COLUMNS]], on=["teacher_loss", "member"]
    )
    on_train = rows.student_inputs == "teacher_train"
    rows["mse_to_bcpd"] = rows.mse_to_bcpd_teacher_train.where(on_train, rows.mse_to_bcpd_fresh)
    rows["kl_to_bcpd"] = rows.kl_to_bcpd_teacher_train.where(on_train, rows.kl_to_bcpd_fresh)
    rows["seed"] = rows["replicate"]
    extra = {
        "cell": cell.id,
        "draw": cell.draw,
        "mixture_seed": world.mixture_seed,
        "sample_seed": world.sample_seed,
        "bayes_acc_test": float(world.test.p_star.max(-1).mean()),
        "sampling_scheme": SAMPLING_SCHEME,
        "model": cfg.model,
        **cell.point,
        "cell_seconds": time.perf_counter() - start,
        "cell_cpu_seconds": time.process_time() - cpu,
    }
    rows = rows.assign(**extra)
    teachers = teachers.assign(**extra)
    sort = ["teacher_loss", "lr_rule", "replicate", "student_inputs", "student_loss"]
    return rows.sort_values(sort, ignore_index=True), teachers


def config_text(cfg: RegimesConfig) -> str:
    """The run directory's ``config.toml``: a ``study`` marker line, then the config."""
    return 'study = "regimes"\n' + cfg.to_toml()


@contextmanager
def torch_threads(n: int):
    """Run with ``n`` torch CPU threads (0: leave the setting alone), restoring it afterwards."""
    before = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def run_regimes(
    cfg: RegimesConfig, out: str | Path, *, show_progress: bool | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Run (or resume) the study into ``out``; return (students, teachers) tables.

    ``out`` is locked while the run lasts; cells made by another config are never reused.
    """
    with torch_threads(cfg.threads), open_run_dir(out, config_text(cfg)) as run:
        return _run(cfg, run, show_progress)


def _run(
    cfg: RegimesConfig, run: RunDir, show_progress: bool | None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    out = run.path
    env = environment()
    cells = plan_cells(cfg)
    bar = progress(
        total=len(cells),
        desc="regime cells",
        unit="cell",
        disable=None if show_progress is None else not show_progress,
    )
    log = ProgressLog("regimes", len(cells), enabled=None if show_progress is None else False)
    students, teachers = [], []
    for cell in cells:
        s_path = out / "cells" / f"{cell.id}.parquet"
        t_path = out / "cells" / f"{cell.id}.teachers.parquet"
        cached, t_cached = run.cached_table(s_path), run.cached_table(t_path)
        if cached is not None and t_cached is not None:
            students.append(cached)
            teachers.append(t_cached)
            log.finished(cell.id, cached=True)
            bar.update(1)
            continue
        bar.set_postfix_str(cell.id)
        rows, trows = run_cell(cfg, cell, out / "runs" / cell.id)
        rows = rows.assign(
            preset=cfg.preset,
            teacher_batch_size=cfg.teacher.batch_size,
            teacher_select=cfg.teacher.select,
            student_width="-".join(map(str, cfg.student.width)) if cfg.model == "mlp" else "",
            student_arch="mlp" if cfg.model == "mlp" else cfg.cnn.student_arch,
            student_epochs=cfg.student.epochs,
            student_lr=cfg.student.lr,
            bcpd_sim_version=env["bcpd_sim"],
            torch_version=env["torch"],
            git_commit=env["git_commit"],
            device=env["device"],
        )
        run.write_table(t_path, trows)
        run.write_table(s_path, rows)  # written last: its presence marks the cell finished
        students.append(rows.assign(config_fingerprint=run.fingerprint))
        teachers.append(trows.assign(config_fingerprint=run.fingerprint))
        log.finished(cell.id, f"mean student acc {rows.student_acc.mean():.4f}")
        bar.update(1)
    bar.close()
    results = pd.concat(students, ignore_index=True)
    teacher_table = pd.concat(teachers, ignore_index=True)
    io.write_table(out / "teachers.parquet", teacher_table)
    io.write_table(out / "results.parquet", results)
    return results, teacher_table


def is_regimes_run(run_dir: str | Path) -> bool:
    """Whether ``run_dir`` was written by ``bcpd-sim regimes``."""
    path = Path(run_dir) / "config.toml"
    try:  # bytes: a malformed file is left for the loader to name
        return path.is_file() and path.read_bytes().startswith(b'study = "regimes"')
    except OSError:
        return False


def load_run(run_dir: str | Path) -> tuple[RegimesConfig, pd.DataFrame]:
    """The config and student results of a finished run directory."""
    run_dir = Path(run_dir)
    results = run_dir / "results.parquet"
    if not results.exists():
        raise FileNotFoundError(
            f"{run_dir} has no results.parquet; run `bcpd-sim regimes --out {run_dir}` first"
        )
    return read_config(run_dir / "config.toml"), pd.read_parquet(results)
