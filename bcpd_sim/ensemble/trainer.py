"""``train``: many independent MLPs trained as one batched computation.

Members with the same layer widths form one group whose parameters are stacked along a leading
member axis; each training step is a handful of batched matmuls for the whole group (the only
Python loop is over shape groups). Per member: its own initialisation seed, its own data order
(:mod:`.shuffle`), learning rate, number of epochs and training-set size (the first ``n_train``
points). The batch loss of a member is the mean over *its* valid samples, so members never
influence each other; a member that has finished its epochs or its (shorter) epoch is frozen,
optimiser state included. A member trained inside an ensemble therefore matches the same member
trained alone: bit for bit on the CPU with one thread (tested); with several threads or on CUDA,
batched kernels may split work differently by ensemble size, so agreement is to float32 rounding.

On CUDA the step is captured once in a CUDA graph and replayed (``capture="auto"``); the capture
is checked against an eager step and any failure falls back to eager with a warning. The CPU
path runs the same step function eagerly.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from ..device import resolve_device
from ..errors import ConfigError
from ..progress import progress
from ..validation import check_choice, check_finite_array, check_int, check_positive
from . import mlp
from .losses import LOSSES, Loss, loss_and_grad, make_loss
from .optim import (
    StackedOptimizer,
    lr_factor,
    make_optimizer_options,
    make_schedule_options,
)
from .shuffle import permutations, seed_hashes

SELECTION_RULES = ("best_val_acc", "best_val_loss", "last")
CAPTURE_MODES = ("auto", "eager", "cuda_graph")
PAPER_WIDTH = (128, 128)


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
    import itertools

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


def _resolve_members(
    members: int | Sequence[int | Mapping[str, Any] | MemberSpec],
    *,
    lr: float,
    epochs: int,
    width: Sequence[int],
    n_train: int | None,
    n: int,
) -> list[MemberSpec]:
    if isinstance(members, (int, np.integer)) and not isinstance(members, bool):
        count = check_int("members", members, minimum=1)
        members = list(range(count))
    if isinstance(members, (str, bytes)) or not isinstance(members, Sequence):
        raise ConfigError("members must be a count, a list of seeds, or a list of member specs")
    if len(members) == 0:
        raise ConfigError("members must not be empty")
    out: list[MemberSpec] = []
    for i, m in enumerate(members):
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
        seed = check_int(f"members[{i}].seed", spec.seed, minimum=0)
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
        out.append(MemberSpec(seed=seed, lr=m_lr, epochs=m_ep, width=w, n_train=nt))
    return out


def _check_labels(name: str, y: Any, n: int, k: int | None) -> np.ndarray:
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


def _as_np(name: str, v: Any, ndim: int | None = None) -> np.ndarray:
    if hasattr(v, "detach"):
        v = v.detach().cpu().numpy()
    return check_finite_array(name, v, ndim=ndim)


def _check_soft(name: str, v: Any, n: int, k: int, e: int, probabilities: bool) -> np.ndarray:
    arr = _as_np(name, v)
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


class Ensemble:
    """Trained members: selected parameters per shape group, history, selection and config."""

    def __init__(
        self,
        groups: list[dict[str, Any]],
        members: list[MemberSpec],
        num_classes: int,
        config: dict[str, Any],
        history: pd.DataFrame,
        selection: pd.DataFrame,
        device: torch.device,
    ) -> None:
        self._groups = groups
        self.members = members
        self.num_classes = num_classes
        self.config = config
        self.history = history
        self.selection = selection
        self.selection_rule: str = config["select"]
        self.selected_epoch: np.ndarray = selection["selected_epoch"].to_numpy()
        self.device = device

    def __len__(self) -> int:
        return len(self.members)

    @property
    def loss(self) -> dict[str, Any]:
        """The training loss's name and options, as recorded."""
        return dict(self.config["loss"])

    def _chunk(self, e: int, width: int) -> int:
        return max(256, int(2**24 // max(1, e * max(width, self.num_classes))))

    def _member_list(self, members: Sequence[int] | None) -> list[int]:
        if members is None:
            return list(range(len(self.members)))
        out = [check_int("members", m, minimum=0) for m in members]
        if out and max(out) >= len(self.members):
            raise ConfigError(f"members must lie in [0, {len(self.members) - 1}], got {max(out)}")
        return out

    def predict_logits(
        self,
        x: Any,
        *,
        members: Sequence[int] | None = None,
        as_tensor: bool = False,
        checkpoint: str = "selected",
    ) -> Any:
        """Logits ``(members, n, K)`` of the selected checkpoints (all members, or the listed
        ones in that order): float64 numpy, or a tensor on the training device with
        ``as_tensor=True``. ``checkpoint="last"`` uses each member's last-epoch weights instead
        of the ones chosen by the selection rule."""
        check_choice("checkpoint", checkpoint, ("selected", "last"))
        key = "params" if checkpoint == "selected" else "last_params"
        xa = _as_np("x", x, ndim=2)
        if xa.shape[1] != self.config["input_dim"]:
            raise ConfigError(f"x must have {self.config['input_dim']} columns, got {xa.shape[1]}")
        wanted = self._member_list(members)
        pos = {m: i for i, m in enumerate(wanted)}
        dtype = self._groups[0]["params"][0].dtype
        xt = torch.as_tensor(xa, dtype=dtype, device=self.device)
        out = torch.empty(
            len(wanted), xt.shape[0], self.num_classes, dtype=dtype, device=self.device
        )
        with torch.no_grad():
            for g in self._groups:
                local = [j for j, m in enumerate(g["index"]) if m in pos]
                if not local:
                    continue
                if len(local) == len(g["index"]):
                    params = g[key]
                else:
                    sel = torch.as_tensor(local, device=self.device)
                    params = [p[sel] for p in g[key]]
                dest = torch.as_tensor([pos[g["index"][j]] for j in local], device=self.device)
                step = self._chunk(len(local), max(g["width"]))
                for a in range(0, xt.shape[0], step):
                    out[dest, a : a + step] = mlp.logits(params, xt[a : a + step])
        if as_tensor:
            return out
        return out.double().cpu().numpy()

    def predict_proba(
        self,
        x: Any,
        *,
        members: Sequence[int] | None = None,
        as_tensor: bool = False,
        checkpoint: str = "selected",
    ) -> Any:
        """Class probabilities ``(members, n, K)`` (softmax of the logits in float64)."""
        z = self.predict_logits(x, members=members, as_tensor=True, checkpoint=checkpoint)
        p = torch.softmax(z.double(), dim=-1)
        return p if as_tensor else p.cpu().numpy()

    def member_module(self, member: int) -> torch.nn.Sequential:
        """Member ``member``'s selected checkpoint as a plain ``nn.Sequential`` on the CPU."""
        for g in self._groups:
            if member in g["index"]:
                return mlp.member_module(g["params"], g["index"].index(member))
        raise ConfigError(f"member must lie in [0, {len(self.members) - 1}], got {member}")

    def member_parameters(self, member: int) -> list[torch.Tensor]:
        """Member ``member``'s selected parameters ``[W1 (out,in), b1, ...]`` (CPU copies)."""
        for g in self._groups:
            if member in g["index"]:
                j = g["index"].index(member)
                return [p[j].detach().cpu().clone() for p in g["params"]]
        raise ConfigError(f"member must lie in [0, {len(self.members) - 1}], got {member}")

    def evaluate(self, x: Any, *, y: Any = None, p_star: Any = None) -> pd.DataFrame:
        """Metrics per member (see :func:`bcpd_sim.metrics.evaluate`) with seed and loss name."""
        from .. import metrics

        n = len(np.asarray(x))
        # Members in chunks of about 256 MB of float64 probabilities.
        chunk = max(1, int(2**25 // max(1, n * self.num_classes)))
        frames = []
        for a in range(0, len(self.members), chunk):
            ids = list(range(a, min(a + chunk, len(self.members))))
            f = metrics.evaluate(self.predict_proba(x, members=ids), y=y, p_star=p_star)
            frames.append(f.assign(member=ids))
        frame = pd.concat(frames, ignore_index=True)
        frame.insert(1, "seed", [m.seed for m in self.members])
        frame.insert(2, "loss", self.config["loss"]["name"])
        frame.insert(3, "selected_epoch", self.selected_epoch)
        return frame


def train(
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
) -> Ensemble:
    """Train independent ReLU MLPs ``d -> width... -> K`` together; return an :class:`Ensemble`.

    Args:
        x, y: training inputs ``(n, d)`` and integer labels ``(n,)``.
        members: a count (seeds 0..E-1), a list of seeds, or a list of :class:`MemberSpec` /
            dicts with ``seed`` and optional ``lr``, ``epochs``, ``width``, ``n_train``.
        loss, loss_options: a name from :data:`bcpd_sim.ensemble.LOSS_NAMES` and its options.
        targets: soft target probabilities for ``loss="soft"``, ``(n, K)`` or ``(E, n, K)``.
        teacher_logits: teacher logits for ``loss="kd"``, ``(n, K)`` or ``(E, n, K)``.
        x_val, y_val: validation split, evaluated every epoch (needed unless ``select="last"``).
        val_targets, val_teacher_logits: validation counterparts for the soft / kd val loss.
        lr, epochs, width, n_train: defaults for members that do not set them (``n_train``:
            a member uses the first ``n_train`` training points; default all).
        batch_size: mini-batch size (the last batch of an epoch may be smaller).
        optimizer, optimizer_options: ``sgd`` (default momentum 0.9), ``adam`` or ``adamw``.
        schedule, schedule_options: ``constant``, ``cosine`` or ``multistep``, stepped per epoch.
        select: ``best_val_acc`` (default with validation data), ``best_val_loss`` or ``last``
            (default without).
        device: ``None``/``"auto"`` (CUDA when present), ``"cpu"`` or ``"cuda"``.
        dtype: ``"float32"`` (default) or ``"float64"``.
        capture: ``"auto"`` (a CUDA graph on CUDA, eager on CPU), ``"eager"`` or ``"cuda_graph"``.
    """
    # ---------------------------------------------------------------- validation (before work)
    xa = _as_np("x", x, ndim=2)
    n, d = xa.shape
    if n == 0:
        raise ConfigError("x must contain at least one sample")
    if num_classes is not None:
        num_classes = check_int("num_classes", num_classes, minimum=2)
    ya = _check_labels("y", y, n, num_classes)
    spec = make_loss(loss, loss_options)
    needs = spec.needs
    k = num_classes
    for name, arr in (("targets", targets), ("teacher_logits", teacher_logits)):
        if k is None and arr is not None and hasattr(arr, "shape") and len(arr.shape) >= 2:
            k = int(arr.shape[-1])
            if ya.max() >= k:
                raise ConfigError(
                    f"{name} must have shape (n, K) with K > max(y) = {int(ya.max())}, "
                    f"got {tuple(arr.shape)}"
                )
    k = k if k is not None else max(2, int(ya.max()) + 1)
    ya = _check_labels("y", ya, n, k)
    batch_size = check_int("batch_size", batch_size, minimum=1)
    lr = check_positive("lr", lr)
    epochs = check_int("epochs", epochs, minimum=1)
    specs = _resolve_members(members, lr=lr, epochs=epochs, width=width, n_train=n_train, n=n)
    e_all = len(specs)
    opt_opts = make_optimizer_options(optimizer, optimizer_options)
    sched_opts = make_schedule_options(schedule, schedule_options)
    check_choice("capture", capture, CAPTURE_MODES)
    dev = resolve_device(device)
    if capture == "cuda_graph" and not _GRAPH_BACKEND.available(dev):
        raise ConfigError("capture='cuda_graph' needs a CUDA device")
    tdtype = {"float32": torch.float32, "float64": torch.float64}.get(dtype, dtype)  # type: ignore[call-overload]
    if tdtype not in (torch.float32, torch.float64):
        raise ConfigError(f"dtype must be 'float32' or 'float64', got {dtype!r}")

    soft = None
    if "targets" in needs:
        if targets is None:
            raise ConfigError(f"loss {spec.name!r} needs targets (soft target probabilities)")
        soft = _check_soft("targets", targets, n, k, e_all, probabilities=True)
    elif targets is not None:
        raise ConfigError(f"targets are only used by {_users('targets')}, not {spec.name!r}")
    teach = None
    if "teacher_logits" in needs:
        if teacher_logits is None:
            raise ConfigError(f"loss {spec.name!r} needs teacher_logits")
        teach = _check_soft("teacher_logits", teacher_logits, n, k, e_all, probabilities=False)
    elif teacher_logits is not None:
        raise ConfigError(
            f"teacher_logits are only used by {_users('teacher_logits')}, not {spec.name!r}"
        )

    has_val = x_val is not None
    if has_val != (y_val is not None):
        raise ConfigError("x_val and y_val must be given together")
    xv = yv = sv = tv = None
    if has_val:
        xv = _as_np("x_val", x_val, ndim=2)
        if xv.shape[1] != d:
            raise ConfigError(f"x_val must have {d} columns like x, got {xv.shape[1]}")
        yv = _check_labels("y_val", y_val, xv.shape[0], k)
        if val_targets is not None:
            sv = _check_soft("val_targets", val_targets, xv.shape[0], k, e_all, True)
        if val_teacher_logits is not None:
            tv = _check_soft("val_teacher_logits", val_teacher_logits, xv.shape[0], k, e_all, False)
    if select is None:
        select = "best_val_acc" if has_val else "last"
    check_choice("select", select, SELECTION_RULES)
    if select != "last" and not has_val:
        raise ConfigError(f"select={select!r} needs x_val and y_val")
    val_inputs = {"targets": ("val_targets", sv), "teacher_logits": ("val_teacher_logits", tv)}
    missing = [val_inputs[n][0] for n in needs if n in val_inputs and val_inputs[n][1] is None]
    val_loss_ok = has_val and not missing
    if select == "best_val_loss" and not val_loss_ok:
        raise ConfigError(
            f"select='best_val_loss' with loss {spec.name!r} needs the validation "
            + (", ".join(missing) or "x_val and y_val")
        )

    # ---------------------------------------------------------------- data on the device
    xt = torch.as_tensor(xa, dtype=tdtype, device=dev)
    yt = torch.as_tensor(ya, dtype=torch.int64, device=dev)
    st = torch.as_tensor(soft, dtype=tdtype, device=dev) if soft is not None else None
    tt = torch.as_tensor(teach, dtype=tdtype, device=dev) if teach is not None else None
    val = None
    if has_val:
        val = {
            "x": torch.as_tensor(xv, dtype=tdtype, device=dev),
            "y": torch.as_tensor(yv, dtype=torch.int64, device=dev),
            "targets": torch.as_tensor(sv, dtype=tdtype, device=dev) if sv is not None else None,
            "teacher": torch.as_tensor(tv, dtype=tdtype, device=dev) if tv is not None else None,
            "loss_ok": val_loss_ok,
        }

    use_graph = capture in ("auto", "cuda_graph") and _GRAPH_BACKEND.available(dev)
    config: dict[str, Any] = {
        "loss": spec.as_dict(),
        "optimizer": {"name": optimizer, **opt_opts},
        "schedule": {"name": schedule, **sched_opts},
        "batch_size": batch_size,
        "select": select,
        "num_members": e_all,
        "num_classes": k,
        "input_dim": d,
        "n_available": n,
        "n_val": int(xv.shape[0]) if xv is not None else 0,
        "device": str(dev),
        "dtype": str(tdtype).replace("torch.", ""),
        "capture_requested": capture,
        "members": [asdict(m) for m in specs],
    }

    # ---------------------------------------------------------------- one group per width
    widths: dict[tuple[int, ...], list[int]] = {}
    for i, m in enumerate(specs):
        widths.setdefault(tuple(m.width), []).append(i)  # type: ignore[arg-type]
    groups, hist_frames, sel_frames, captured = [], [], [], []
    t0 = time.perf_counter()

    def rows_of(t: torch.Tensor | None, index: list[int]) -> torch.Tensor | None:
        """Per-member (3-d) targets restricted to a group's members; shared ones unchanged."""
        return t[index] if t is not None and t.dim() == 3 else t

    for w, index in widths.items():
        val_g = None
        if val is not None:
            val_g = {
                **val,
                "targets": rows_of(val["targets"], index),
                "teacher": rows_of(val["teacher"], index),
            }
        g, hf, sf, cap = _train_group(
            [specs[i] for i in index],
            index,
            w,
            spec,
            xt,
            yt,
            rows_of(st, index),
            rows_of(tt, index),
            val_g,
            k,
            batch_size,
            optimizer,
            opt_opts,
            schedule,
            sched_opts,
            select,
            dev,
            tdtype,
            use_graph,
            capture == "cuda_graph",
            show_progress,
        )
        groups.append(g)
        hist_frames.append(hf)
        sel_frames.append(sf)
        captured.append(cap)
    config["capture_used"] = "cuda_graph" if captured and all(captured) else "eager"
    config["train_seconds"] = time.perf_counter() - t0
    history = pd.concat(hist_frames, ignore_index=True)
    history = history.sort_values(["member", "epoch"], ignore_index=True)
    selection = pd.concat(sel_frames, ignore_index=True).sort_values("member", ignore_index=True)
    return Ensemble(groups, specs, k, config, history, selection, dev)


def _users(need: str) -> str:
    """The registered losses that take an input, for error messages ("loss 'soft'")."""
    names = [n for n, cls in LOSSES.items() if need in cls.needs]
    return ("loss " if len(names) == 1 else "losses ") + ", ".join(f"{n!r}" for n in names)


def _gather_rows(t: torch.Tensor | None, idx: torch.Tensor, rows: torch.Tensor) -> Any:
    if t is None:
        return None
    return t[idx] if t.dim() == 2 else t[rows, idx]


def _train_group(
    specs: list[MemberSpec],
    index: list[int],
    width: tuple[int, ...],
    spec: Loss,
    xt: torch.Tensor,
    yt: torch.Tensor,
    st: torch.Tensor | None,
    tt: torch.Tensor | None,
    val: dict[str, Any] | None,
    k: int,
    batch_size: int,
    opt_name: str,
    opt_opts: dict[str, Any],
    sched_name: str,
    sched_opts: dict[str, Any],
    select: str,
    dev: torch.device,
    tdtype: torch.dtype,
    use_graph: bool,
    require_graph: bool,
    show_progress: bool | None,
) -> tuple[dict[str, Any], pd.DataFrame, pd.DataFrame, bool]:
    e = len(specs)
    sizes = mlp.layer_sizes(xt.shape[1], width, k)
    seeds = [m.seed for m in specs]
    params = mlp.init_stack(seeds, sizes, dev, tdtype)
    opt = StackedOptimizer(opt_name, opt_opts, params)
    n_m = np.array([m.n_train for m in specs], dtype=np.int64)
    ep_m = np.array([m.epochs for m in specs], dtype=np.int64)
    base_lr = np.array([m.lr for m in specs], dtype=np.float64)
    steps_m = -(-n_m // batch_size)
    n_steps = int(steps_m.max())
    n_epochs = int(ep_m.max())
    rows = torch.arange(e, device=dev)[:, None]
    hashes = seed_hashes(seeds, dev)
    n_list = n_m.tolist()
    n_m_t = torch.as_tensor(n_m, device=dev)
    pos = torch.arange(n_steps * batch_size, device=dev)
    loss_acc = torch.zeros(e, dtype=tdtype, device=dev)

    # Static inputs of one step (a CUDA graph reads them; the eager path fills them the same way).
    s_idx = torch.zeros(e, batch_size, dtype=torch.int64, device=dev)
    s_valid = torch.zeros(e, batch_size, dtype=tdtype, device=dev)
    s_lr = torch.zeros(e, dtype=tdtype, device=dev)
    s_active = torch.ones(e, dtype=torch.bool, device=dev)

    ws = mlp.Workspace(params, batch_size, xt.shape[1])

    def step(masked: bool) -> None:
        idx = s_idx
        xb = ws.gather(xt, idx)
        acts = ws.forward(params, xb)
        per, g = loss_and_grad(
            spec,
            acts[-1],
            y=yt[idx],
            targets=_gather_rows(st, idx, rows),
            teacher_logits=_gather_rows(tt, idx, rows),
        )
        cnt = s_valid.sum(1, keepdim=True).clamp(min=1.0)
        wgt = s_valid / cnt
        loss_acc.add_((per * s_valid).sum(1))
        grads = ws.backward(params, xb, g * wgt.unsqueeze(-1))
        opt.step(grads, s_lr, s_active if masked else None)

    graphs: dict[bool, Any] = {}
    graph_ok = use_graph

    def run_step(masked: bool) -> None:
        nonlocal graph_ok
        if graph_ok and masked not in graphs:
            # _capture performs this step (by a checked replay, or eagerly after a failure).
            graphs[masked] = _capture(step, masked, opt, loss_acc, require_graph)
            if graphs[masked] is None:
                graph_ok = False
            return
        if graph_ok:
            graphs[masked].replay()
        else:
            step(masked)

    # Selection state.
    best_params = [p.clone() for p in params] if select != "last" else None
    best_val = torch.full((e,), -math.inf if select == "best_val_acc" else math.inf, device=dev)
    best_val = best_val.to(torch.float64)
    best_epoch = torch.zeros(e, dtype=torch.int64, device=dev)
    h_loss = torch.full((n_epochs, e), math.nan, dtype=torch.float64, device=dev)
    h_acc = torch.full_like(h_loss, math.nan)
    h_vloss = torch.full_like(h_loss, math.nan)
    h_vnll = torch.full_like(h_loss, math.nan)
    h_lr = np.full((n_epochs, e), np.nan)

    bar_opts = {} if show_progress is None else {"disable": not show_progress}
    for epoch in progress(range(n_epochs), desc=f"ensemble x{e}", **bar_opts):
        act_ep = epoch < ep_m
        factors = np.array([lr_factor(sched_name, sched_opts, epoch, int(t)) for t in ep_m])
        lr_ep = base_lr * factors
        h_lr[epoch] = np.where(act_ep, lr_ep, np.nan)
        s_lr.copy_(torch.as_tensor(lr_ep, dtype=tdtype))
        perm = permutations(seeds, epoch, n_list, device=dev, hashes=hashes)
        if perm.shape[1] < n_steps * batch_size:
            pad = n_steps * batch_size - perm.shape[1]
            perm = torch.cat([perm, perm.new_zeros(e, pad)], dim=1)
        valid = (pos[None, :] < n_m_t[:, None]).to(tdtype)
        idx_ep = perm.view(e, n_steps, batch_size)
        valid_ep = valid.view(e, n_steps, batch_size)
        # Which members update at each step of this epoch: (n_steps, e).
        act_steps = act_ep[None, :] & (np.arange(n_steps)[:, None] < steps_m[None, :])
        act_steps_t = torch.as_tensor(act_steps, device=dev)
        all_active = act_steps.all(axis=1)
        loss_acc.zero_()
        for s in range(n_steps):
            s_idx.copy_(idx_ep[:, s])
            s_valid.copy_(valid_ep[:, s])
            s_active.copy_(act_steps_t[s])
            run_step(not bool(all_active[s]))
        act_t = torch.as_tensor(act_ep, device=dev)
        tl = (loss_acc.double() / n_m_t.double()).where(act_t, math.nan)
        h_loss[epoch] = tl
        if val is not None:
            vacc, vloss, vnll = _evaluate_val(params, val, spec, k)
            h_acc[epoch] = vacc.where(act_t, math.nan)
            h_vloss[epoch] = vloss.where(act_t, math.nan)
            h_vnll[epoch] = vnll.where(act_t, math.nan)
            if select != "last":
                if select == "best_val_acc":
                    better = vacc > best_val
                else:
                    better = vloss < best_val
                better = better & act_t
                best_val = torch.where(
                    better, vacc if select == "best_val_acc" else vloss, best_val
                )
                best_epoch = torch.where(better, epoch + 1, best_epoch)
                for bp, p in zip(best_params, params):
                    bp.copy_(torch.where(better.view((-1,) + (1,) * (p.dim() - 1)), p, bp))

    if select == "last":
        final = params
        sel_epoch = ep_m.copy()
        sel_value = np.full(e, np.nan)
    else:
        final = best_params
        sel_epoch = best_epoch.cpu().numpy()
        sel_value = best_val.cpu().numpy()
    group = {
        "params": [p.detach() for p in final],
        "last_params": [p.detach() for p in params],
        "index": list(index),
        "index_t": torch.as_tensor(index, device=dev),
        "width": tuple(width),
        "sizes": sizes,
    }
    # Tidy history: one row per (member, epoch) that the member trained.
    hl, ha, hv, hn = (t.cpu().numpy() for t in (h_loss, h_acc, h_vloss, h_vnll))
    ep_grid, mem_grid = np.meshgrid(np.arange(n_epochs), np.arange(e), indexing="ij")
    keep = ep_grid < ep_m[None, :]
    hist = pd.DataFrame(
        {
            "member": np.asarray(index)[mem_grid[keep]],
            "epoch": ep_grid[keep] + 1,
            "lr": h_lr[keep],
            "train_loss": hl[keep],
            "val_acc": ha[keep],
            "val_loss": hv[keep],
            "val_nll": hn[keep],
        }
    )
    sel = pd.DataFrame(
        {
            "member": index,
            "seed": seeds,
            "rule": select,
            "selected_epoch": sel_epoch.astype(np.int64),
            "selected_value": sel_value,
            "epochs": ep_m,
            "lr": base_lr,
            "width": [str(tuple(width))] * e,
            "n_train": n_m,
        }
    )
    return group, hist, sel, bool(graph_ok and graphs)


def _evaluate_val(
    params: list[torch.Tensor], val: dict[str, Any], spec: Loss, k: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-member validation accuracy, training-loss value (NaN when unavailable) and NLL."""
    xv, yv = val["x"], val["y"]
    e = params[0].shape[0]
    nv = xv.shape[0]
    wmax = max(p.shape[-1] for p in params)
    chunk = max(256, int(2**21 // max(1, e * wmax)))  # activations stay cache-sized
    correct = torch.zeros(e, dtype=torch.float64, device=xv.device)
    lsum = torch.zeros_like(correct)
    nsum = torch.zeros_like(correct)
    rows = torch.arange(e, device=xv.device)[:, None]
    with torch.no_grad():
        for a in range(0, nv, chunk):
            sl = slice(a, a + chunk)
            z = mlp.logits(params, xv[sl])
            yb = yv[sl].unsqueeze(0).expand(e, -1)
            correct += (z.argmax(-1) == yb).sum(1).double()
            logp = torch.log_softmax(z.double(), -1)
            nsum += -logp.gather(-1, yb.unsqueeze(-1)).squeeze(-1).sum(1)
            if val["loss_ok"]:
                idx = torch.arange(a, min(a + chunk, nv), device=xv.device).unsqueeze(0)
                idx = idx.expand(e, -1)
                per, _ = loss_and_grad(
                    spec,
                    z,
                    y=yb,
                    targets=_gather_rows(val["targets"], idx, rows),
                    teacher_logits=_gather_rows(val["teacher"], idx, rows),
                )
                lsum += per.double().sum(1)
    vloss = lsum / nv if val["loss_ok"] else torch.full_like(lsum, math.nan)
    return correct / nv, vloss, nsum / nv


class CudaGraphBackend:
    """How a step is captured and replayed on CUDA (tests substitute a CPU stand-in)."""

    @staticmethod
    def available(device: torch.device) -> bool:
        """Whether this backend can capture on ``device``."""
        return device.type == "cuda"

    @staticmethod
    def warmup(fn) -> None:
        """Run ``fn`` once on a side stream, as CUDA-graph capture requires."""
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            fn()
        torch.cuda.current_stream().wait_stream(side)

    @staticmethod
    def capture(fn):
        """Record ``fn`` (without running it) into a graph with a ``replay()`` method."""
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            fn()
        return graph

    @staticmethod
    def synchronize() -> None:
        """Wait for the device."""
        torch.cuda.synchronize()


_GRAPH_BACKEND: Any = CudaGraphBackend


def _capture(step, masked: bool, opt: StackedOptimizer, loss_acc: torch.Tensor, required: bool):
    """Capture ``step(masked)`` in a graph, checked against one eager step.

    Returns the graph with the step already applied once, or ``None`` after applying the step
    eagerly (capture failed or disagreed; a warning says why).
    """
    backend = _GRAPH_BACKEND
    state = [*opt.tensors(), loss_acc]
    snap = [t.clone() for t in state]
    try:
        backend.warmup(lambda: step(masked))  # also the eager reference result
        eager = [t.clone() for t in state]
        for t, s in zip(state, snap):
            t.copy_(s)
        graph = backend.capture(lambda: step(masked))
        graph.replay()
        backend.synchronize()
        for a, b in zip(state, eager):
            if not torch.allclose(a.double(), b.double(), rtol=1e-4, atol=1e-6):
                raise RuntimeError("captured step disagrees with the eager step")
        return graph
    except Exception as exc:  # noqa: BLE001 - any failure falls back to eager
        if required:
            raise
        warnings.warn(f"step capture failed ({exc}); training eagerly", stacklevel=3)
        for t, s in zip(state, snap):
            t.copy_(s)
        step(masked)
        return None


__all__ = ["Ensemble", "MemberSpec", "SELECTION_RULES", "member_grid", "train"]
