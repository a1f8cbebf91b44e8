"""From results.parquet to summary.json: paired student gains per map cell, and the heat maps.

A *pair* is two students that differ only in their teacher's loss: same map cell, draw, teacher
replicate (init and data order), lr rule, student inputs, student loss and student seed. For each
teacher loss other than ``ce`` and each metric, the paired difference ``loss - ce`` is summarised
across seeds (bootstrap over pairs, conditional on the draws) and across draws (per-draw mean
differences, their mean, and an interval over draws).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import io
from ..figure1.stats import correlation, paired_across_draws, paired_difference
from .config import RegimesConfig

BASELINE = "ce"
PAIR_KEYS = ["draw", "replicate", "student_index"]
PAIRED_METRICS = (
    "student_acc",
    "student_acc_last",
    "teacher_acc",
    "teacher_train_acc",
    "mse_to_bcpd",
    "kl_to_bcpd",
    "mse_to_bcpd_heldout",
    "kl_to_bcpd_heldout",
    "teacher_overconfidence",
)
SEED_METRICS = ("student_acc", "student_acc_last")
VIEW_KEYS = ["lr_rule", "student_inputs", "student_loss"]
#: Heat maps: gain (paired student-accuracy difference), the teachers' distance ratio
#: (mean MSE to p* on the students' inputs, loss / ce), the CE teacher's training accuracy.
MAPS = ("student_gain", "distance_ratio", "ce_train_acc")


def paired_frame(
    results: pd.DataFrame, loss: str, axes: list[str], *, baseline: str = BASELINE
) -> pd.DataFrame:
    """Rows of ``loss`` joined to the matching ``baseline`` rows (suffixes ``_a``, ``_b``)."""
    keys = [*axes, *VIEW_KEYS, *PAIR_KEYS]
    a = results[results.teacher_loss == loss].set_index(keys)
    b = results[results.teacher_loss == baseline].set_index(keys)
    return pd.merge(a, b, left_index=True, right_index=True, suffixes=("_a", "_b")).reset_index()


def cell_records(
    results: pd.DataFrame, cfg: RegimesConfig, *, resamples: int = 2000
) -> list[dict[str, Any]]:
    """One record per (map cell, lr rule, student inputs, student loss, loss vs ce)."""
    x, y = cfg.map.x, cfg.map.y
    records = []
    for loss in [v for v in cfg.teacher.losses if v != BASELINE]:
        joined = paired_frame(results, loss, [x, y])
        for key, part in joined.groupby([x, y, *VIEW_KEYS], sort=True):
            rec: dict[str, Any] = dict(zip([x, y, *VIEW_KEYS], _plain(key)))
            rec |= {"loss_a": loss, "loss_b": BASELINE, "n_pairs": len(part)}
            for m in PAIRED_METRICS:
                diff = (part[f"{m}_a"] - part[f"{m}_b"]).to_numpy(float)
                rec[m] = {
                    "mean_a": float(part[f"{m}_a"].mean()),
                    "mean_b": float(part[f"{m}_b"].mean()),
                    "across_draws": paired_across_draws(
                        diff, part["draw"].to_numpy(), resamples=resamples
                    ),
                }
                if m in SEED_METRICS:  # pairs resampled, conditional on the draws
                    rec[m]["across_seeds"] = paired_difference(
                        part[f"{m}_a"].to_numpy(float),
                        part[f"{m}_b"].to_numpy(float),
                        resamples=resamples,
                    )
            rec["distance_ratio"] = rec["mse_to_bcpd"]["mean_a"] / rec["mse_to_bcpd"]["mean_b"]
            rec["ce_train_acc"] = rec["teacher_train_acc"]["mean_b"]
            rec["student_gain"] = rec["student_acc"]["across_draws"]["mean"]
            lo = rec["student_acc"]["across_draws"]["ci_low"]
            hi = rec["student_acc"]["across_draws"]["ci_high"]
            rec["gain_sign"] = int(np.sign(lo)) if lo > 0 or hi < 0 else 0
            records.append(rec)
    return records


def _plain(values) -> list:
    return [v.item() if isinstance(v, np.generic) else v for v in values]


def heatmaps(records: list[dict[str, Any]], cfg: RegimesConfig) -> list[dict[str, Any]]:
    """Each map as a (len(y values), len(x values)) grid, per lr rule, inputs, student loss and
    compared loss; ``sign`` is +1 / -1 where the across-draw interval of the gain excludes 0."""
    x, y = cfg.map.x, cfg.map.y
    xs, ys = list(cfg.axis_values(x)), list(cfg.axis_values(y))
    groups: dict[tuple, dict[tuple, dict]] = {}
    for rec in records:
        view = (rec["loss_a"], *(rec[k] for k in VIEW_KEYS))
        groups.setdefault(view, {})[(rec[x], rec[y])] = rec
    out = []
    for view, cells in groups.items():
        entry: dict[str, Any] = {"loss_a": view[0], "loss_b": BASELINE}
        entry |= dict(zip(VIEW_KEYS, view[1:]))
        entry |= {"x": x, "y": y, "x_values": xs, "y_values": ys, "model": cfg.model}
        for name in (*MAPS, "gain_sign"):
            entry[name] = [
                [cells[(xv, yv)][name] if (xv, yv) in cells else None for xv in xs] for yv in ys
            ]
        out.append(entry)
    return out


def scatter_correlations(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Spearman correlation, over the scatter's points (map cells x inputs x student losses), of
    the student gain with the teachers' paired difference in MSE to p* on the students' inputs."""
    out = []
    keys = sorted({(r["loss_a"], r["lr_rule"]) for r in records})
    for loss, rule in keys:
        part = [r for r in records if r["loss_a"] == loss and r["lr_rule"] == rule]
        gain = np.array([r["student_gain"] for r in part])
        dist = np.array([r["mse_to_bcpd"]["across_draws"]["mean"] for r in part])
        out.append(
            {
                "loss_a": loss,
                "loss_b": BASELINE,
                "lr_rule": rule,
                "n_points": len(part),
                "spearman": correlation(dist, gain, "spearman"),
                "n_gain_positive": int(sum(r["gain_sign"] > 0 for r in part)),
                "n_gain_negative": int(sum(r["gain_sign"] < 0 for r in part)),
            }
        )
    return out


