"""The paper-style CE-vs-MSE teacher table built from distillation run directories.

One row per (dataset, teacher -> student pair, method). Columns: the student's test accuracy when
distilled from a CE-trained teacher and from an MSE-trained one (mean ± sd over seeds, last epoch
and best-on-validation epoch), the difference MSE - CE with a paired 95% t-interval (runs paired by
their seed), the teachers' own test accuracies (mean ± sd over the distinct teacher checkpoints)
and, where the dataset has an exact BCPD (the synthetic one), each teacher's mean squared error and
KL divergence to p* on the test images.

Every run directory holds ``result.json`` (written by :mod:`bcpd_sim.vision.distill.trainer` when
the run finishes) with the fields in :data:`RESULT_FIELDS`; accuracies are fractions there and
percentages in the table.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from ..errors import ConfigError
from ..io import write_table, write_text
from .configs import PROTOCOLS

RESULT_FILE = "result.json"
RESULT_FIELDS = (
    "dataset",
    "teacher_arch",
    "student_arch",
    "method",
    "teacher_loss",
    "teacher_checkpoint",
    "seed",
    "test_acc_last",
    "test_acc_best",
    "teacher_test_acc",
)
OPTIONAL_FIELDS = (
    "teacher_mse_to_pstar",
    "teacher_kl_to_pstar",
    "best_epoch",
    "epochs",
    "test_top5_last",
    "test_top5_best",
)
GROUP = ["dataset", "teacher_arch", "student_arch", "method", "protocol"]
TOP5 = ("test_top5_last", "test_top5_best")
#: How a row's runs chose their result; runs written before the field existed used a split.
DEFAULT_PROTOCOL = PROTOCOLS[False]


def find_run_dirs(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """Run directories among ``paths``: each path is a run directory (holding ``result.json``)
    or a folder searched recursively for them. A missing path is a FileNotFoundError."""
    found: list[Path] = []
    for p in map(Path, paths):
        if not p.exists():
            raise FileNotFoundError(f"run directory {p} does not exist")
        if (p / RESULT_FILE).is_file():
            found.append(p)
        elif p.is_dir():
            found.extend(sorted(r.parent for r in p.rglob(RESULT_FILE)))
        else:
            raise NotADirectoryError(f"{p} is not a run directory")
    return sorted(set(found))


def load_result(run_dir: str | os.PathLike) -> dict:
    """The finished run's ``result.json``, checked for the fields the table needs."""
    path = Path(run_dir) / RESULT_FILE
    try:
        record = json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"{path} not found: the run has not finished") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path} is not valid JSON ({exc})") from None
    missing = [f for f in RESULT_FIELDS if f not in record]
    if missing:
        raise ConfigError(f"{path} lacks field(s) {', '.join(missing)}")
    row = {f: record[f] for f in RESULT_FIELDS}
    for f in OPTIONAL_FIELDS:
        row[f] = record.get(f)
    row["protocol"] = record.get("protocol", DEFAULT_PROTOCOL)
    row["run_dir"] = str(run_dir)
    return row


def collect_runs(paths: Iterable[str | os.PathLike]) -> pd.DataFrame:
    """One row per finished distillation run found under ``paths``."""
    dirs = find_run_dirs(paths)
    if not dirs:
        raise FileNotFoundError(
            f"no finished distillation runs ({RESULT_FILE}) under {', '.join(map(str, paths))}"
        )
    frame = pd.DataFrame([load_result(d) for d in dirs])
    numeric = ("test_acc_last", "test_acc_best", "teacher_test_acc")
    for col in (*numeric, "teacher_mse_to_pstar", "teacher_kl_to_pstar", *TOP5):
        frame[col] = pd.to_numeric(frame[col], errors="coerce")
    return frame


