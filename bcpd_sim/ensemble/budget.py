"""What a batched ensemble run will cost, estimated before anything is allocated.

:func:`memory_parts` lists the large allocations of :func:`bcpd_sim.ensemble.train` (stacked
parameters with their optimiser state and best-checkpoint copies, the batch activations, the
per-member data orders, soft targets and the data itself), each tagged with the setting that
drives it, for :func:`bcpd_sim.validation.check_memory`. :func:`training_flops` counts the
multiply-adds of forward and backward passes for :func:`bcpd_sim.validation.check_work`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from . import mlp

#: The setting each part is attributed to, when the caller does not name its own keys.
DEFAULT_KEYS = {
    "members": "members",
    "width": "width",
    "batch_size": "batch_size",
    "n_train": "x",
    "targets": "targets",
}


def parameter_count(input_dim: int, width: Sequence[int], num_classes: int) -> int:
    """Weights and biases of one MLP ``input_dim -> width... -> num_classes``."""
    sizes = mlp.layer_sizes(input_dim, width, num_classes)
    return sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))


def memory_parts(
    *,
    members: int,
    width: Sequence[int],
    input_dim: int,
    num_classes: int,
    batch_size: int,
    n_train: int,
    n_val: int = 0,
    soft_targets: bool = False,
    dtype_bytes: int = 4,
    keys: Mapping[str, str] | None = None,
) -> list[tuple[str, str, float]]:
    """``(key, what, bytes)`` for the large allocations of one training job.

    ``width`` is the widest member's hidden widths. Estimates are upper-bound-ish (a few copies
    of each stacked tensor), not exact: they exist to refuse what cannot fit, not to plan.
    """
    k = {**DEFAULT_KEYS, **dict(keys or {})}
    e, b, kk, d = float(members), float(batch_size), float(num_classes), float(input_dim)
    params = float(parameter_count(input_dim, width, num_classes))
    units = float(sum(width)) + kk + d
    steps = -(-n_train // max(1, batch_size))
    parts = [
        # parameters, best-checkpoint copy, optimiser state (<= 2) and gradients
        (
            k["width"],
            f"{members:,} members' parameters and optimiser state",
            5 * e * params * dtype_bytes,
        ),
        # forward activations, their gradients and the batch gather, per member
        (k["batch_size"], "batch activations and gradients", 3 * e * b * units * dtype_bytes),
        # sort keys, order and padded index of every member's epoch
        (k["members"], "per-member data orders", 3 * 8 * e * float(steps) * b),
        (k["n_train"], "training and validation inputs", (n_train + n_val) * d * (8 + dtype_bytes)),
    ]
    if soft_targets:
        parts.append(
            (
                k["targets"],
                "per-member soft targets",
                e * (n_train + n_val) * kk * (8 + dtype_bytes),
            )
        )
    return parts


def training_flops(
    *, members: int, width: Sequence[int], input_dim: int, num_classes: int, samples: int
) -> float:
    """Floating-point operations of training ``members`` MLPs on ``samples`` examples each
    (forward + backward: about 6 per parameter per example)."""
    return 6.0 * members * parameter_count(input_dim, width, num_classes) * float(samples)