def summarise(results: pd.DataFrame, cfg: RegimesConfig) -> dict[str, Any]:
    records = cell_records(results, cfg, resamples=cfg.bootstrap)
    lrs = (
        results.groupby([cfg.map.x, cfg.map.y, "draw", "teacher_loss"])["tuned_lr"]
        .first()
        .reset_index()
    )
    return {
        "study": "regimes",
        "preset": cfg.preset,
        "model": cfg.model,
        "map": {"x": cfg.map.x, "y": cfg.map.y},
        "baseline": BASELINE,
        "n_students": int(len(results)),
        "n_draws": int(results.draw.nunique()),
        "cells": records,
        "heatmaps": heatmaps(records, cfg),
        "scatter": scatter_correlations(records),
        "selected_lr": lrs.to_dict(orient="records"),
    }


def write_summary(run_dir: str | Path, results: pd.DataFrame, cfg: RegimesConfig) -> dict:
    summary = summarise(results, cfg)
    io.write_json(Path(run_dir) / "summary.json", summary)
    return summary


def find_map(summary: dict, **view: str) -> dict | None:
    """The heat-map entry matching ``view`` (loss_a, lr_rule, student_inputs, student_loss)."""
    for entry in summary["heatmaps"]:
        if all(entry[k] == v for k, v in view.items()):
            return entry
    return None


def format_summary(summary: dict, *, lr_rule: str = "tuned", loss: str = "mse") -> str:
    """Paired student gain (points) per map cell, inputs and student loss, with its interval."""
    x, y = summary["map"]["x"], summary["map"]["y"]
    lines = [
        f"Paired student gain, {loss} - ce teachers ({lr_rule} lr), points, mean over draws "
        f"[95% interval across draws] (teacher MSE-to-p* ratio; CE teacher train acc):"
    ]
    for rec in summary["cells"]:
        if rec["loss_a"] != loss or rec["lr_rule"] != lr_rule:
            continue
        a = rec["student_acc"]["across_draws"]
        lines.append(
            f"  {x}={rec[x]!s:<6} {y}={rec[y]!s:<6} {rec['student_inputs']:<13} "
            f"{rec['student_loss']:<8} {100 * a['mean']:+6.2f} "
            f"[{100 * a['ci_low']:+.2f}, {100 * a['ci_high']:+.2f}]  "
            f"ratio {rec['distance_ratio']:.2f}  CE train {100 * rec['ce_train_acc']:.1f}%"
        )
    for sc in summary.get("scatter", []):
        if sc["loss_a"] == loss and sc["lr_rule"] == lr_rule:
            lines.append(
                f"Over {sc['n_points']} points: Spearman(gain, teacher MSE-to-p* difference) = "
                f"{sc['spearman']:+.2f}; interval above 0 in {sc['n_gain_positive']}, below 0 in "
                f"{sc['n_gain_negative']}."
            )
    return "\n".join(lines)
