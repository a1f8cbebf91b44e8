"""Run the Figure-1 studies cell by cell, resumably, and collect one row per student.

A *cell* is one batched training job (one simulated-target kind, or one teacher loss with all its
teachers and their students). Each finished cell is written atomically to ``cells/<id>.parquet``;
rerunning the same command skips finished cells, so an interrupted run resumes where it stopped.
Seeds depend only on the config and the cell, never on the order cells run in.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.special import softmax

from .. import io, metrics
from ..ensemble import MemberSpec, train
from ..errors import ConfigError
from ..mixtures import SAMPLING_SCHEME, Sample, make_mixture
from ..progress import ProgressLog, progress
from ..provenance import environment
from ..rundir import RunDir, open_run_dir
from . import targets as T
from .config import TEACHER_LOSSES, Figure1Config, load_config, load_run_config


@dataclass
class Data:
    train: Sample
    val: Sample
    test: Sample
    num_classes: int
    draw: int = 0
    mixture_seed: int = 0
    sample_seed: int = 1


@dataclass
class Cell:
    id: str
    study: str  # "simulated" or "trained"
    kind: str  # simulated target kind, or teacher loss name
    index: int
    draw: int = 0

    @property
    def file(self) -> str:
        return f"draw{self.draw}-{self.id}.parquet"


#: Model seeds (teachers, students, target noise) of draw j are offset by j * DRAW_SEED_STRIDE, so
#: draws are independent replicates of the whole study, not the same networks on new data.
DRAW_SEED_STRIDE = 10_000_000


def draw_seeds(cfg: Figure1Config, draw: int) -> tuple[int, int]:
    """(mixture_seed, sample_seed) of one draw: draw j samples with sample_seed + j, and with
    ``data.redraw_mixture`` also draws a fresh mixture from mixture_seed + j."""
    d = cfg.data
    return d.mixture_seed + (draw if d.redraw_mixture else 0), d.sample_seed + draw


def prepare_data(cfg: Figure1Config, draw: int = 0) -> Data:
    """One draw's train / validation / test splits, each from its own child stream (sampling
    scheme 2), so changing n_val or n_test never changes the training data."""
    d = cfg.data
    mixture_seed, sample_seed = draw_seeds(cfg, draw)
    mix = make_mixture(d.mixture, seed=mixture_seed)
    train_s, val_s, test_s = mix.sample_splits((d.n_train, d.n_val, d.n_test), seed=sample_seed)
    return Data(train_s, val_s, test_s, mix.num_classes, draw, mixture_seed, sample_seed)


def plan_cells(cfg: Figure1Config) -> list[Cell]:
    """Every cell of every draw, draw by draw."""
    cells = [
        Cell(c.id, c.study, c.kind, c.index, draw)
        for draw in range(cfg.data.draws)
        for c in _plan_draw(cfg)
    ]
    return cells


def _plan_draw(cfg: Figure1Config) -> list[Cell]:
    cells = []
    s = cfg.simulated
    if s.enabled:
        for i, (name, kind) in enumerate(T.TARGET_KINDS.items()):
            if kind.count(s):
                cells.append(Cell(f"simulated-{name}", "simulated", name, i))
    if cfg.trained.enabled:
        for loss in cfg.trained.losses:
            cells.append(Cell(f"trained-{loss}", "trained", loss, list(TEACHER_LOSSES).index(loss)))
    return cells


# --------------------------------------------------------------------------- training helpers
def _train_kwargs(cfg: Figure1Config, data: Data) -> dict:
    t = cfg.train
    return {
        "x_val": data.val.x,
        "y_val": data.val.y,
        "num_classes": data.num_classes,
        "lr": t.lr,
        "batch_size": t.batch_size,
        "optimizer": t.optimizer,
        "optimizer_options": {"momentum": t.momentum} if t.optimizer == "sgd" else None,
        "select": t.select,
        "device": t.device,
    }


def _student_rows(ensemble, data: Data) -> pd.DataFrame:
    """Test metrics of the selected student checkpoints (and the last epoch where recorded)."""
    q = ensemble.predict_proba(data.test.x)
    frame = metrics.evaluate(
        q,
        y=data.test.y,
        p_star=data.test.p_star,
        metrics=["accuracy", "mse_to_bcpd", "kl_to_bcpd", "nll"],
    )
    out = pd.DataFrame(
        {
            "student_acc": frame.accuracy.to_numpy(),
            "student_mse_to_bcpd": frame.mse_to_bcpd.to_numpy(),
            "student_kl_to_bcpd": frame.kl_to_bcpd.to_numpy(),
            "student_nll": frame.nll.to_numpy(),
            "student_selected_epoch": ensemble.selected_epoch,
            "student_selection": ensemble.selection_rule,
        }
    )
    last = ensemble.predict_proba(data.test.x, checkpoint="last")
    out["student_acc_last"] = metrics.accuracy(last, data.test.y)
    return out


def _target_distances(
    p_tar: np.ndarray, p_star: np.ndarray, suffix: str = ""
) -> dict[str, np.ndarray]:
    """Per-member distances of targets (E, n, K) to the BCPD (n, K): per-sample means.

    A target with exactly zero mass on a class p* supports (eta = 1) gets a finite, very large KL:
    :mod:`bcpd_sim.metrics` floors log q at the smallest positive float.
    """
    return {
        f"mse_to_bcpd{suffix}": metrics.mse_to_bcpd(p_tar, p_star),
        f"kl_to_bcpd{suffix}": metrics.kl_to_bcpd(p_tar, p_star),
        f"ce_to_bcpd{suffix}": metrics.ce_to_bcpd(p_tar, p_star),
        f"ce_to_bcpd_clip10{suffix}": metrics.ce_to_bcpd_clip10(p_tar, p_star),
        f"frobenius_to_bcpd{suffix}": metrics.frobenius_to_bcpd(p_tar, p_star),
    }


# --------------------------------------------------------------------------- simulated teachers
def simulated_targets(
    cfg: Figure1Config, cell: Cell, sample: Sample, *, noise_seed: int
) -> tuple[list[float], np.ndarray]:
    """The cell's target parameters and its soft targets (E, n, K) on ``sample``."""
    s = cfg.simulated
    kind = T.TARGET_KINDS[cell.kind]
    params = kind.params(s, np.random.default_rng([s.seed, cell.index]))
    out = [
        kind.make_member(
            sample.y,
            sample.p_star,
            params,
            j,
            np.random.default_rng([s.seed, cell.index, j, noise_seed, cell.draw]),
        )
        for j in range(len(params))
    ]
    return params, np.stack(out)


