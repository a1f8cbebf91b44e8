"""A training job, validated once: :func:`make_plan` checks every input of
:func:`bcpd_sim.ensemble.train` before any work and returns a frozen :class:`TrainPlan`.

The plan holds the checked arrays (float64 numpy, still on the host), the resolved members, the
loss, optimiser and schedule with their options filled in, the selection rule, device and dtype,
and refuses a job whose estimated memory cannot fit (:mod:`.budget`).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from ..device import resolve_device
from ..errors import ConfigError
from ..validation import (
    check_choice,
    check_finite_array,
    check_int,
    check_memory,
    check_positive,
)
from .budget import memory_parts
from .losses import LOSSES, Loss, make_loss
from .optim import make_optimizer_options, make_schedule_options

SELECTION_RULES = ("best_val_acc", "best_val_loss", "last")
CAPTURE_MODES = ("auto", "eager", "cuda_graph")
PAPER_WIDTH = (128, 128)
DTYPES = {"float32": torch.float32, "float64": torch.float64}
#: Member seeds seed torch generators and 64-bit hashes: any non-negative int64.
SEED_MAX = 2**63 - 1


@dataclass(frozen=True)
class MemberSpec:
    """One member's settings; ``None`` fields take the defaults given to :func:`train`."""

    seed: int
    lr: float | None = None
    epochs: int | None = None
    width: tuple[int, ...] | None = None
    n_train: int | None = None


def member_grid(seeds: Sequence[int] | int, **settings: Sequence[Any]) -> list[MemberSpec]:
    """Every combination of the listed settings, for each seed (a compact member spec).

    ``member_grid(4, lr=[1e-3, 1e-2], n_train=[500, 5000])`` gives 16 members: seeds 0..3 for
    each (lr, n_train) pair, ordered with the seed varying fastest.
    """
    valid = [f for f in MemberSpec.__dataclass_fields__ if f != "seed"]
    for key in settings:
        if key not in valid:
            raise ConfigError(f"unknown member setting {key!r}; valid: {', '.join(valid)}")
    if isinstance(seeds, (int, np.integer)):
        seeds = list(range(check_int("seeds", seeds, minimum=1)))
    keys = list(settings)
    out = []
    for combo in itertools.product(*(list(settings[k]) for k in keys)):
        for seed in seeds:
            out.append(MemberSpec(seed=seed, **dict(zip(keys, combo))))
    return out


@dataclass(frozen=True, eq=False)
class Split:
    """Checked inputs of one split: ``x`` (n, d), labels ``y`` (n,), and the soft ``targets`` /
    ``teacher_logits`` ((n, K) shared or (E, n, K) per member) where given."""

    x: np.ndarray
    y: np.ndarray
    targets: np.ndarray | None = None
    teacher_logits: np.ndarray | None = None


@dataclass(frozen=True, eq=False)
class TrainPlan:
    """Everything one :func:`train` call does, validated (see :func:`make_plan`)."""

    train: Split
    val: Split | None
    val_loss_ok: bool  # the validation split has every input the loss needs
    members: tuple[MemberSpec, ...]  # every field filled in
    num_classes: int
    loss: Loss
    batch_size: int
    optimizer: str
    optimizer_options: Mapping[str, Any]
    schedule: str
    schedule_options: Mapping[str, Any]
    select: str
    device: torch.device
    dtype: torch.dtype
    capture: str
    show_progress: bool | None

    @property
    def input_dim(self) -> int:
        return int(self.train.x.shape[1])

    def groups(self) -> dict[tuple[int, ...], list[int]]:
        """Member indices by layer widths, in order of first appearance."""
        out: dict[tuple[int, ...], list[int]] = {}
        for i, m in enumerate(self.members):
            out.setdefault(tuple(m.width), []).append(i)  # type: ignore[arg-type]
        return out

    def record(self) -> dict[str, Any]:
        """The settings as plain values, for ``Ensemble.config`` and run records."""
        return {
            "loss": self.loss.as_dict(),
            "optimizer": {"name": self.optimizer, **self.optimizer_options},
            "schedule": {"name": self.schedule, **self.schedule_options},
            "batch_size": self.batch_size,
            "select": self.select,
            "num_members": len(self.members),
            "num_classes": self.num_classes,
            "input_dim": self.input_dim,
            "n_available": int(self.train.x.shape[0]),
            "n_val": int(self.val.x.shape[0]) if self.val is not None else 0,
            "device": str(self.device),
            "dtype": str(self.dtype).replace("torch.", ""),
            "capture_requested": self.capture,
            "members": [asdict(m) for m in self.members],
        }


