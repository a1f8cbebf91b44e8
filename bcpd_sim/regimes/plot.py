"""The regime map: heat maps of the paired student gain, the teachers' distance ratio and the CE
teacher's training accuracy over the two mapped axes; and the gain against the difference in
teacher distance to p* on the students' inputs."""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import LogNorm, Normalize, TwoSlopeNorm
from matplotlib.ticker import FormatStrFormatter

from .summary import find_map

INPUT_LABELS = {"teacher_train": "teacher's training inputs", "fresh": "fresh inputs"}
LOSS_LABELS = {"soft_t1": "KL at T=1", "kd_t4": "KD 0.1 CE + 0.9 KL, T=4"}
#: What an axis means, where it is not its own name (the CNN variant reads width and depth as a
#: CIFAR ResNet's stage-1 channels and depth).
AXIS_LABELS = {
    "mlp": {
        "width": "teacher width (hidden units)",
        "depth": "teacher hidden layers",
        "n_train": "training points",
        "epochs": "teacher epochs",
    },
    "cnn": {
        "width": "teacher ResNet stage-1 channels",
        "depth": "teacher ResNet depth",
        "n_train": "training images",
        "epochs": "teacher epochs",
    },
}


def _grid(entry: dict, name: str, scale: float = 1.0) -> np.ndarray:
    return np.array(
        [[np.nan if v is None else scale * v for v in row] for row in entry[name]], dtype=float
    )


def _axes_ticks(ax, entry: dict) -> None:
    ax.set_xticks(range(len(entry["x_values"])), [str(v) for v in entry["x_values"]])
    ax.set_yticks(range(len(entry["y_values"])), [str(v) for v in entry["y_values"]])
    labels = AXIS_LABELS.get(entry.get("model", "mlp"), {})
    ax.set_xlabel(labels.get(entry["x"], entry["x"]))
    ax.set_ylabel(labels.get(entry["y"], entry["y"]))


def _heat(ax, entry: dict, values: np.ndarray, norm, cmap: str, fmt: str, signs=None) -> Any:
    image = ax.imshow(values, origin="lower", cmap=cmap, norm=norm, aspect="auto")
    for (i, j), v in np.ndenumerate(values):
        if not np.isfinite(v):
            continue
        mark = ""
        if signs is not None and signs[i, j]:
            mark = " +" if signs[i, j] > 0 else " −"
        ax.text(
            j,
            i,
            format(v, fmt) + mark,
            ha="center",
            va="center",
            fontsize=8,
            bbox={"facecolor": "white", "alpha": 0.6, "lw": 0, "pad": 1},
        )
        if mark:
            ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, lw=2.0, edgecolor="k"))
    _axes_ticks(ax, entry)
    return image