def run_simulated_cell(cfg: Figure1Config, cell: Cell, data: Data) -> pd.DataFrame:
    params, p_tar = simulated_targets(cfg, cell, data.train, noise_seed=0)
    _, p_val = simulated_targets(cfg, cell, data.val, noise_seed=1)
    offset = cell.draw * DRAW_SEED_STRIDE
    seeds = [
        offset + cfg.simulated.seed * 100_000 + cell.index * 1_000 + j for j in range(len(params))
    ]
    kinds = T.TARGET_KINDS[cell.kind].member_kinds(params)
    start = time.perf_counter()
    students = train(
        data.train.x,
        data.train.y,
        members=[MemberSpec(seed=s, width=tuple(cfg.train.width)) for s in seeds],
        loss="soft",
        loss_options={"temperature": cfg.simulated.student_temperature},
        targets=p_tar,
        val_targets=p_val,
        epochs=cfg.train.epochs,
        **_train_kwargs(cfg, data),
    )
    seconds = time.perf_counter() - start
    rows = pd.DataFrame(
        {
            "study": "simulated",
            "cell": cell.id,
            "teacher_kind": kinds,
            "teacher_loss": [f"simulated:{k}" for k in kinds],
            "target_param": params,
            "teacher_seed": -1,
            "teacher_epochs": 0,
            "teacher_n_train": 0,
            "teacher_width": "",
            "teacher_acc": np.nan,
            "teacher_agrees_with_bayes": (p_tar.argmax(-1) == data.train.p_star.argmax(-1)).mean(
                -1
            ),
            "seed": seeds,
            "student_seed": seeds,
            **_target_distances(p_tar, data.train.p_star),
        }
    )
    rows = pd.concat([rows, _student_rows(students, data)], axis=1)
    rows["cell_seconds"] = seconds
    return rows


