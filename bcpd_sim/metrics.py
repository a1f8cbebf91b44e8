"""Per-member metrics of predicted class probabilities against labels and the exact BCPD.

Every function takes predicted probabilities ``q`` of shape ``(..., n, K)`` (numpy or torch; one
leading axis per ensemble member is typical) and returns one value per leading index, computed in
float64. ``p_star`` is ``(n, K)`` (shared by all members) or broadcastable to ``q``; ``y`` is
``(n,)`` integer labels. Logs of ``q`` are taken after clipping at the smallest positive float64,
so a probability that underflowed to zero gives a large finite penalty instead of ``inf``.

Every public metric first checks that ``q`` (and ``p_star``) hold probability rows (finite,
non-negative, summing to 1) in one vectorised pass and raises a ConfigError naming the first bad
row; a caller that has already checked passes ``validate=False``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import xlogy

from .errors import ConfigError
from .simplex import onehot
from .validation import check_choice, check_int

_TINY = np.finfo(np.float64).tiny


#: Row-sum tolerance for torch dtypes numpy lacks: sqrt of their machine epsilon.
_TORCH_LOW_PRECISION = {"torch.bfloat16": float(np.sqrt(2.0**-7)), "torch.float16": 2.0**-5}


def _numpy(a: Any) -> tuple[np.ndarray, float | None]:
    """The array as numpy, and the row-sum tolerance its original dtype calls for (or None)."""
    atol = None
    if hasattr(a, "detach"):
        a = a.detach().cpu()
        atol = _TORCH_LOW_PRECISION.get(str(a.dtype))
        if atol is not None:
            a = a.float()
        a = a.numpy()
    return np.asarray(a), atol


def check_probability_rows(name: str, a: np.ndarray, *, atol: float | None = None) -> None:
    """Raise a ConfigError unless every row of ``a`` is finite, >= 0 and sums to 1.

    One vectorised pass; ``atol`` (on the row sums) defaults to 1e-6 for float64 input and to the
    square root of the machine epsilon for lower precisions (3.5e-4 for float32).
    """
    if atol is None:
        kind = a.dtype if np.issubdtype(a.dtype, np.floating) else np.dtype(np.float64)
        atol = max(1e-6, float(np.sqrt(np.finfo(kind).eps)))
    if a.size == 0:
        return
    sums = a.sum(axis=-1)
    finite = np.isfinite(sums)  # NaN or inf anywhere in a row makes its sum non-finite
    if finite.all() and a.min() >= 0 and np.abs(sums - 1.0).max() <= atol:
        return
    rows = a.reshape(-1, a.shape[-1])
    flat = sums.reshape(-1)
    bad_row = int(np.argmax(~np.isfinite(flat) | (rows < 0).any(-1) | (np.abs(flat - 1) > atol)))
    index = np.unravel_index(bad_row, a.shape[:-1])
    row = rows[bad_row]
    if not np.isfinite(row).all():
        problem = "has NaN or inf entries"
    elif (row < 0).any():
        problem = f"has a negative entry {row.min():.3g}"
    else:
        problem = f"sums to {flat[bad_row]:.6g}"
    where = f"{name}[{', '.join(map(str, index))}]"
    raise ConfigError(
        f"{where} {problem}; {name} must hold probabilities (finite, >= 0, each row summing to 1 "
        f"within {atol:.1g})"
    )


def _as_q(q: Any, validate: bool = True) -> np.ndarray:
    q, atol = _numpy(q)
    if q.ndim < 2:
        raise ConfigError(f"q must have shape (..., n, K), got {q.shape}")
    if validate:
        check_probability_rows("q", q, atol=atol)
    return np.asarray(q, dtype=np.float64)


def _as_p(p: Any, q: np.ndarray, name: str = "p_star", validate: bool = True) -> np.ndarray:
    p, atol = _numpy(p)
    try:
        np.broadcast_shapes(p.shape, q.shape)
    except ValueError:
        raise ConfigError(f"{name} shape {p.shape} does not match q shape {q.shape}") from None
    if p.shape[-1] != q.shape[-1] or (p.ndim >= 2 and p.shape[-2] != q.shape[-2]):
        raise ConfigError(f"{name} shape {p.shape} does not match q shape {q.shape}")
    if validate:
        check_probability_rows(name, p, atol=atol)
    return np.asarray(p, dtype=np.float64)


def _as_y(y: Any, q: np.ndarray) -> np.ndarray:
    if hasattr(y, "detach"):
        y = y.detach().cpu().numpy()
    y = np.asarray(y)
    if y.ndim != 1 or y.shape[0] != q.shape[-2]:
        raise ConfigError(f"y must have shape ({q.shape[-2]},), got {y.shape}")
    if not np.issubdtype(y.dtype, np.integer):
        raise ConfigError(f"y must hold integer class labels, got dtype {y.dtype}")
    if y.size and (y.min() < 0 or y.max() >= q.shape[-1]):
        bad = int(np.flatnonzero((y < 0) | (y >= q.shape[-1]))[0])
        raise ConfigError(f"y must lie in [0, {q.shape[-1] - 1}], got y[{bad}] = {y[bad]}")
    return y.astype(np.int64)


def _log(q: np.ndarray) -> np.ndarray:
    return np.log(np.maximum(q, _TINY))


def accuracy(q: Any, y: Any, *, validate: bool = True) -> np.ndarray:
    """Fraction of samples whose arg-max class equals the label (ties go to the lowest index)."""
    q = _as_q(q, validate)
    y = _as_y(y, q)
    return (np.argmax(q, axis=-1) == y).mean(axis=-1)


def mse_to_bcpd(q: Any, p_star: Any, *, validate: bool = True) -> np.ndarray:
    """Per-sample mean of the squared L2 distance ``||q(x) - p*(x)||^2`` (Theorem 1's quantity)."""
    q = _as_q(q, validate)
    p = _as_p(p_star, q, validate=validate)
    return ((q - p) ** 2).sum(axis=-1).mean(axis=-1)


def frobenius_to_bcpd(q: Any, p_star: Any, *, validate: bool = True) -> np.ndarray:
    """The paper code's "MSE": the unnormalised Frobenius norm ``sqrt(sum_{n,k} (q - p*)^2)``.

    It grows like ``sqrt(n)``; use :func:`mse_to_bcpd` for a per-sample quantity.
    """
    q = _as_q(q, validate)
    p = _as_p(p_star, q, validate=validate)
    return np.sqrt(((q - p) ** 2).sum(axis=(-2, -1)))


def kl_to_bcpd(q: Any, p_star: Any, *, validate: bool = True) -> np.ndarray:
    """Per-sample mean of ``KL(p*(x) || q(x)) = sum_k p*_k log(p*_k / q_k)`` (0 log 0 = 0)."""
    q = _as_q(q, validate)
    p = _as_p(p_star, q, validate=validate)
    return (xlogy(p, p) - p * _log(q)).sum(axis=-1).mean(axis=-1)


def ce_to_bcpd(q: Any, p_star: Any, *, validate: bool = True) -> np.ndarray:
    """Per-sample mean of the cross-entropy ``-sum_k p*_k log q_k`` (= KL + entropy of p*)."""
    q = _as_q(q, validate)
    p = _as_p(p_star, q, validate=validate)
    return (-(p * _log(q)).sum(axis=-1)).mean(axis=-1)


def ce_to_bcpd_clip10(q: Any, p_star: Any, *, validate: bool = True) -> np.ndarray:
    """The paper code's CE distance: per-sample mean of ``-sum_k p*_k max(log q_k, -10)``.

    Clipping the log at -10 caps each point's penalty at 10 nats, so targets with (near-)zero mass
    where p* has mass look closer than they are; :func:`ce_to_bcpd` is the unclipped quantity.
    """
    q = _as_q(q, validate)
    p = _as_p(p_star, q, validate=validate)
    return (-(p * np.maximum(_log(q), -10.0)).sum(axis=-1)).mean(axis=-1)


def nll(q: Any, y: Any, *, validate: bool = True) -> np.ndarray:
    """Mean negative log-likelihood of the labels, ``-mean log q_y``."""
    q = _as_q(q, validate)
    y = _as_y(y, q)
    qy = np.take_along_axis(q, np.broadcast_to(y[:, None], q.shape[:-1] + (1,)), axis=-1)[..., 0]
    return -_log(qy).mean(axis=-1)


def brier(q: Any, y: Any, *, validate: bool = True) -> np.ndarray:
    """Brier score: per-sample mean of ``||q(x) - e_y||^2`` (summed over classes)."""
    q = _as_q(q, validate)
    y = _as_y(y, q)
    return ((q - onehot(y, q.shape[-1])) ** 2).sum(axis=-1).mean(axis=-1)


def ece(q: Any, y: Any, *, num_bins: int = 15, validate: bool = True) -> np.ndarray:
    """Expected calibration error of the top-label confidence with equal-width bins.

    Bin ``b`` (0-based) holds confidences in ``(b/B, (b+1)/B]`` (the first bin also holds 0);
    ECE = sum_b (n_b / n) |accuracy_b - mean confidence_b|.
    """
    num_bins = check_int("num_bins", num_bins, minimum=1)
    q = _as_q(q, validate)
    y = _as_y(y, q)
    lead = q.shape[:-2]
    n = q.shape[-2]
    qf = q.reshape((-1, n, q.shape[-1]))
    m = qf.shape[0]
    conf = qf.max(axis=-1)
    correct = (qf.argmax(axis=-1) == y).astype(np.float64)
    b = np.clip(np.ceil(conf * num_bins).astype(np.int64) - 1, 0, num_bins - 1)
    flat = (np.arange(m)[:, None] * num_bins + b).ravel()
    size = m * num_bins
    sconf = np.bincount(flat, weights=conf.ravel(), minlength=size).reshape(m, num_bins)
    sacc = np.bincount(flat, weights=correct.ravel(), minlength=size).reshape(m, num_bins)
    out = np.abs(sacc - sconf).sum(axis=-1) / max(n, 1)
    return out.reshape(lead)


METRICS_WITH_LABELS = ("accuracy", "nll", "brier", "ece")
METRICS_WITH_BCPD = ("mse_to_bcpd", "kl_to_bcpd", "ce_to_bcpd", "frobenius_to_bcpd")
_FUNCS = {
    "accuracy": accuracy,
    "nll": nll,
    "brier": brier,
    "ece": ece,
    "mse_to_bcpd": mse_to_bcpd,
    "kl_to_bcpd": kl_to_bcpd,
    "ce_to_bcpd": ce_to_bcpd,
    "frobenius_to_bcpd": frobenius_to_bcpd,
}


def evaluate(
    q: Any, *, y: Any = None, p_star: Any = None, metrics: Sequence[str] | None = None
) -> pd.DataFrame:
    """All metrics that the given references allow, one row per member (``q`` is ``(M, n, K)``).

    Label metrics need ``y``; BCPD metrics need ``p_star``. ``metrics`` picks a subset by name.
    """
    q = _as_q(q)  # validated once here; the metrics below skip their own check
    if q.ndim == 2:
        q = q[None]
    if q.ndim != 3:
        raise ConfigError(f"q must have shape (members, n, K), got {q.shape}")
    names = list(metrics) if metrics is not None else []
    if metrics is None:
        if y is not None:
            names += list(METRICS_WITH_LABELS)
        if p_star is not None:
            names += list(METRICS_WITH_BCPD)
    if p_star is not None and any(n in METRICS_WITH_BCPD for n in names):
        p_star = _as_p(p_star, q)
    cols: dict[str, np.ndarray] = {"member": np.arange(q.shape[0])}
    for name in names:
        check_choice("metric", name, _FUNCS)
        ref = y if name in METRICS_WITH_LABELS else p_star
        if ref is None:
            need = "y" if name in METRICS_WITH_LABELS else "p_star"
            raise ConfigError(f"metric {name!r} needs {need}")
        cols[name] = _FUNCS[name](q, ref, validate=False)
    return pd.DataFrame(cols)