def plot_regimes(summary: dict, *, loss: str = "mse", lr_rule: str = "tuned", title: str = ""):
    """Top row: the paired student gain per student loss and input set. Bottom row: the teachers'
    distance ratio per input set, the CE teacher's training accuracy, and the scatter."""
    maps = [e for e in summary["heatmaps"] if e["loss_a"] == loss and e["lr_rule"] == lr_rule]
    student_losses = sorted({e["student_loss"] for e in maps}, key=list(LOSS_LABELS).index)
    inputs = [i for i in INPUT_LABELS if any(e["student_inputs"] == i for e in maps)]
    views = [(sl, inp) for sl in student_losses for inp in inputs]
    ncols = max(len(views), len(inputs) + 2, 1)
    fig, axes = plt.subplots(2, ncols, figsize=(4.6 * ncols, 8.2), squeeze=False)
    gains = [_grid(e, "student_gain", 100) for e in maps]
    bound = max(0.25, float(np.nanmax(np.abs(gains)))) if gains else 1.0
    for ax, (sl, inp) in zip(axes[0], views):
        entry = find_map(summary, loss_a=loss, lr_rule=lr_rule, student_inputs=inp, student_loss=sl)
        signs = np.array([[v or 0 for v in row] for row in entry["gain_sign"]])
        values = _grid(entry, "student_gain", 100)
        im = _heat(ax, entry, values, TwoSlopeNorm(0.0, -bound, bound), "RdBu", "+.2f", signs)
        ax.set_title(
            f"student gain, {loss} − ce teacher (points)\n{LOSS_LABELS[sl]}, {INPUT_LABELS[inp]}",
            fontsize=9,
        )
        fig.colorbar(im, ax=ax, shrink=0.8)
    for ax in axes[0, len(views) :]:
        ax.axis("off")
    bottom = list(axes[1])
    ratios = [_grid(e, "distance_ratio") for e in maps]
    rmax = max(0.1, float(np.nanmax(np.abs(np.log(ratios))))) if ratios else 1.0
    for ax, inp in zip(bottom, inputs):
        entry = next(e for e in maps if e["student_inputs"] == inp)
        im = _heat(
            ax,
            entry,
            _grid(entry, "distance_ratio"),
            LogNorm(np.exp(-rmax), np.exp(rmax)),
            "PuOr_r",
            ".2f",
        )
        ax.set_title(f"teacher MSE to p*, {loss} / ce\non {INPUT_LABELS[inp]}", fontsize=9)
        bar = fig.colorbar(im, ax=ax, shrink=0.8)
        bar.ax.yaxis.set_major_formatter(FormatStrFormatter("%.2g"))
        bar.ax.yaxis.set_minor_formatter(FormatStrFormatter("%.2g"))
    if maps:
        ax = bottom[len(inputs)]
        acc = _grid(maps[0], "ce_train_acc", 100)
        low = min(np.nanmin(acc), 99.0) if np.isfinite(acc).any() else 0.0
        norm = Normalize(vmin=low, vmax=100.0)  # 100% (memorised) is always the top colour
        im = _heat(ax, maps[0], acc, norm, "viridis", ".1f")
        ax.set_title("CE teacher training accuracy (%)", fontsize=9)
        fig.colorbar(im, ax=ax, shrink=0.8)
        _scatter(bottom[len(inputs) + 1], summary, loss=loss, lr_rule=lr_rule)
    for ax in bottom[len(inputs) + 2 :]:
        ax.axis("off")
    fig.suptitle(title + "\n" + NOTE.format(**summary), fontsize=10)
    fig.tight_layout()
    return fig


NOTE = (
    "Gain: mean over {n_draws} draws of the paired student-accuracy difference (same draw, teacher "
    "replicate, student seed). Boxed +/−: its 95% interval across draws excludes 0."
)


def _scatter(ax, summary: dict, *, loss: str, lr_rule: str) -> None:
    """Gain against the teachers' difference in MSE to p* on the students' inputs, per cell."""
    markers = {"teacher_train": "o", "fresh": "s"}
    colors = {"soft_t1": "#1b9e77", "kd_t4": "#d95f02"}
    for rec in summary["cells"]:
        if rec["loss_a"] != loss or rec["lr_rule"] != lr_rule:
            continue
        a = rec["student_acc"]["across_draws"]
        d = rec["mse_to_bcpd"]["across_draws"]["mean"]
        ax.errorbar(
            d,
            100 * a["mean"],
            yerr=None
            if not np.isfinite(a["ci_low"])
            else [[100 * (a["mean"] - a["ci_low"])], [100 * (a["ci_high"] - a["mean"])]],
            fmt=markers[rec["student_inputs"]],
            color=colors.get(rec["student_loss"], "k"),
            ms=5,
            elinewidth=0.6,
            alpha=0.8,
        )
    ax.axhline(0, color="grey", lw=0.8)
    ax.axvline(0, color="grey", lw=0.8)
    ax.set_xlabel(f"teacher MSE to p* on the students' inputs, {loss} − ce")
    ax.set_ylabel(f"student gain {loss} − ce (points)")
    ax.set_title("one point per cell, inputs and student loss", fontsize=9)
    handles = [
        plt.Line2D([], [], marker=markers[i], ls="", color="k", label=INPUT_LABELS[i])
        for i in markers
    ] + [
        plt.Line2D([], [], marker="o", ls="", color=c, label=LOSS_LABELS[s])
        for s, c in colors.items()
    ]
    ax.legend(handles=handles, fontsize=7, loc="best")
