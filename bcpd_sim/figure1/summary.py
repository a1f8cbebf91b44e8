"""From results.parquet to summary.json: correlations, partial rank correlations and paired
comparisons, within each draw of the data and across draws.

Every statistic is computed inside each draw (students of one draw share one sample of the data),
then combined across draws (:func:`bcpd_sim.figure1.stats.combine_draws`): the across-draw numbers
are the answer; the per-draw ones show how much a single draw can mislead.

Correlation groups: each simulated target family, all families pooled; each teacher loss, the
``ce`` + ``mse`` pool, and the pool over all losses, which mostly measures the contrast between
the losses' groups (e.g. under-trained ``mse_mean`` teachers against the rest) and is labelled so.
"""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
import pandas as pd

from .. import io
from .stats import (
    CORRELATIONS,
    combine_draws,
    correlation,
    correlation_rows,
    paired_across_draws,
    paired_difference,
    partial_spearman_rows,
    resample_indices,
)

DISTANCES = ["mse_to_bcpd", "kl_to_bcpd", "ce_to_bcpd", "ce_to_bcpd_clip10"]
PAIR_KEYS = [
    "draw",
    "teacher_seed",
    "teacher_epochs",
    "teacher_n_train",
    "teacher_width",
    "student_seed",
]
PAIRED_METRICS = ("student_acc", "student_acc_last", "teacher_acc", "mse_to_bcpd", "kl_to_bcpd")
SETTING_KEYS = ["teacher_epochs", "teacher_n_train", "teacher_width"]
#: |Spearman(MSE distance, KL distance)| at or above this: the partial correlations cannot
#: separate the two distances (no power).
NO_POWER = 0.95
FAMILIES = {"eta_uniform": "eta-mix", "eta_low": "eta-mix", "etas": "eta-mix"}
MIN_GROUP = 5  # students per draw below which a group gets no correlation


def _draws(results: pd.DataFrame) -> pd.DataFrame:
    return results if "draw" in results else results.assign(draw=0)


def correlation_groups(results: pd.DataFrame) -> list[dict]:
    """The groups whose correlations are reported: name, what kind of pool it is, its rows."""
    results = _draws(results)
    groups = []
    sim = results[results.study == "simulated"]
    if len(sim):
        family = sim.teacher_kind.map(lambda k: FAMILIES.get(k, k.removesuffix("_one")))
        family = family.str.replace("wrong_mass_spread", "wrong_mass", regex=False)
        groups.append({"group": "simulated: all families", "pool": "families pooled", "rows": sim})
        for name in dict.fromkeys(family):
            groups.append(
                {"group": f"simulated: {name}", "pool": "one family", "rows": sim[family == name]}
            )
        if "eta-mix" in set(family) and len(set(family)) > 2:
            groups.append(
                {
                    "group": "simulated: all but eta-mix",
                    "pool": "families pooled",
                    "rows": sim[family != "eta-mix"],
                }
            )
    tr = results[results.study == "trained"]
    if len(tr):
        order = ["ce", "mse", "mse_mean", "mse_logits", "ls"]
        losses = sorted(set(tr.teacher_loss), key=lambda s: (order + [s]).index(s))
        for loss in losses:
            groups.append(
                {
                    "group": f"trained: {loss}",
                    "pool": "one loss",
                    "rows": tr[tr.teacher_loss == loss],
                }
            )
        pair = tr[tr.teacher_loss.isin(["ce", "mse"])]
        if {"ce", "mse"} <= set(losses):
            groups.append({"group": "trained: ce+mse", "pool": "ce and mse pooled", "rows": pair})
        if len(losses) > 2 or set(losses) != {"ce", "mse"} and len(losses) > 1:
            groups.append(
                {
                    "group": "trained: all losses",
                    "pool": "between-group contrast (all losses pooled)",
                    "rows": tr,
                }
            )
        if "mse_to_bcpd_test" in tr and {"ce", "mse"} <= set(losses):
            groups.append(
                {
                    "group": "trained: ce+mse (held-out distance)",
                    "pool": "ce and mse pooled",
                    "rows": pair,
                    "distances": ["mse_to_bcpd_test", "kl_to_bcpd_test"],
                }
            )
    return groups


def _clean(part: pd.DataFrame, cols: list[str]) -> pd.DataFrame:
    return part[cols].replace([np.inf, -np.inf], np.nan).dropna()


def _seed(*parts) -> int:
    """A bootstrap seed that depends only on the statistic's labels (not on the order of work)."""
    return zlib.crc32(repr(parts).encode())