# --------------------------------------------------------------------------- input checks
def as_array(name: str, v: Any, ndim: int | None = None) -> np.ndarray:
    """A finite float64 array from numpy or torch input."""
    if hasattr(v, "detach"):
        v = v.detach().cpu().numpy()
    return check_finite_array(name, v, ndim=ndim)


def check_labels(name: str, y: Any, n: int, k: int | None) -> np.ndarray:
    """Integer class labels ``(n,)`` in ``[0, k)``."""
    arr = np.asarray(y.detach().cpu() if hasattr(y, "detach") else y)
    if arr.ndim != 1 or arr.shape[0] != n:
        raise ConfigError(f"{name} must have shape ({n},), got {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        if not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
            raise ConfigError(f"{name} must hold integer class labels")
    arr = arr.astype(np.int64)
    if arr.size and arr.min() < 0:
        raise ConfigError(f"{name} must be >= 0")
    if k is not None and arr.size and arr.max() >= k:
        raise ConfigError(f"{name} must lie in [0, {k - 1}] for num_classes={k}")
    return arr


def check_soft(name: str, v: Any, n: int, k: int, e: int, probabilities: bool) -> np.ndarray:
    """Soft targets or teacher logits, ``(n, K)`` shared or ``(E, n, K)`` per member."""
    arr = as_array(name, v)
    if arr.shape not in ((n, k), (e, n, k)):
        raise ConfigError(
            f"{name} must have shape ({n}, {k}) or ({e}, {n}, {k}) (members, n, K), got {arr.shape}"
        )
    if probabilities:
        if np.any(arr < 0):
            raise ConfigError(f"{name} must be non-negative probabilities")
        worst = float(np.max(np.abs(arr.sum(-1) - 1.0))) if arr.size else 0.0
        if worst > 1e-4:
            raise ConfigError(f"{name} rows must sum to 1 (worst deviation {worst:.3g})")
    return arr


def resolve_members(
    members: int | Sequence[int | Mapping[str, Any] | MemberSpec],
    *,
    lr: float,
    epochs: int,
    width: Sequence[int],
    n_train: int | None,
    n: int,
) -> list[MemberSpec]:
    """Every member with each field filled in from the defaults and checked."""
    if isinstance(members, (int, np.integer)) and not isinstance(members, bool):
        count = check_int("members", members, minimum=1)
        members = list(range(count))
    if isinstance(members, (str, bytes)) or not isinstance(members, Sequence):
        raise ConfigError("members must be a count, a list of seeds, or a list of member specs")
    if len(members) == 0:
        raise ConfigError("members must not be empty")
    return [
        _resolve_member(i, m, lr=lr, epochs=epochs, width=width, n_train=n_train, n=n)
        for i, m in enumerate(members)
    ]


def _resolve_member(
    i: int, m: Any, *, lr: float, epochs: int, width: Sequence[int], n_train: int | None, n: int
) -> MemberSpec:
    if isinstance(m, MemberSpec):
        spec = m
    elif isinstance(m, Mapping):
        valid = {f for f in MemberSpec.__dataclass_fields__}
        unknown = set(m) - valid
        if unknown:
            raise ConfigError(
                f"members[{i}]: unknown field(s) {sorted(unknown)}; valid: {sorted(valid)}"
            )
        if "seed" not in m:
            raise ConfigError(f"members[{i}] needs a 'seed'")
        spec = MemberSpec(**m)
    else:
        spec = MemberSpec(seed=m)  # type: ignore[arg-type]
    seed = check_int(f"members[{i}].seed", spec.seed, minimum=0, maximum=SEED_MAX)
    m_lr = check_positive(f"members[{i}].lr", lr if spec.lr is None else spec.lr)
    m_ep = check_int(f"members[{i}].epochs", epochs if spec.epochs is None else spec.epochs)
    if m_ep < 1:
        raise ConfigError(f"members[{i}].epochs must be >= 1, got {m_ep}")
    w = tuple(width if spec.width is None else spec.width)
    w = tuple(check_int(f"members[{i}].width", h, minimum=1) for h in w)
    nt = spec.n_train if spec.n_train is not None else n_train
    nt = n if nt is None else check_int(f"members[{i}].n_train", nt, minimum=1)
    if nt > n:
        raise ConfigError(f"members[{i}].n_train={nt} exceeds the {n} training points")
    return MemberSpec(seed=seed, lr=m_lr, epochs=m_ep, width=w, n_train=nt)


def _num_classes(num_classes: int | None, ya: np.ndarray, inputs: Mapping[str, Any]) -> int:
    """``num_classes`` if given, else the class axis of soft inputs, else ``max(y) + 1``."""
    if num_classes is not None:
        return check_int("num_classes", num_classes, minimum=2)
    for name, arr in inputs.items():
        if arr is not None and hasattr(arr, "shape") and len(arr.shape) >= 2:
            k = int(arr.shape[-1])
            if ya.max() >= k:
                raise ConfigError(
                    f"{name} must have shape (n, K) with K > max(y) = {int(ya.max())}, "
                    f"got {tuple(arr.shape)}"
                )
            return k
    return max(2, int(ya.max()) + 1)


def _users(need: str) -> str:
    """The registered losses that take an input, for error messages ("loss 'soft'")."""
    names = [n for n, cls in LOSSES.items() if need in cls.needs]
    return ("loss " if len(names) == 1 else "losses ") + ", ".join(f"{n!r}" for n in names)


def _loss_input(
    loss: Loss, name: str, value: Any, n: int, k: int, e: int, probabilities: bool
) -> np.ndarray | None:
    """A training input the loss needs (checked), refused when given to a loss that does not."""
    if name in loss.needs:
        if value is None:
            what = " (soft target probabilities)" if probabilities else ""
            raise ConfigError(f"loss {loss.name!r} needs {name}{what}")
        return check_soft(name, value, n, k, e, probabilities)
    if value is not None:
        raise ConfigError(f"{name} are only used by {_users(name)}, not {loss.name!r}")
    return None


def _val_split(
    x_val: Any,
    y_val: Any,
    val_targets: Any,
    val_teacher_logits: Any,
    *,
    d: int,
    k: int,
    e: int,
) -> Split | None:
    if (x_val is None) != (y_val is None):
        raise ConfigError("x_val and y_val must be given together")
    if x_val is None:
        return None
    xv = as_array("x_val", x_val, ndim=2)
    if xv.shape[1] != d:
        raise ConfigError(f"x_val must have {d} columns like x, got {xv.shape[1]}")
    nv = xv.shape[0]
    return Split(
        x=xv,
        y=check_labels("y_val", y_val, nv, k),
        targets=None
        if val_targets is None
        else check_soft("val_targets", val_targets, nv, k, e, True),
        teacher_logits=None
        if val_teacher_logits is None
        else check_soft("val_teacher_logits", val_teacher_logits, nv, k, e, False),
    )


def _selection(select: str | None, val: Split | None, loss: Loss) -> tuple[str, bool]:
    """The selection rule (default by whether there is validation data) and whether the
    validation loss can be computed."""
    if select is None:
        select = "best_val_acc" if val is not None else "last"
    check_choice("select", select, SELECTION_RULES)
    if select != "last" and val is None:
        raise ConfigError(f"select={select!r} needs x_val and y_val")
    given = {
        "targets": ("val_targets", None if val is None else val.targets),
        "teacher_logits": ("val_teacher_logits", None if val is None else val.teacher_logits),
    }
    missing = [given[n][0] for n in loss.needs if n in given and given[n][1] is None]
    val_loss_ok = val is not None and not missing
    if select == "best_val_loss" and not val_loss_ok:
        raise ConfigError(
            f"select='best_val_loss' with loss {loss.name!r} needs the validation "
            + ", ".join(missing)
        )
    return select, val_loss_ok


def _check_budget(
    specs: Sequence[MemberSpec],
    *,
    input_dim: int,
    num_classes: int,
    batch_size: int,
    n: int | None = None,
    train: Split | None = None,
    val: Split | None = None,
    dtype: torch.dtype = torch.float32,
    count: int | None = None,
) -> None:
    """Refuse a job whose estimated memory cannot fit (see :mod:`.budget`)."""
    widest = max((tuple(m.width or ()) for m in specs), key=sum)
    check_memory(
        memory_parts(
            members=len(specs) if count is None else count,
            width=widest,
            input_dim=input_dim,
            num_classes=num_classes,
            batch_size=batch_size,
            n_train=int(train.x.shape[0]) if train is not None else int(n or 0),
            n_val=0 if val is None else int(val.x.shape[0]),
            soft_targets=train is not None
            and (train.targets is not None or train.teacher_logits is not None),
            dtype_bytes=torch.finfo(dtype).bits // 8,
        )
    )


def make_plan(
    x: Any,
    y: Any,
    *,
    members: int | Sequence[int | Mapping[str, Any] | MemberSpec],
    loss: str = "ce",
    loss_options: Mapping[str, Any] | None = None,
    targets: Any = None,
    teacher_logits: Any = None,
    x_val: Any = None,
    y_val: Any = None,
    val_targets: Any = None,
    val_teacher_logits: Any = None,
    num_classes: int | None = None,
    lr: float = 5e-4,
    epochs: int = 100,
    width: Sequence[int] = PAPER_WIDTH,
    n_train: int | None = None,
    batch_size: int = 32,
    optimizer: str = "sgd",
    optimizer_options: Mapping[str, Any] | None = None,
    schedule: str = "constant",
    schedule_options: Mapping[str, Any] | None = None,
    select: str | None = None,
    device: str | torch.device | None = None,
    dtype: str | torch.dtype = "float32",
    capture: str = "auto",
    show_progress: bool | None = None,
    graph_available: Callable[[torch.device], bool] | None = None,
) -> TrainPlan:
    """Check every argument of :func:`bcpd_sim.ensemble.train` (same names and meanings) and
    return the plan; raise ConfigError naming the argument before anything is trained.

    ``graph_available(device)`` says whether CUDA-graph capture works there (the trainer passes
    its capture backend's check)."""
    xa = as_array("x", x, ndim=2)
    n, d = xa.shape
    if n == 0:
        raise ConfigError("x must contain at least one sample")
    if num_classes is not None:
        num_classes = check_int("num_classes", num_classes, minimum=2)
    ya = check_labels("y", y, n, num_classes)
    spec = make_loss(loss, loss_options)
    k = _num_classes(num_classes, ya, {"targets": targets, "teacher_logits": teacher_logits})
    ya = check_labels("y", ya, n, k)
    batch_size = check_int("batch_size", batch_size, minimum=1)
    lr = check_positive("lr", lr)
    epochs = check_int("epochs", epochs, minimum=1)
    if isinstance(members, (int, np.integer)) and not isinstance(members, bool):
        # A count: check its memory before building that many member specs.
        count = check_int("members", members, minimum=1)
        w = tuple(check_int("width", h, minimum=1) for h in width)
        _check_budget(
            [MemberSpec(seed=0, width=w)],
            input_dim=d,
            num_classes=k,
            batch_size=batch_size,
            n=n,
            count=count,
        )
    specs = resolve_members(members, lr=lr, epochs=epochs, width=width, n_train=n_train, n=n)
    e = len(specs)
    opt_opts = make_optimizer_options(optimizer, optimizer_options)
    sched_opts = make_schedule_options(schedule, schedule_options)
    check_choice("capture", capture, CAPTURE_MODES)
    dev = resolve_device(device)
    if capture == "cuda_graph" and not (graph_available and graph_available(dev)):
        raise ConfigError("capture='cuda_graph' needs a CUDA device")
    tdtype = DTYPES.get(dtype, dtype)  # type: ignore[call-overload]
    if tdtype not in DTYPES.values():
        raise ConfigError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
    train_split = Split(
        x=xa,
        y=ya,
        targets=_loss_input(spec, "targets", targets, n, k, e, True),
        teacher_logits=_loss_input(spec, "teacher_logits", teacher_logits, n, k, e, False),
    )
    val = _val_split(x_val, y_val, val_targets, val_teacher_logits, d=d, k=k, e=e)
    select, val_loss_ok = _selection(select, val, spec)
    _check_budget(
        specs,
        input_dim=d,
        num_classes=k,
        batch_size=batch_size,
        train=train_split,
        val=val,
        dtype=tdtype,
    )
    return TrainPlan(
        train=train_split,
        val=val,
        val_loss_ok=val_loss_ok,
        members=tuple(specs),
        num_classes=k,
        loss=spec,
        batch_size=batch_size,
        optimizer=optimizer,
        optimizer_options=opt_opts,
        schedule=schedule,
        schedule_options=sched_opts,
        select=select,
        device=dev,
        dtype=tdtype,
        capture=capture,
        show_progress=show_progress,
    )