# --------------------------------------------------------------------------- trained teachers
def teacher_grid(cfg: Figure1Config, draw: int = 0) -> list[dict]:
    r = cfg.trained
    grid = itertools.product(range(r.seeds), r.epochs, r.n_train, [tuple(w) for w in r.widths])
    return [
        {
            "teacher_seed": draw * DRAW_SEED_STRIDE + r.seed * 100_000 + i,
            "replicate": s,
            "teacher_epochs": e,
            "teacher_n_train": n,
            "teacher_width": w,
        }
        for i, (s, e, n, w) in enumerate(grid)
    ]


def run_trained_cell(cfg: Figure1Config, cell: Cell, data: Data) -> pd.DataFrame:
    r = cfg.trained
    loss, options = TEACHER_LOSSES[cell.kind]
    grid = teacher_grid(cfg, cell.draw)
    start = time.perf_counter()
    teachers = train(
        data.train.x,
        data.train.y,
        members=[
            MemberSpec(
                seed=g["teacher_seed"],
                epochs=g["teacher_epochs"],
                n_train=g["teacher_n_train"],
                width=g["teacher_width"],
            )
            for g in grid
        ],
        loss=loss,
        loss_options=options,
        epochs=max(r.epochs),
        **(_train_kwargs(cfg, data) | {"select": r.teacher_select}),
    )
    temp = r.student_temperature
    logits_train = teachers.predict_logits(data.train.x)
    logits_val = teachers.predict_logits(data.val.x)
    q_train = softmax(logits_train, axis=-1)
    q_test = teachers.predict_proba(data.test.x)
    teacher_acc = metrics.accuracy(q_test, data.test.y)
    dist_train = _target_distances(q_train, data.train.p_star)
    dist_test = _target_distances(q_test, data.test.p_star, suffix="_test")

    per = r.students_per_teacher
    which = np.repeat(np.arange(len(grid)), per)
    student_seeds = [
        cell.draw * DRAW_SEED_STRIDE + r.seed * 100_000 + 50_000 + i * per + j
        for i in range(len(grid))
        for j in range(per)
    ]
    students = train(
        data.train.x,
        data.train.y,
        members=[MemberSpec(seed=s, width=tuple(cfg.train.width)) for s in student_seeds],
        loss="soft",
        loss_options={"temperature": temp},
        targets=softmax(logits_train[which] / temp, axis=-1),
        val_targets=softmax(logits_val[which] / temp, axis=-1),
        epochs=cfg.train.epochs,
        **_train_kwargs(cfg, data),
    )
    seconds = time.perf_counter() - start
    teacher_frame = pd.DataFrame(grid).assign(
        teacher_width=lambda f: f.teacher_width.map(lambda w: "-".join(map(str, w))),
        teacher_acc=teacher_acc,
        teacher_selected_epoch=teachers.selected_epoch,
        teacher_selection=r.teacher_select,
        teacher_loss_options=str(options),
        **dist_train,
        **dist_test,
    )
    rows = teacher_frame.iloc[which].reset_index(drop=True)
    rows.insert(0, "study", "trained")
    rows.insert(1, "cell", cell.id)
    rows.insert(2, "teacher_kind", "trained")
    rows.insert(3, "teacher_loss", cell.kind)
    rows["target_param"] = np.nan
    rows["teacher_agrees_with_bayes"] = (q_train.argmax(-1) == data.train.p_star.argmax(-1)).mean(
        -1
    )[which]
    rows["seed"] = rows["teacher_seed"]
    rows["student_seed"] = student_seeds
    rows = pd.concat([rows, _student_rows(students, data)], axis=1)
    rows["cell_seconds"] = seconds
    return rows


# --------------------------------------------------------------------------- the run
def check_scheme(out: str | Path) -> None:
    """Refuse to resume a run directory made with another sampling scheme (one line saying why)."""
    scheme = existing_scheme(Path(out))
    if scheme is not None and scheme != SAMPLING_SCHEME:
        raise ConfigError(
            f"{out} holds a run made with sampling scheme {scheme} (splits cut from one stream, one "
            f"draw); this version samples with scheme {SAMPLING_SCHEME}, so it cannot resume it: "
            f"choose another --out (`bcpd-sim plot {out}` still reads the old run as it is)"
        )


