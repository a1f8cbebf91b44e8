"""``bcpd-sim bound``: the distillation bound checked with exact p*, for many teachers and students.

Teachers: simulated ones (p* itself; the paper's label mix eta e_y + (1 - eta) p*; the uniform mix
(1 - eta) p* + eta / K; tempered p*; Dirichlet-noised p*) and MLPs trained with CE and with MSE by
the batched ensemble trainer. Students: fixed MLPs trained with CE on their own sample. For each
(teacher, student, student loss, set size N): the left side E_S[(R~ - R)^2] by Monte Carlo over
M = n_mc // N disjoint sets, both right-side terms and the exact identity on a separate population
sample, and the teacher's distance to p*. One row each in ``results.parquet``.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import log_softmax

from ... import io, metrics
from ...ensemble import member_grid, train
from ...ensemble.losses import TEACHER_LOSSES
from ...errors import ConfigError
from ...figure1 import targets as T
from ...mixtures import Sample, list_mixtures, make_mixture
from ...provenance import environment
from ...simplex import tempered
from ...validation import check_choice, check_fraction, check_int, check_positive
from ..config import load_study_config
from .terms import STUDENT_LOSSES, monte_carlo_lhs, per_class_losses, population_terms


@dataclass
class BoundConfig:
    """Settings of the bound study (every field can be set with ``--set key=value``)."""

    preset: str = "quick"
    mixture: str = "paper"
    mixture_seed: int = 0
    sample_seed: int = 1
    n_train: int = 2000  # teachers' and students' training points (separate draws)
    n_val: int = 1000
    n_mc: int = 100_000  # points cut into M = n_mc // N sets for the Monte Carlo left side
    n_pop: int = 100_000  # separate points for R, the right-side terms and the exact identity
    set_sizes: list[int] = field(default_factory=lambda: [10, 100, 1000])
    student_losses: list[str] = field(default_factory=lambda: ["ce", "mse"])
    eta_label: list[float] = field(default_factory=lambda: [0.25, 0.5, 1.0])
    eta_uniform: list[float] = field(default_factory=lambda: [0.25, 0.5, 0.9])
    temperatures: list[float] = field(default_factory=lambda: [0.5, 2.0, 4.0])
    dirichlet: list[float] = field(default_factory=lambda: [0.1, 0.3])
    teacher_losses: list[str] = field(default_factory=lambda: ["ce", "mse"])
    teacher_seeds: int = 2
    teacher_epochs: list[int] = field(default_factory=lambda: [2, 10, 30])
    student_widths: list[list[int]] = field(default_factory=lambda: [[16], [128, 128]])
    student_epochs: list[int] = field(default_factory=lambda: [2, 20])
    width: list[int] = field(default_factory=lambda: [128, 128])
    lr: float = 2e-3
    batch_size: int = 32
    device: str = "auto"
    seed: int = 0

    def validate(self) -> None:
        check_choice("mixture", self.mixture, list_mixtures())
        for key in ("n_train", "n_val", "n_mc", "n_pop", "teacher_seeds", "batch_size"):
            check_int(key, getattr(self, key), minimum=1)
        if not self.set_sizes:
            raise ConfigError("set_sizes must list at least one set size N")
        for n in self.set_sizes:
            check_int("set_sizes", n, minimum=1)
            if self.n_mc // n < 2:
                raise ConfigError(f"set_sizes: N={n} leaves fewer than 2 sets in n_mc={self.n_mc}")
        if not self.student_losses:
            raise ConfigError(f"student_losses must not be empty; valid: {STUDENT_LOSSES}")
        for s in self.student_losses:
            check_choice("student_losses", s, STUDENT_LOSSES)
        for t in self.teacher_losses:
            check_choice("teacher_losses", t, TEACHER_LOSSES)
        for key in ("eta_label", "eta_uniform", "dirichlet"):
            for v in getattr(self, key):
                check_fraction(key, v)
        for v in self.temperatures:
            check_positive("temperatures", v)
        for key in ("teacher_epochs", "student_epochs"):
            if not getattr(self, key) and key == "student_epochs":
                raise ConfigError("student_epochs must list at least one value")
            for v in getattr(self, key):
                check_int(key, v, minimum=1)
        if not self.student_widths:
            raise ConfigError("student_widths must list at least one width, e.g. [[16]]")
        for w in [*self.student_widths, self.width]:
            if not isinstance(w, list) or not w:
                raise ConfigError(f"widths must be non-empty lists of layer sizes, got {w!r}")
            for h in w:
                check_int("width", h, minimum=1)
        check_positive("lr", self.lr)
        check_choice("device", self.device, ("auto", "cpu", "cuda"))


PRESETS: dict[str, dict[str, Any]] = {
    "quick": {},
    "smoke": {
        "n_train": 300,
        "n_val": 200,
        "n_mc": 10_000,
        "n_pop": 10_000,
        "set_sizes": [10, 100],
        "eta_label": [0.5],
        "eta_uniform": [0.5],
        "temperatures": [2.0],
        "dirichlet": [0.3],
        "teacher_seeds": 1,
        "teacher_epochs": [2],
        "student_widths": [[16]],
        "student_epochs": [2],
        "width": [32],
        "lr": 5e-3,
    },
}


def load_config(preset: str = "quick", *, file=None, overrides=None) -> BoundConfig:
    return load_study_config(BoundConfig, PRESETS, preset, file=file, overrides=overrides)


@dataclass
class Teacher:
    family: str  # p_star, eta_label, eta_uniform, tempered, dirichlet, trained_<loss>
    param: float  # eta, temperature, noise weight, or the trained teacher's epochs
    seed: int
    make: Any  # (Sample, split id) -> (n, K) probabilities


def _simulated(cfg: BoundConfig, k: int) -> list[Teacher]:
    def noisy(w: float, seed: int):
        return lambda s, split: T.dirichlet_noise(s.p_star, w, np.random.default_rng([seed, split]))

    out = [Teacher("p_star", 0.0, 0, lambda s, split: s.p_star)]
    out += [
        Teacher("eta_label", e, 0, lambda s, split, e=e: T.eta_mix(s.y, s.p_star, e))
        for e in cfg.eta_label
    ]
    out += [
        Teacher("eta_uniform", e, 0, lambda s, split, e=e: (1 - e) * s.p_star + e / k)
        for e in cfg.eta_uniform
    ]
    out += [
        Teacher("tempered", t, 0, lambda s, split, t=t: tempered(s.p_star, t))
        for t in cfg.temperatures
    ]
    out += [Teacher("dirichlet", w, cfg.seed, noisy(w, cfg.seed)) for w in cfg.dirichlet]
    return out


def _train_kwargs(cfg: BoundConfig, val: Sample, k: int) -> dict[str, Any]:
    return {
        "x_val": val.x,
        "y_val": val.y,
        "num_classes": k,
        "lr": cfg.lr,
        "batch_size": cfg.batch_size,
        "select": "last",
        "device": None if cfg.device == "auto" else cfg.device,
    }


def _trained(cfg: BoundConfig, tr: Sample, val: Sample, k: int) -> list[Teacher]:
    out = []
    for name in cfg.teacher_losses:
        loss, options = TEACHER_LOSSES[name]
        specs = member_grid(
            [cfg.seed * 1000 + s for s in range(cfg.teacher_seeds)], epochs=cfg.teacher_epochs
        )
        ens = train(
            tr.x,
            tr.y,
            members=specs,
            loss=loss,
            loss_options=options,
            width=cfg.width,
            epochs=max(cfg.teacher_epochs),
            **_train_kwargs(cfg, val, k),
        )
        for i, m in enumerate(specs):
            out.append(
                Teacher(
                    f"trained_{name}",
                    float(m.epochs),
                    m.seed,
                    lambda s, split, e=ens, i=i: e.predict_proba(s.x, members=[i])[0],
                )
            )
    return out


def _students(cfg: BoundConfig, tr: Sample, val: Sample, k: int):
    """CE-trained MLPs, fixed from here on: (ensemble, description per member)."""
    widths = [tuple(w) for w in cfg.student_widths]
    specs = member_grid([cfg.seed * 1000 + 500], width=widths, epochs=cfg.student_epochs)
    ens = train(
        tr.x,
        tr.y,
        members=specs,
        loss="ce",
        epochs=max(cfg.student_epochs),
        width=list(widths[0]),
        **_train_kwargs(cfg, val, k),
    )
    names = [f"mlp{list(m.width)}-{m.epochs}ep" for m in specs]
    return ens, names


def _losses(ens, names: list[str], cfg: BoundConfig, s: Sample) -> tuple[np.ndarray, list]:
    """Per-class loss vectors ``(students x losses, n, K)`` and their (student, loss) labels."""
    log_q = log_softmax(ens.predict_logits(s.x), axis=-1)
    arrays, labels = [], []
    for j, name in enumerate(names):
        for loss in cfg.student_losses:
            arrays.append(per_class_losses(log_q[j], loss))
            labels.append((j, name, loss))
    return np.stack(arrays), labels


def run_bound(cfg: BoundConfig, out: str | Path) -> pd.DataFrame:
    """Run the study into ``out``: ``results.parquet``, ``summary.json``, ``config.toml``."""
    from ..config import to_toml

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    mix = make_mixture(cfg.mixture, seed=cfg.mixture_seed)
    k = mix.num_classes
    n_fit = 2 * cfg.n_train + cfg.n_val
    full = mix.sample(n_fit + cfg.n_mc + cfg.n_pop, seed=cfg.sample_seed)
    t_tr, s_tr, val, mc, pop = full.split(cfg.n_train, cfg.n_train, cfg.n_val, cfg.n_mc, cfg.n_pop)

    teachers = _simulated(cfg, k) + _trained(cfg, t_tr, val, k)
    stud, names = _students(cfg, s_tr, val, k)
    l_mc, labels = _losses(stud, names, cfg, mc)
    l_pop, _ = _losses(stud, names, cfg, pop)
    student_acc = metrics.accuracy(stud.predict_proba(pop.x), pop.y)

    rows = []
    for ti, teacher in enumerate(teachers):
        p_mc, p_pop = teacher.make(mc, 0)[None], teacher.make(pop, 1)[None]
        t_metrics = metrics.evaluate(
            p_pop, y=pop.y, p_star=pop.p_star, metrics=["accuracy", "mse_to_bcpd", "kl_to_bcpd"]
        )
        for n_set in cfg.set_sizes:
            terms = population_terms(p_pop, pop.p_star, l_pop, n_set)
            lhs, se, m = monte_carlo_lhs(p_mc, l_mc, terms["risk"][0], n_set)
            for si, (j, name, loss) in enumerate(labels):
                rows.append(
                    {
                        "teacher": ti,
                        "teacher_family": teacher.family,
                        "teacher_param": teacher.param,
                        "teacher_seed": teacher.seed,
                        "teacher_acc": float(t_metrics.accuracy[0]),
                        "teacher_mse_to_bcpd": float(t_metrics.mse_to_bcpd[0]),
                        "teacher_kl_to_bcpd": float(t_metrics.kl_to_bcpd[0]),
                        "student": j,
                        "student_name": name,
                        "student_acc": float(student_acc[j]),
                        "student_loss": loss,
                        "n_set": n_set,
                        "n_sets": m,
                        "lhs": float(lhs[0, si]),
                        "lhs_se": float(se[0, si]),
                        **{key: float(v[0, si]) for key, v in terms.items()},
                    }
                )
    frame = pd.DataFrame(rows)
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
    """Whether and how tightly the bound holds, from ``results.parquet`` alone."""
    from ...figure1.stats import correlation

    z = (frame.lhs - frame.rhs) / frame.lhs_se
    ident = (frame.lhs - frame.exact) / frame.lhs_se
    ratio = frame.rhs / frame.lhs
    per_student = []
    for _key, part in frame.groupby(["student_name", "student_loss", "n_set"]):
        per_student.append(
            correlation(part.teacher_mse_to_bcpd.to_numpy(), part.bias_term.to_numpy(), "spearman")
        )
    return {
        "cases": int(len(frame)),
        "teachers": int(frame.teacher.nunique()),
        "students": int(frame.student.nunique()),
        "holds": int((frame.lhs <= frame.rhs).sum()),
        "holds_within_2se": int((z <= 2).sum()),
        "max_z_lhs_above_rhs": float(z.max()),
        "slack_ratio_rhs_over_lhs": {
            "min": float(ratio.min()),
            "median": float(ratio.median()),
            "max": float(ratio.max()),
        },
        "slack_ratio_by_family": {
            fam: float(part.median()) for fam, part in ratio.groupby(frame.teacher_family)
        },
        "identity_within_3se": int((ident.abs() <= 3).sum()),
        "identity_max_abs_z": float(ident.abs().max()),
        "bias_share_of_rhs_median": float((frame.bias_term / frame.rhs).median()),
        "spearman_bias_term_vs_teacher_mse_median": float(np.nanmedian(per_student)),
        "spearman_bias_term_vs_teacher_mse_min": float(np.nanmin(per_student)),
    }
