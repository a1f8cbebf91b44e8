"""Run the Theorem-1 check and write its table, summary and figure into a folder."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from .. import io
from ..errors import ConfigError
from ..mixtures import list_mixtures, make_mixture
from ..provenance import environment
from ..validation import check_choice, check_int
from .plot import plot_theorem1
from .verify import Theorem1Check, verify_theorem1

#: Seeds reach scikit-learn's ``random_state``, which takes [0, 2**32 - 1].
MAX_SEED = 2**32 - 1
#: float64 arrays alive per test point, in units of K (p*, one predictor's q, the decomposition's
#: temporaries) on top of x itself: a deliberately generous count.
ARRAYS_PER_POINT = 8


def memory_estimate(n: int, train_n: int, dim: int, num_classes: int) -> int:
    """Bytes a Theorem-1 check of n test points needs at its peak (x, p*, q and temporaries)."""
    return 8 * (n + train_n) * (dim + ARRAYS_PER_POINT * num_classes)


def _available_memory() -> int:
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        return 8 * 2**30


def check_settings(*, mixture: str, mixture_seed: int, n: int, seed: int, train_n: int) -> None:
    """Refuse settings the check would fail on, before any work (messages name the flag)."""
    check_choice("mixture (--mixture)", mixture, list_mixtures())
    for name, value in (("mixture_seed (--mixture-seed)", mixture_seed), ("seed (--seed)", seed)):
        value = check_int(name, value, minimum=0)
        if value > MAX_SEED:
            raise ConfigError(f"{name} must be in [0, {MAX_SEED}], got {value}")
    n = check_int("n (--n)", n, minimum=2)
    train_n = check_int("train_n (--train-n)", train_n, minimum=10)
    dist = make_mixture(mixture, seed=0)
    need = memory_estimate(n, train_n, dist.dim, dist.num_classes)
    have = _available_memory()
    if need > 0.5 * have:
        per_point = memory_estimate(1, 0, dist.dim, dist.num_classes)
        largest = int(0.5 * have // per_point) - train_n
        raise ConfigError(
            f"n (--n) = {n:,} with train_n = {train_n:,} needs about {need / 2**30:,.1f} GiB of "
            f"memory ({per_point} bytes per point on the '{mixture}' mixture); this machine has "
            f"{have / 2**30:,.1f} GiB, so use n <= {max(largest, 2):,}"
        )


def run_theorem1(
    out: str | Path,
    *,
    mixture: str = "paper",
    mixture_seed: int = 0,
    n: int = 100_000,
    seed: int = 1,
    train_n: int = 5_000,
) -> Theorem1Check:
    """Check Theorem 1 on a named mixture; write theorem1.csv, rank_agreement.csv,
    summary.json and theorem1.png/.pdf into ``out``."""
    check_settings(mixture=mixture, mixture_seed=mixture_seed, n=n, seed=seed, train_n=train_n)
    dist = make_mixture(mixture, seed=mixture_seed)
    result = verify_theorem1(dist, n=n, seed=seed, train_n=train_n)
    out = Path(out)
    config = {
        "mixture": mixture,
        "mixture_seed": mixture_seed,
        "n": n,
        "seed": seed,
        "train_n": train_n,
    }
    table = result.table.assign(**{k: v for k, v in config.items()})
    io.write_table(out / "theorem1.csv", table)
    io.write_table(out / "rank_agreement.csv", result.rank_agreement)
    honest = result.honest()
    io.write_json(
        out / "summary.json",
        {
            "config": config,
            "max_abs_residual_z_honest": float(honest.residual_z.abs().max()),
            "control_residual_z": result.table[result.table.peeks_at_label]
            .set_index("loss")
            .residual_z.to_dict(),
            "rank_agreement": result.rank_agreement.to_dict(orient="records"),
            "environment": environment(),
        },
    )
    fig = plot_theorem1(
        table, title=f"Theorem 1 on the '{mixture}' mixture, n = {n:,} test points (seed {seed})"
    )
    for suffix in (".png", ".pdf"):
        io.save_figure(fig, out / f"theorem1{suffix}", dpi=150)
    plt.close(fig)
    return result


def format_table(result: Theorem1Check) -> str:
    """The table as aligned text for the terminal."""
    cols = [
        "predictor",
        "loss",
        "empirical_risk",
        "risk_se",
        "predicted_risk",
        "distance",
        "model_free",
        "residual_z",
    ]
    with pd.option_context(
        "display.width", 200, "display.max_columns", 20, "display.max_colwidth", 40
    ):
        text = result.table[cols].to_string(index=False, float_format=lambda v: f"{v:.4f}")
        ranks = result.rank_agreement.to_string(index=False, float_format=lambda v: f"{v:.3f}")
    return f"{text}\n\nRank agreement of risk with distance across honest predictors:\n{ranks}"