def run_cell(
    cfg: Figure1Config,
    cell: Cell,
    out: Path,
    *,
    data: Data | None = None,
    env: dict | None = None,
    fingerprint: str | None = None,
) -> pd.DataFrame:
    """Train one cell, label its rows with the draw and the run's settings, and write it atomically
    to ``out/cells`` (stamped with the config's ``fingerprint``). Cells are independent, so
    separate processes may train different cells while one of them holds the run's lock."""
    if data is None or data.draw != cell.draw:
        data = prepare_data(cfg, cell.draw)
    env = env or environment()
    runner = run_simulated_cell if cell.study == "simulated" else run_trained_cell
    frame = runner(cfg, cell, data)
    frame.insert(0, "draw", cell.draw)
    frame = frame.assign(
        preset=cfg.preset,
        mixture=cfg.data.mixture,
        mixture_seed=data.mixture_seed,
        sample_seed=data.sample_seed,
        sampling_scheme=SAMPLING_SCHEME,
        n_train=cfg.data.n_train,
        student_epochs=cfg.train.epochs,
        student_lr=cfg.train.lr,
        student_width="-".join(map(str, cfg.train.width)),
        batch_size=cfg.train.batch_size,
        selection=cfg.train.select,
        bcpd_sim_version=env["bcpd_sim"],
        torch_version=env["torch"],
        git_commit=env["git_commit"],
        device=env["device"],
    )
    if fingerprint is not None:
        frame = frame.assign(config_fingerprint=fingerprint)
    io.write_table(Path(out) / "cells" / cell.file, frame)
    return frame


def run_figure1(
    cfg: Figure1Config, out: str | Path, *, show_progress: bool | None = None
) -> pd.DataFrame:
    """Run (or resume) both studies into ``out``; return the results table (one row per student).

    ``out`` is locked while the run lasts; cells made by another config are never reused.
    """
    check_scheme(out)
    with open_run_dir(out, cfg.to_toml()) as run:
        return _run_cells(cfg, run, show_progress)


def _run_cells(cfg: Figure1Config, run: RunDir, show_progress: bool | None) -> pd.DataFrame:
    out = run.path
    cells = plan_cells(cfg)
    env = environment()
    bar = progress(
        total=len(cells),
        desc="figure1 cells",
        unit="cell",
        disable=None if show_progress is None else not show_progress,
    )
    log = ProgressLog("figure1", len(cells), enabled=None if show_progress is None else False)
    frames = []
    data: Data | None = None
    for cell in cells:
        path = out / "cells" / cell.file
        name = cell.id if cfg.data.draws == 1 else f"draw {cell.draw}: {cell.id}"
        cached = run.cached_table(path)
        if cached is not None:
            frames.append(cached)
            log.finished(name, cached=True)
            bar.update(1)
            continue
        bar.set_postfix_str(name)
        if data is None or data.draw != cell.draw:
            data = prepare_data(cfg, cell.draw)
        frame = run_cell(cfg, cell, out, data=data, env=env, fingerprint=run.fingerprint)
        frames.append(frame)
        log.finished(
            name,
            f"mean student acc {frame.student_acc.mean():.4f} ({len(frame)} students)",
        )
        bar.update(1)
    bar.close()
    results = pd.concat(frames, ignore_index=True)
    io.write_table(out / "results.parquet", results)
    return results


def existing_scheme(out: Path) -> int | None:
    """The sampling scheme of the cells already in ``out`` (None when there are none; 1 for runs
    made before schemes were recorded)."""
    files = sorted((out / "cells").glob("*.parquet"))
    if not files:
        return None
    frame = pd.read_parquet(files[0])
    return int(frame.sampling_scheme.iloc[0]) if "sampling_scheme" in frame else 1


def load_run(run_dir: str | Path) -> tuple[Figure1Config, pd.DataFrame]:
    """The config and results of a finished run directory."""
    run_dir = Path(run_dir)
    results = run_dir / "results.parquet"
    if not results.exists():
        raise FileNotFoundError(
            f"{run_dir} has no results.parquet; run `bcpd-sim figure1 --out {run_dir}` first"
        )
    path = run_dir / "config.toml"
    try:
        cfg = load_run_config(path)
    except ConfigError as exc:  # a bad value in the saved config: name the file too
        raise ConfigError(str(exc) if str(path) in str(exc) else f"{path}: {exc}") from None
    frame = pd.read_parquet(results)
    if "sampling_scheme" not in frame:  # made before draws: read as it is, one draw of scheme 1
        cfg = replace(cfg, data=replace(cfg.data, draws=1))
        frame.insert(0, "draw", 0)
        frame["sampling_scheme"] = 1
    return cfg, frame


__all__ = ["load_config", "load_run", "run_figure1"]