def correlations(results: pd.DataFrame, *, resamples: int = 2000) -> tuple[list, list]:
    """Student accuracy against each teacher distance: per group and draw (bootstrap over
    students), and across draws. Returns (per-draw rows, across-draw rows)."""
    by_draw, across = [], []
    for g in correlation_groups(results):
        dists = [d for d in g.get("distances", DISTANCES) if d in g["rows"]]
        for dist in dists:
            for kind in CORRELATIONS:
                est, reps, sizes = [], [], []
                for draw, part in g["rows"].groupby("draw"):
                    sub = _clean(part, [dist, "student_acc"])
                    if len(sub) < MIN_GROUP:
                        continue
                    x, y = sub[dist].to_numpy(float), sub.student_acc.to_numpy(float)
                    rng = np.random.default_rng(_seed(g["group"], dist, int(draw)))
                    idx = resample_indices(len(x), resamples, rng)
                    rep = correlation_rows(x[idx], y[idx], kind)
                    r = correlation(x, y, kind)
                    lo, hi = (
                        np.nanquantile(rep, [0.025, 0.975])
                        if np.isfinite(rep).any()
                        else (
                            np.nan,
                            np.nan,
                        )
                    )
                    by_draw.append(
                        {
                            "group": g["group"],
                            "pool": g["pool"],
                            "draw": int(draw),
                            "distance": dist,
                            "method": kind,
                            "n": len(x),
                            "r": r,
                            "ci_low": float(lo),
                            "ci_high": float(hi),
                        }
                    )
                    est.append(r)
                    reps.append(rep)
                    sizes.append(len(x))
                if est:
                    comb = combine_draws(
                        np.array(est), np.stack(reps), seed=_seed(g["group"]), bounds=(-1.0, 1.0)
                    )
                    comb.pop("per_draw")
                    across.append(
                        {
                            "group": g["group"],
                            "pool": g["pool"],
                            "distance": dist,
                            "method": kind,
                            "n_per_draw": float(np.mean(sizes)),
                        }
                        | comb
                    )
    return by_draw, across


def partial_correlations(results: pd.DataFrame, *, resamples: int = 2000) -> tuple[list, list]:
    """The direct test of "accuracy follows the MSE distance, not the KL distance": partial
    Spearman correlations of student accuracy with each distance controlling for the other, and
    the rank correlation of the two distances themselves (near 1: the test has no power)."""
    by_draw, across = [], []
    stats_names = {
        "mse_given_kl": "student_acc ~ mse_to_bcpd | kl_to_bcpd",
        "kl_given_mse": "student_acc ~ kl_to_bcpd | mse_to_bcpd",
        "mse_vs_kl": "spearman(mse_to_bcpd, kl_to_bcpd)",
    }
    for g in correlation_groups(results):
        dists = g.get("distances", ["mse_to_bcpd", "kl_to_bcpd"])[:2]
        mse, kl = dists
        per: dict[str, tuple[list, list]] = {k: ([], []) for k in stats_names}
        for draw, part in g["rows"].groupby("draw"):
            sub = _clean(part, [mse, kl, "student_acc"])
            if len(sub) < MIN_GROUP:
                continue
            a, m, k = (sub[c].to_numpy(float) for c in ("student_acc", mse, kl))
            rng = np.random.default_rng(_seed(g["group"], "partial", int(draw)))
            idx = np.vstack([np.arange(len(a)), resample_indices(len(a), resamples, rng)])
            values = {
                "mse_given_kl": partial_spearman_rows(a[idx], m[idx], k[idx]),
                "kl_given_mse": partial_spearman_rows(a[idx], k[idx], m[idx]),
                "mse_vs_kl": correlation_rows(m[idx], k[idx], "spearman"),
            }
            for name, v in values.items():
                lo, hi = (
                    np.nanquantile(v[1:], [0.025, 0.975])
                    if np.isfinite(v[1:]).sum() > 10
                    else (np.nan, np.nan)
                )
                by_draw.append(
                    {
                        "group": g["group"],
                        "pool": g["pool"],
                        "draw": int(draw),
                        "statistic": name,
                        "description": stats_names[name],
                        "n": len(a),
                        "r": float(v[0]),
                        "ci_low": float(lo),
                        "ci_high": float(hi),
                    }
                )
                per[name][0].append(v[0])
                per[name][1].append(v[1:])
        if not per["mse_vs_kl"][0]:
            continue
        agreement = float(np.nanmean(np.abs(per["mse_vs_kl"][0])))
        for name, (est, reps) in per.items():
            comb = combine_draws(
                np.array(est), np.stack(reps), seed=_seed(g["group"], name), bounds=(-1.0, 1.0)
            )
            comb.pop("per_draw")
            across.append(
                {
                    "group": g["group"],
                    "pool": g["pool"],
                    "statistic": name,
                    "description": stats_names[name],
                    "distance_rank_agreement": agreement,
                    "no_power": bool(agreement >= NO_POWER),
                }
                | comb
            )
    return by_draw, across


