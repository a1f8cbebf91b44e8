"""Small argument checks used at every public boundary. Each raises ConfigError naming the field.

Besides type and range checks, :func:`check_memory` and :func:`check_work` refuse a job whose
estimated memory or amount of work cannot fit this machine, before anything is allocated.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from .errors import ConfigError

#: Seeds must fit numpy's 32-bit seed range (``np.random.RandomState`` / ``np.random.seed``),
#: so every derived seed also fits the int64 columns of result tables.
SEED_MAX = 2**32 - 1


def check_int(
    name: str, value: Any, *, minimum: int | None = None, maximum: int | None = None
) -> int:
    """Return ``value`` as an int, checking it is integral and within [minimum, maximum]."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ConfigError(f"{name} must be an integer, got {value!r}")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ConfigError(f"{name} must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ConfigError(f"{name} must be <= {maximum:,}, got {value:,}")
    return value


def check_seed(name: str, value: Any) -> int:
    """Return ``value`` as a seed in numpy's range [0, 2**32 - 1]."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ConfigError(f"{name} must be an integer seed, got {value!r}")
    if not 0 <= int(value) <= SEED_MAX:
        raise ConfigError(
            f"{name} must be a seed in numpy's range [0, 2**32 - 1 = {SEED_MAX}], got {value}"
        )
    return int(value)


def check_each(
    name: str,
    values: Sequence[Any],
    check: Callable[..., Any],
    *,
    allow_empty: bool = True,
    **options: Any,
) -> list[Any]:
    """Apply ``check(f"{name}[i]", value, **options)`` to every entry; optionally refuse empty."""
    if not allow_empty and len(values) == 0:
        raise ConfigError(f"{name} must not be empty")
    return [check(f"{name}[{i}]", v, **options) for i, v in enumerate(values)]


def check_unique(name: str, values: Sequence[Any]) -> None:
    """Refuse a list that repeats an entry, naming the repeated one."""
    seen = set()
    for v in values:
        if v in seen:
            raise ConfigError(f"{name} must not repeat an entry, got {v!r} twice")
        seen.add(v)


def check_positive(name: str, value: Any, *, allow_zero: bool = False) -> float:
    """Return ``value`` as a finite float that is > 0 (or >= 0 with ``allow_zero``)."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a number, got {value!r}") from None
    if not np.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        allowed = ">= 0" if allow_zero else "> 0"
        raise ConfigError(f"{name} must be finite and {allowed}, got {value}")
    return value


def check_fraction(
    name: str,
    value: Any,
    *,
    low: float = 0.0,
    high: float = 1.0,
    open_low: bool = False,
    open_high: bool = False,
) -> float:
    """Return ``value`` as a float in [low, high]; ``open_low`` / ``open_high`` exclude an end."""
    if isinstance(value, bool):
        raise ConfigError(f"{name} must be a number, got {value!r}")
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a number, got {value!r}") from None
    above = low < value if open_low else low <= value
    below = value < high if open_high else value <= high
    if not (above and below):
        interval = f"{'(' if open_low else '['}{low}, {high}{')' if open_high else ']'}"
        raise ConfigError(f"{name} must lie in {interval}, got {value}")
    return value


def check_choice(name: str, value: Any, allowed: Iterable[str]) -> str:
    """Return ``value`` if it is one of ``allowed``; otherwise list the valid names."""
    allowed = list(allowed)
    if value not in allowed:
        raise ConfigError(f"unknown {name} {value!r}; valid: {', '.join(map(str, allowed))}")
    return value


def check_finite_array(name: str, value: Any, *, ndim: int | None = None) -> np.ndarray:
    """Return ``value`` as a float64 array, checking its rank and that every entry is finite."""
    arr = np.asarray(value, dtype=np.float64)
    if ndim is not None and arr.ndim != ndim:
        raise ConfigError(f"{name} must be a {ndim}-d array, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ConfigError(f"{name} must contain only finite values (found NaN or inf)")
    return arr


def check_probabilities(name: str, value: Any, *, axis: int = -1, atol: float = 1e-6) -> np.ndarray:
    """Return ``value`` as float64, checking entries are >= 0 and sum to 1 along ``axis``."""
    arr = check_finite_array(name, value)
    if np.any(arr < 0):
        raise ConfigError(f"{name} must be non-negative")
    sums = arr.sum(axis=axis)
    if not np.allclose(sums, 1.0, atol=atol):
        worst = float(np.max(np.abs(sums - 1.0)))
        raise ConfigError(f"{name} must sum to 1 along axis {axis} (worst deviation {worst:.3g})")
    return arr


# --------------------------------------------------------------------------- resource estimates
#: Refuse runs estimated to need more floating-point operations than this (about a day of a
#: GPU at 1e12 useful FLOP/s): far beyond every preset, but finite.
MAX_FLOPS = 1e17


def format_bytes(n: float) -> str:
    """``1.5e9 -> '1.5 GB'`` (decimal units)."""
    for unit in ("B", "kB", "MB", "GB", "TB", "PB", "EB"):
        if abs(n) < 1000 or unit == "EB":
            return f"{n:.3g} {unit}"
        n /= 1000
    return f"{n:.3g} EB"  # pragma: no cover


def memory_limit() -> int:
    """Bytes a run may plan to use: ``BCPD_SIM_MEMORY_LIMIT`` (bytes) if set, else this
    machine's physical memory."""
    env = os.environ.get("BCPD_SIM_MEMORY_LIMIT")
    if env:
        return int(float(env))
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        return 16 * 10**9


def check_memory(parts: Iterable[tuple[str, str, float]], *, limit: int | None = None) -> None:
    """Refuse a job whose estimated memory exceeds ``limit`` (default :func:`memory_limit`).

    ``parts`` are ``(key, what, bytes)``: the config key that drives each allocation, a short
    description and its estimated size. The error names the largest part's key and the estimate.
    """
    parts = list(parts)
    limit = memory_limit() if limit is None else limit
    total = sum(b for _, _, b in parts)
    if total <= limit:
        return
    key, what, size = max(parts, key=lambda p: p[2])
    raise ConfigError(
        f"{key} is too large: the run needs about {format_bytes(total)} of memory "
        f"({what}: {format_bytes(size)}), more than the {format_bytes(limit)} available"
    )


def check_work(key: str, flops: float, *, what: str, maximum: float = MAX_FLOPS) -> None:
    """Refuse a job estimated at more than ``maximum`` floating-point operations."""
    if flops > maximum:
        raise ConfigError(
            f"{key} is too large: {what} takes about {flops:.2g} floating-point operations, "
            f"more than the {maximum:.0e} allowed (about a GPU-day)"
        )