def mean_sd(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof 1; NaN for fewer than two values)."""
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        return math.nan, math.nan
    return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else math.nan


def paired_interval(diffs: Sequence[float], level: float = 0.95) -> tuple[float, float, float]:
    """Mean of paired differences and its two-sided t-interval (NaN bounds for n < 2)."""
    d = np.asarray(diffs, dtype=np.float64)
    if d.size == 0:
        return math.nan, math.nan, math.nan
    mean = float(d.mean())
    if d.size < 2:
        return mean, math.nan, math.nan
    half = float(stats.t.ppf(0.5 + level / 2, d.size - 1) * d.std(ddof=1) / math.sqrt(d.size))
    return mean, mean - half, mean + half


def _per_seed(runs: pd.DataFrame, col: str) -> pd.Series:
    """One value per seed (the mean if a seed appears twice), seeds without a value dropped."""
    return runs.groupby("seed")[col].mean().dropna()


def build_table(
    runs: pd.DataFrame, *, baseline: str = "ce", treatment: str = "mse", level: float = 0.95
) -> pd.DataFrame:
    """Aggregate the runs into the table (numbers in percent; see the module docstring).

    ``baseline`` and ``treatment`` are the teacher losses compared (``treatment - baseline``).
    """
    losses = set(runs["teacher_loss"])
    for name, loss in (("baseline", baseline), ("treatment", treatment)):
        if loss not in losses:
            raise ConfigError(
                f"no runs with teacher loss {loss!r} (the {name}); found: {', '.join(sorted(losses))}"
            )
    rows = []
    for key, group in runs.groupby(GROUP, sort=True):
        row = dict(zip(GROUP, key))
        sides = {
            "ce": group[group["teacher_loss"] == baseline],
            "mse": group[group["teacher_loss"] == treatment],
        }
        for side, sub in sides.items():
            row[f"n_{side}"] = int(sub["seed"].nunique())
            for which in ("last", "best"):
                m, s = (
                    mean_sd(100 * _per_seed(sub, f"test_acc_{which}"))
                    if len(sub)
                    else (math.nan,) * 2
                )
                row[f"{side}_{which}_mean"], row[f"{side}_{which}_sd"] = m, s
                top5 = _per_seed(sub, f"test_top5_{which}") if len(sub) else pd.Series(dtype=float)
                m5, s5 = mean_sd(100 * top5)
                row[f"{side}_top5_{which}_mean"], row[f"{side}_top5_{which}_sd"] = m5, s5
            teachers = sub.drop_duplicates("teacher_checkpoint")
            row[f"teacher_{side}_acc_mean"], row[f"teacher_{side}_acc_sd"] = mean_sd(
                100 * teachers["teacher_test_acc"].astype(float)
            )
            for metric in ("mse", "kl"):
                vals = teachers[f"teacher_{metric}_to_pstar"].dropna()
                row[f"teacher_{side}_{metric}_pstar"] = (
                    float(vals.mean()) if len(vals) else math.nan
                )
        for which in ("last", "best"):
            a = (
                _per_seed(sides["ce"], f"test_acc_{which}")
                if len(sides["ce"])
                else pd.Series(dtype=float)
            )
            b = (
                _per_seed(sides["mse"], f"test_acc_{which}")
                if len(sides["mse"])
                else pd.Series(dtype=float)
            )
            common = a.index.intersection(b.index)
            m, lo, hi = paired_interval(100 * (b[common] - a[common]), level)
            row["n_pairs"] = len(common)
            row[f"diff_{which}_mean"], row[f"diff_{which}_lo"], row[f"diff_{which}_hi"] = m, lo, hi
        rows.append(row)
    table = pd.DataFrame(rows)
    table.attrs.update(baseline=baseline, treatment=treatment, level=level)
    return table


def _pm(m: float, s: float) -> str:
    if math.isnan(m):
        return "n/a"
    return f"{m:.2f}" if math.isnan(s) else f"{m:.2f} ± {s:.2f}"


def _ci(m: float, lo: float, hi: float) -> str:
    if math.isnan(m):
        return "n/a"
    return f"{m:+.2f}" if math.isnan(lo) else f"{m:+.2f} [{lo:+.2f}, {hi:+.2f}]"


def to_markdown(table: pd.DataFrame) -> str:
    """The table as GitHub Markdown, with a caption line saying what the numbers are."""
    base = table.attrs.get("baseline", "ce").upper()
    treat = table.attrs.get("treatment", "mse").upper()
    level = int(round(100 * table.attrs.get("level", 0.95)))
    has_pstar = bool(table.filter(like="_pstar").notna().to_numpy().any() if len(table) else False)
    multi_ds = table["dataset"].nunique() > 1 if len(table) else False
    head = (["dataset"] if multi_ds else []) + [
        "teacher -> student",
        "method",
        f"{base} teacher: last",
        f"{base} teacher: best",
        f"{treat} teacher: last",
        f"{treat} teacher: best",
        f"{treat} - {base}: last",
        f"{treat} - {base}: best",
        "seeds",
        f"teacher acc ({base})",
        f"teacher acc ({treat})",
    ]
    has_top5 = bool(
        len(table) and table.filter(regex=r"_top5_(last|best)_mean$").notna().to_numpy().any()
    )
    if has_top5:
        head += [f"top-5 {base} teacher: last / best", f"top-5 {treat} teacher: last / best"]
    if has_pstar:
        head += [
            f"teacher MSE to p* ({base})",
            f"teacher MSE to p* ({treat})",
            f"teacher KL to p* ({base})",
            f"teacher KL to p* ({treat})",
        ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in table.to_dict("records"):
        cells = ([r["dataset"]] if multi_ds else []) + [
            f"{r['teacher_arch']} -> {r['student_arch']}",
            r["method"] + ("" if r["protocol"] == DEFAULT_PROTOCOL else " (full train, last)"),
            _pm(r["ce_last_mean"], r["ce_last_sd"]),
            _pm(r["ce_best_mean"], r["ce_best_sd"]),
            _pm(r["mse_last_mean"], r["mse_last_sd"]),
            _pm(r["mse_best_mean"], r["mse_best_sd"]),
            _ci(r["diff_last_mean"], r["diff_last_lo"], r["diff_last_hi"]),
            _ci(r["diff_best_mean"], r["diff_best_lo"], r["diff_best_hi"]),
            f"{r['n_ce']}/{r['n_mse']} ({r['n_pairs']} paired)",
            _pm(r["teacher_ce_acc_mean"], r["teacher_ce_acc_sd"]),
            _pm(r["teacher_mse_acc_mean"], r["teacher_mse_acc_sd"]),
        ]
        if has_top5:
            cells += [
                f"{_pm(r[f'{side}_top5_last_mean'], math.nan)} / "
                f"{_pm(r[f'{side}_top5_best_mean'], math.nan)}"
                for side in ("ce", "mse")
            ]
        if has_pstar:
            cells += [
                _num(r["teacher_ce_mse_pstar"]),
                _num(r["teacher_mse_mse_pstar"]),
                _num(r["teacher_ce_kl_pstar"]),
                _num(r["teacher_mse_kl_pstar"]),
            ]
        lines.append("| " + " | ".join(map(str, cells)) + " |")
    caption = (
        f"Student top-1 test accuracy (%), mean ± sd over seeds; 'last' = final epoch, 'best' = "
        f"epoch with the best validation accuracy. Differences {treat} - {base} teacher, paired by "
        f"seed, with {level}% t-intervals. Teacher accuracies over the distinct teacher checkpoints."
    )
    if has_top5:
        caption += " Top-5: student top-5 test accuracy (%), mean over seeds."
    if (table["protocol"] != DEFAULT_PROTOCOL).any():
        caption += (
            " Methods marked '(full train, last)': trained on every training image with no "
            "validation split; their 'last' is the number the anchors' tables report, 'best' is n/a."
        )
    if has_pstar:
        caption += " Distances to p*: per-image mean on the test set (MSE = squared L2, KL(p*||q))."
    return caption + "\n\n" + "\n".join(lines) + "\n"


def _num(v: float) -> str:
    return "n/a" if v is None or math.isnan(v) else f"{v:.4f}"


def write_outputs(table: pd.DataFrame, out: str | os.PathLike) -> list[Path]:
    """Write ``out`` with its sibling: ``x.md`` and ``x.csv`` whichever suffix ``out`` has."""
    out = Path(out)
    if out.suffix.lower() not in (".md", ".csv"):
        raise ConfigError(f"--out must end in .md or .csv, got {out}")
    md, csv = out.with_suffix(".md"), out.with_suffix(".csv")
    write_text(md, to_markdown(table))
    write_table(csv, table)
    return [md, csv]