def matched_pairs(results: pd.DataFrame, *, baseline: str = "ce"):
    """Yield (loss, joined) for each trained teacher loss other than ``baseline``: its rows matched
    to the baseline's on draw, settings and seeds, columns suffixed ``_a`` (loss) and ``_b``
    (baseline)."""
    results = _draws(results)
    trained = results[results.study == "trained"]
    if baseline not in set(trained.teacher_loss):
        return
    base = trained[trained.teacher_loss == baseline].set_index(PAIR_KEYS)
    for loss in sorted(set(trained.teacher_loss) - {baseline}):
        other = trained[trained.teacher_loss == loss].set_index(PAIR_KEYS)
        joined = pd.merge(other, base, left_index=True, right_index=True, suffixes=("_a", "_b"))
        if not joined.empty:
            yield loss, joined.reset_index()


def _setting_label(row) -> str:
    return (
        f"teacher_epochs={row.teacher_epochs}, teacher_n_train={row.teacher_n_train}, "
        f"teacher_width={row.teacher_width}"
    )


def paired_across(results: pd.DataFrame, *, baseline: str = "ce", resamples: int = 2000) -> dict:
    """``{"<loss>_minus_<baseline>": {metric: across-draw stats, "by_setting": {...}}}``: the
    paired difference loss minus baseline, over matched teachers, estimated across draws."""
    out = {}
    for loss, joined in matched_pairs(results, baseline=baseline):
        key = f"{loss}_minus_{baseline}"
        entry: dict = {"loss": loss, "baseline": baseline, "difference": f"{loss} - {baseline}"}
        for col in PAIRED_METRICS:
            if f"{col}_a" not in joined:
                continue
            diff = (joined[f"{col}_a"] - joined[f"{col}_b"]).to_numpy(float)
            entry[col] = paired_across_draws(
                diff, joined.draw.to_numpy(), resamples=resamples, seed=_seed(key, col)
            ) | {
                f"mean_{loss}": float(joined[f"{col}_a"].mean()),
                f"mean_{baseline}": float(joined[f"{col}_b"].mean()),
            }
        settings = joined.groupby(SETTING_KEYS, sort=True)
        if settings.ngroups > 1:
            entry["by_setting"] = {}
            for _, part in settings:
                label = _setting_label(part.iloc[0])
                entry["by_setting"][label] = {
                    col: paired_across_draws(
                        (part[f"{col}_a"] - part[f"{col}_b"]).to_numpy(float),
                        part.draw.to_numpy(),
                        resamples=resamples,
                        seed=_seed(key, label, col),
                    )
                    | {
                        f"mean_{loss}": float(part[f"{col}_a"].mean()),
                        f"mean_{baseline}": float(part[f"{col}_b"].mean()),
                    }
                    for col in ("student_acc", "teacher_acc", "mse_to_bcpd")
                }
        out[key] = entry
    return out


def paired_by_draw(
    results: pd.DataFrame, *, baseline: str = "ce", resamples: int = 2000
) -> list[dict]:
    """Per draw, for each teacher loss vs ``baseline``: differences (loss minus baseline) with
    bootstrap intervals over pairs and Wilcoxon p-values, conditional on that draw of the data."""
    out = []
    for loss, joined in matched_pairs(results, baseline=baseline):
        for draw, part in joined.groupby("draw"):
            entry = {
                "comparison": f"{loss}_minus_{baseline}",
                "loss": loss,
                "baseline": baseline,
                "draw": int(draw),
            }
            for col in ("student_acc", "teacher_acc", "mse_to_bcpd", "kl_to_bcpd"):
                stats = paired_difference(
                    part[f"{col}_a"].to_numpy(), part[f"{col}_b"].to_numpy(), resamples=resamples
                )
                entry[col] = stats | {
                    f"mean_{loss}": float(part[f"{col}_a"].mean()),
                    f"mean_{baseline}": float(part[f"{col}_b"].mean()),
                }
            out.append(entry)
    return out


def group_means(results: pd.DataFrame) -> pd.DataFrame:
    """Mean ± sd (over all draws) of accuracies and distances per teacher loss / target kind."""
    cols = ["student_acc", "teacher_acc", "mse_to_bcpd", "kl_to_bcpd"]
    if "student_acc_last" in results:
        cols.insert(1, "student_acc_last")
    agg = results.groupby(["study", "teacher_loss"])[cols].agg(["mean", "std", "count"])
    agg.columns = [f"{a}_{b}" for a, b in agg.columns]
    return agg.reset_index()


def _records(rows: list[dict] | pd.DataFrame) -> list[dict]:
    return pd.DataFrame(rows).replace({np.nan: None}).to_dict(orient="records")


def _nan_to_none(value):
    if isinstance(value, dict):
        return {k: _nan_to_none(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_nan_to_none(v) for v in value]
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def summarise(results: pd.DataFrame, *, resamples: int = 2000) -> dict:
    results = _draws(results)
    corr, corr_across = correlations(results, resamples=resamples)
    part, part_across = partial_correlations(results, resamples=resamples)
    return _nan_to_none(
        {
            "n_students": int(len(results)),
            "n_draws": int(results.draw.nunique()),
            "sampling_scheme": int(results.sampling_scheme.iloc[0])
            if "sampling_scheme" in results
            else 1,
            "intervals": (
                "across draws: mean of per-draw estimates, 95% Student-t interval over draws "
                "(random-intercept model); bootstrap_ci_*: two-level bootstrap (draws, then "
                "students or pairs). Per draw: 95% bootstrap over students or pairs, "
                "conditional on that draw."
            ),
            "paired_across_draws": paired_across(results, resamples=resamples),
            "correlations_across_draws": _records(corr_across),
            "partial_correlations_across_draws": _records(part_across),
            "paired_by_draw": paired_by_draw(results, resamples=resamples),
            "correlations": _records(corr),
            "partial_correlations": _records(part),
            "groups": _records(group_means(results)),
        }
    )


def write_summary(run_dir: str | Path, results: pd.DataFrame, *, resamples: int = 2000) -> dict:
    summary = summarise(results, resamples=resamples)
    io.write_json(Path(run_dir) / "summary.json", summary)
    io.write_table(
        Path(run_dir) / "correlations.csv", pd.DataFrame(summary["correlations_across_draws"])
    )
    io.write_table(
        Path(run_dir) / "partial_correlations.csv",
        pd.DataFrame(summary["partial_correlations_across_draws"]),
    )
    return summary


def _ci(s: dict, scale: float = 1.0, fmt: str = "+.2f") -> str:
    def f(v):
        return "nan" if v is None else format(scale * v, fmt)

    return f"{f(s['mean'])} [{f(s['ci_low'])}, {f(s['ci_high'])}]"


def format_summary(summary: dict) -> str:
    """Human-readable across-draw results: paired comparisons, correlations, partial correlations."""
    n = summary["n_draws"]
    lines = [
        f"Across {n} draw(s) of the data: mean of per-draw estimates [95% t interval over draws]"
    ]
    for key, p in summary["paired_across_draws"].items():
        s, t = p["student_acc"], p["teacher_acc"]
        lines.append(
            f"Paired {key} ({s['n_pairs']} pairs): student acc {_ci(s, 100)} pts "
            f"(between-draw sd {100 * (s['between_draw_sd'] or 0):.2f}, within-draw sd "
            f"{100 * (s['within_draw_sd'] or 0):.2f}); teacher acc {_ci(t, 100)} pts; per draw: "
            + ", ".join(f"{100 * v:+.2f}" for v in s["per_draw"])
        )
    lines.append(
        "Student accuracy vs teacher distance to p* (all distances and methods: correlations.csv):"
    )
    corr = pd.DataFrame(summary["correlations_across_draws"])
    if not corr.empty:
        shown = corr[corr.distance.isin(["mse_to_bcpd", "kl_to_bcpd", "mse_to_bcpd_test"])]
        for (group, dist), part in shown.groupby(["group", "distance"], sort=False):
            cells = "  ".join(f"{r.method} {_ci(r._asdict())}" for r in part.itertuples())
            lines.append(f"  {group:<36} {dist:<18} {cells}")
    lines.append("Partial Spearman (student accuracy; the distance given the other one):")
    for r in summary["partial_correlations_across_draws"]:
        if r["statistic"] == "mse_vs_kl":
            continue
        flag = "  NO POWER (the two distances rank students alike)" if r["no_power"] else ""
        lines.append(
            f"  {r['group']:<36} {r['description']:<40} {_ci(r)}"
            f"  |rho(MSE, KL)| = {r['distance_rank_agreement']:.2f}{flag}"
        )
    return "\n".join(lines)
