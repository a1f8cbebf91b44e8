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
path runs the same step function eagerly, and with several torch threads it splits a group's
members over that many Python threads with one torch thread each (:func:`cpu_shards`): the
members of a large group then get exactly their one-thread numbers (tested).
"""

from __future__ import annotations

import inspect
import math
import threading
import time
import warnings
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
import torch

from ..progress import progress
from . import mlp
from .losses import Loss, loss_and_grad
from .optim import StackedOptimizer, lr_factor
from .plan import (
    CAPTURE_MODES,
    SELECTION_RULES,
    MemberSpec,
    Split,
    TrainPlan,
    make_plan,
    member_grid,
)
from .result import Ensemble, Group
from .shuffle import permutations, seed_hashes


def train(x: Any, y: Any, **options: Any) -> Ensemble:
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
        show_progress: a progress bar per shape group (default: only on a terminal).

    Every argument is checked before any work (:func:`bcpd_sim.ensemble.plan.make_plan`, which
    takes the same keywords); the plan is then trained by :func:`run_plan`.
    """
    return run_plan(make_plan(x, y, graph_available=_GRAPH_BACKEND.available, **options))


# The keyword arguments are make_plan's (checked there once); show them in help() and IDEs.
train.__signature__ = inspect.signature(make_plan).replace(  # type: ignore[attr-defined]
    parameters=[
        p for p in inspect.signature(make_plan).parameters.values() if p.name != "graph_available"
    ],
    return_annotation=Ensemble,
)


@dataclass(frozen=True)
class DeviceSplit:
    """A split's tensors on the training device (soft inputs ``(n, K)`` or ``(E, n, K)``)."""

    x: torch.Tensor
    y: torch.Tensor
    targets: torch.Tensor | None
    teacher: torch.Tensor | None

    @classmethod
    def of(cls, split: Split, device: torch.device, dtype: torch.dtype) -> DeviceSplit:
        def put(a: np.ndarray | None) -> torch.Tensor | None:
            return None if a is None else torch.as_tensor(a, dtype=dtype, device=device)

        return cls(
            x=torch.as_tensor(split.x, dtype=dtype, device=device),
            y=torch.as_tensor(split.y, dtype=torch.int64, device=device),
            targets=put(split.targets),
            teacher=put(split.teacher_logits),
        )

    def members(self, index: list[int]) -> DeviceSplit:
        """Per-member (3-d) inputs restricted to a group's members; shared ones unchanged."""

        def rows(t: torch.Tensor | None) -> torch.Tensor | None:
            return t[index] if t is not None and t.dim() == 3 else t

        return replace(self, targets=rows(self.targets), teacher=rows(self.teacher))

    def batch(
        self, idx: torch.Tensor, rows: torch.Tensor, y: torch.Tensor | None = None
    ) -> dict[str, Any]:
        """The loss inputs at indices ``idx`` ``(E, B)``: labels (``y`` if already gathered),
        targets, teacher logits."""
        return {
            "y": self.y[idx] if y is None else y,
            "targets": _gather_rows(self.targets, idx, rows),
            "teacher_logits": _gather_rows(self.teacher, idx, rows),
        }


@dataclass(frozen=True)
class GroupResult:
    """One shape group's trained parameters, its tidy history and its selection table."""

    group: Group
    history: pd.DataFrame
    selection: pd.DataFrame
    captured: bool  # every step ran as a captured CUDA graph


def run_plan(plan: TrainPlan) -> Ensemble:
    """Train a validated plan (see :func:`bcpd_sim.ensemble.plan.make_plan`): one batched job
    per group of members with the same widths."""
    data = DeviceSplit.of(plan.train, plan.device, plan.dtype)
    val = None if plan.val is None else DeviceSplit.of(plan.val, plan.device, plan.dtype)
    use_graph = plan.capture in ("auto", "cuda_graph") and _GRAPH_BACKEND.available(plan.device)
    config = plan.record()
    t0 = time.perf_counter()
    threads = cpu_shards(plan.device, use_graph)
    jobs = [
        (width, part, i == 0)
        for width, index in plan.groups().items()
        for i, part in enumerate(_split(index, threads))
    ]

    def fit(width, index, bar, stop=None) -> GroupResult:
        return _GroupTrainer(
            plan,
            width,
            index,
            data.members(index),
            None if val is None else val.members(index),
            use_graph,
            show_progress=plan.show_progress if bar else False,
        ).fit(stop)

    if threads == 1:
        parts = [fit(*job) for job in jobs]
    else:
        parts = _in_threads(fit, jobs, threads)
    results = [
        _merge([r for r, job in zip(parts, jobs) if job[0] == width]) for width in plan.groups()
    ]
    config["cpu_threads"] = threads
    config["capture_used"] = "cuda_graph" if all(r.captured for r in results) else "eager"
    config["train_seconds"] = time.perf_counter() - t0
    history = pd.concat([r.history for r in results], ignore_index=True)
    history = history.sort_values(["member", "epoch"], ignore_index=True)
    selection = pd.concat([r.selection for r in results], ignore_index=True)
    selection = selection.sort_values("member", ignore_index=True)
    return Ensemble(
        [r.group for r in results],
        list(plan.members),
        plan.num_classes,
        config,
        history,
        selection,
        plan.device,
    )


#: Training points gathered at once for eager steps (a block of steps' inputs and labels).
GATHER_BLOCK = 2**15

#: The fewest members a CPU thread trains on its own (smaller groups are not split).
MIN_MEMBERS_PER_THREAD = 8


def cpu_shards(device: torch.device, use_graph: bool = False) -> int:
    """How many CPU threads train a group's members side by side: ``torch.get_num_threads()``
    on the CPU, 1 on other devices.

    On the CPU a group of members is split into that many parts, each trained start to finish
    by its own Python thread with one intra-op thread (PyTorch releases the GIL inside its
    kernels). Members are independent, so the parts need no synchronisation: every small
    elementwise op runs in parallel too (with intra-op threading, tensors below PyTorch's grain
    size run on one thread), there is no fork/join per op, and each thread's parameters take
    half the cache. A member's numbers are those of the member trained alone with one thread.
    """
    if device.type != "cpu" or use_graph:
        return 1
    return max(1, torch.get_num_threads())


def _split(index: list[int], threads: int) -> list[list[int]]:
    """``index`` in at most ``threads`` contiguous parts of at least MIN_MEMBERS_PER_THREAD."""
    parts = max(1, min(threads, len(index) // MIN_MEMBERS_PER_THREAD))
    return [list(map(int, a)) for a in np.array_split(np.asarray(index), parts)]


def _in_threads(fn, jobs: list[tuple], threads: int) -> list:
    """``fn(*job, stop)`` for every job on ``threads`` Python threads, each with one torch
    thread; the caller's thread setting is restored afterwards. If any job fails (or the
    caller is interrupted), ``stop`` is set and the others end at their next epoch."""
    before = torch.get_num_threads()
    stop = threading.Event()

    def run(job: tuple):
        torch.set_num_threads(1)
        return fn(*job, stop)

    try:
        with ThreadPoolExecutor(max_workers=threads) as pool:
            futures = [pool.submit(run, job) for job in jobs]
            try:
                done, _ = wait(futures, return_when=FIRST_EXCEPTION)
                for f in done:
                    f.result()  # raises the first failure while the others still run
                return [f.result() for f in futures]
            except BaseException:
                stop.set()
                raise
    finally:
        torch.set_num_threads(before)


def _merge(parts: list[GroupResult]) -> GroupResult:
    """One group's result from the results of its parts (members in order)."""
    if len(parts) == 1:
        return parts[0]
    g0 = parts[0].group
    group = Group(
        index=[i for r in parts for i in r.group.index],
        width=g0.width,
        sizes=g0.sizes,
        params=[torch.cat(ps) for ps in zip(*(r.group.params for r in parts))],
        last_params=[torch.cat(ps) for ps in zip(*(r.group.last_params for r in parts))],
    )
    return GroupResult(
        group,
        pd.concat([r.history for r in parts], ignore_index=True),
        pd.concat([r.selection for r in parts], ignore_index=True),
        all(r.captured for r in parts),
    )


def _gather_rows(t: torch.Tensor | None, idx: torch.Tensor, rows: torch.Tensor) -> Any:
    if t is None:
        return None
    return t[idx] if t.dim() == 2 else t[rows, idx]


class _Selection:
    """Each member's best checkpoint so far under the selection rule."""

    def __init__(self, rule: str, params: list[torch.Tensor], device: torch.device) -> None:
        e = params[0].shape[0]
        self.rule = rule
        self.params = [p.clone() for p in params] if rule != "last" else None
        best = torch.full((e,), -math.inf if rule == "best_val_acc" else math.inf, device=device)
        self.value = best.to(torch.float64)
        self.epoch = torch.zeros(e, dtype=torch.int64, device=device)

    def update(
        self,
        epoch: int,
        vacc: torch.Tensor,
        vloss: torch.Tensor,
        active: torch.Tensor,
        params: list[torch.Tensor],
    ) -> None:
        """Keep ``params`` for the active members whose validation score improved."""
        if self.rule == "last":
            return
        by_acc = self.rule == "best_val_acc"
        better = (vacc > self.value) if by_acc else (vloss < self.value)
        better = better & active
        self.value = torch.where(better, vacc if by_acc else vloss, self.value)
        self.epoch = torch.where(better, epoch + 1, self.epoch)
        for bp, p in zip(self.params, params):
            bp.copy_(torch.where(better.view((-1,) + (1,) * (p.dim() - 1)), p, bp))


class _GroupTrainer:
    """One shape group trained as a batched computation, in named stages: :meth:`fit` runs
    :meth:`train_epoch` and :meth:`evaluate` per epoch, then :meth:`result`."""

    def __init__(
        self,
        plan: TrainPlan,
        width: tuple[int, ...],
        index: list[int],
        data: DeviceSplit,
        val: DeviceSplit | None,
        use_graph: bool,
        show_progress: bool | None = None,
    ) -> None:
        specs = [plan.members[i] for i in index]
        self.show_progress = show_progress
        dev, dtype, b = plan.device, plan.dtype, plan.batch_size
        self.plan, self.width, self.index, self.data, self.val = plan, width, index, data, val
        self.e = e = len(specs)
        self.sizes = mlp.layer_sizes(data.x.shape[1], width, plan.num_classes)
        self.seeds = [m.seed for m in specs]
        self.params = mlp.init_stack(self.seeds, self.sizes, dev, dtype)
        self.opt = StackedOptimizer(plan.optimizer, dict(plan.optimizer_options), self.params)
        self.n_m = np.array([m.n_train for m in specs], dtype=np.int64)
        self.ep_m = np.array([m.epochs for m in specs], dtype=np.int64)
        self.base_lr = np.array([m.lr for m in specs], dtype=np.float64)
        self.steps_m = -(-self.n_m // b)
        self.n_steps = int(self.steps_m.max())
        self.n_epochs = int(self.ep_m.max())
        self.rows = torch.arange(e, device=dev)[:, None]
        self.hashes = seed_hashes(self.seeds, dev)
        self.n_m_t = torch.as_tensor(self.n_m, device=dev)
        self.pos = torch.arange(self.n_steps * b, device=dev)
        self.loss_acc = torch.zeros(e, dtype=dtype, device=dev)
        # Which batch positions hold a member's own points, and the per-sample weights of its
        # batch mean, step by step (the same every epoch): (n_steps, E, B).
        valid = (self.pos[None, :] < self.n_m_t[:, None]).to(dtype)
        self.valid_steps = valid.view(e, self.n_steps, b).transpose(0, 1).contiguous()
        cnt = self.valid_steps.sum(-1, keepdim=True).clamp(min=1.0)
        self.wgt_steps = self.valid_steps / cnt
        # Static inputs of one step (a CUDA graph reads them; the eager path points them at the
        # step's rows instead of copying).
        self.s_idx = torch.zeros(e, b, dtype=torch.int64, device=dev)
        self.s_valid = torch.zeros(e, b, dtype=dtype, device=dev)
        self.s_wgt = torch.zeros(e, b, dtype=dtype, device=dev)
        self.s_x: torch.Tensor | None = None  # the step's inputs and labels, when pre-gathered
        self.s_y: torch.Tensor | None = None
        self.s_lr = torch.zeros(e, dtype=dtype, device=dev)
        self.s_active = torch.ones(e, dtype=torch.bool, device=dev)
        self.ws = mlp.Workspace(self.params, b, data.x.shape[1])
        self.graphs: dict[bool, Any] = {}
        self.graph_ok = use_graph
        self.selection = _Selection(plan.select, self.params, dev)
        self.validation = (
            None if val is None else _Validation(self.params, val, plan.loss, plan.val_loss_ok)
        )
        self.epoch_rows: list[tuple[np.ndarray, torch.Tensor]] = []  # (lr, metrics) per epoch

    # ---------------------------------------------------------------- one step
    def step(self, masked: bool) -> None:
        """Forward, the loss's gradient, backward and the optimiser update for one batch."""
        idx = self.s_idx
        if self.s_x is None:  # gather the batch (a captured graph reads the static index)
            xb, yb = self.ws.gather(self.data.x, idx), None
        else:  # gathered with the epoch's block of steps
            xb, yb = self.s_x, self.s_y
        acts = self.ws.forward(self.params, xb)
        per, g = loss_and_grad(self.plan.loss, acts[-1], **self.data.batch(idx, self.rows, yb))
        self.loss_acc.add_((per * self.s_valid).sum(1))
        g = g * self.s_wgt.unsqueeze(-1)
        mom = self.opt.fused_momentum
        if mom is None:
            grads = self.ws.backward(self.params, xb, g)
            self.opt.step(grads, self.s_lr, self.s_active if masked else None)
            return
        # Momentum SGD fused into the backward pass; on a masked step every member is updated
        # the same way and the inactive ones are then put back exactly as they were.
        if masked:
            self.opt.hold()
        self.ws.backward(self.params, xb, g, into=self.opt.state, beta=mom, lr=self.s_lr)
        if masked:
            self.opt.release(self.s_active)
        else:
            self.opt.count()

    def _block_buffers(self, block: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Reused buffers for a block of steps' inputs ``(block, E, B, d)`` and labels."""
        if getattr(self, "_blocks", None) is None or self._blocks[0].shape[0] != block:
            x, y = self.data.x, self.data.y
            shape = (block, self.e, self.plan.batch_size)
            self._blocks = (x.new_empty(*shape, x.shape[1]), y.new_empty(shape))
        return self._blocks

    def run_step(self, masked: bool) -> None:
        """The step, replayed from a captured graph where capture works."""
        if self.graph_ok and masked not in self.graphs:
            # _capture performs this step (by a checked replay, or eagerly after a failure).
            self.graphs[masked] = _capture(
                self.step, masked, self.opt, self.loss_acc, self.plan.capture == "cuda_graph"
            )
            if self.graphs[masked] is None:
                self.graph_ok = False
            return
        if self.graph_ok:
            self.graphs[masked].replay()
        else:
            self.step(masked)

    # ---------------------------------------------------------------- stages
    def train_epoch(self, epoch: int) -> tuple[np.ndarray, np.ndarray]:
        """One epoch over each member's own data order; returns (active members, their lr)."""
        plan, e, b, n_steps = self.plan, self.e, self.plan.batch_size, self.n_steps
        act_ep = epoch < self.ep_m
        factors = np.array(
            [lr_factor(plan.schedule, plan.schedule_options, epoch, int(t)) for t in self.ep_m]
        )
        lr_ep = self.base_lr * factors
        self.s_lr.copy_(torch.as_tensor(lr_ep, dtype=plan.dtype))
        perm = permutations(
            self.seeds, epoch, self.n_m.tolist(), device=plan.device, hashes=self.hashes
        )
        if perm.shape[1] < n_steps * b:
            pad = n_steps * b - perm.shape[1]
            perm = torch.cat([perm, perm.new_zeros(e, pad)], dim=1)
        idx_steps = perm.view(e, n_steps, b).transpose(0, 1).contiguous()
        # Which members update at each step of this epoch: (n_steps, e).
        act_steps = act_ep[None, :] & (np.arange(n_steps)[:, None] < self.steps_m[None, :])
        act_steps_t = torch.as_tensor(act_steps, device=plan.device)
        all_active = act_steps.all(axis=1)
        self.loss_acc.zero_()
        block, gathered = max(1, GATHER_BLOCK // max(1, e * b)), -1
        for s in range(n_steps):
            inputs = (idx_steps[s], self.valid_steps[s], self.wgt_steps[s], act_steps_t[s])
            if self.graph_ok:  # a captured graph reads the static buffers
                for buf, v in zip((self.s_idx, self.s_valid, self.s_wgt, self.s_active), inputs):
                    buf.copy_(v)
            else:
                # Eager: point at the step's rows, and gather inputs and labels for a block
                # of steps at once (one large gather instead of two small ones per step).
                self.s_idx, self.s_valid, self.s_wgt, self.s_active = inputs
                first = s - s % block
                if first != gathered:
                    rows = idx_steps[first : first + block].reshape(-1)
                    xs, ys = self._block_buffers(block)
                    k = rows.shape[0] // (e * b)
                    torch.index_select(self.data.x, 0, rows, out=xs[:k].view(len(rows), -1))
                    torch.index_select(self.data.y, 0, rows, out=ys[:k].view(-1))
                    gathered = first
                self.s_x, self.s_y = xs[s - first], ys[s - first]
            self.run_step(not bool(all_active[s]))
        self.s_x = self.s_y = None
        return act_ep, np.where(act_ep, lr_ep, np.nan)

    def evaluate(self, epoch: int, act_ep: np.ndarray, lr: np.ndarray) -> None:
        """Record the epoch's training loss and validation metrics; update the selection."""
        act_t = torch.as_tensor(act_ep, device=self.plan.device)
        nan = torch.full((self.e,), math.nan, dtype=torch.float64, device=self.plan.device)
        tl = (self.loss_acc.double() / self.n_m_t.double()).where(act_t, math.nan)
        vacc = vloss = vnll = nan
        if self.val is not None:
            vacc, vloss, vnll = self.validation(self.params)
            self.selection.update(epoch, vacc, vloss, act_t, self.params)
            vacc, vloss, vnll = (v.where(act_t, math.nan) for v in (vacc, vloss, vnll))
        self.epoch_rows.append((lr, torch.stack([tl, vacc, vloss, vnll])))

    def fit(self, stop: threading.Event | None = None) -> GroupResult:
        """Train every epoch, then collect the result (``stop``: end early when it is set)."""
        bar = {} if self.show_progress is None else {"disable": not self.show_progress}
        for epoch in progress(range(self.n_epochs), desc=f"ensemble x{self.e}", **bar):
            if stop is not None and stop.is_set():
                raise RuntimeError("training stopped: another part of the ensemble failed")
            act_ep, lr = self.train_epoch(epoch)
            self.evaluate(epoch, act_ep, lr)
        return self.result()

    def result(self) -> GroupResult:
        """The selected and last parameters, the tidy history and the selection table."""
        rule, e, ep_m = self.plan.select, self.e, self.ep_m
        if rule == "last":
            final = self.params
            sel_epoch = ep_m.copy()
            sel_value = np.full(e, np.nan)
        else:
            final = self.selection.params
            sel_epoch = self.selection.epoch.cpu().numpy()
            sel_value = self.selection.value.cpu().numpy()
        group = Group(
            index=list(self.index),
            width=tuple(self.width),
            sizes=self.sizes,
            params=[p.detach() for p in final],
            last_params=[p.detach() for p in self.params],
        )
        sel = pd.DataFrame(
            {
                "member": self.index,
                "seed": self.seeds,
                "rule": rule,
                "selected_epoch": sel_epoch.astype(np.int64),
                "selected_value": sel_value,
                "epochs": ep_m,
                "lr": self.base_lr,
                "width": [str(tuple(self.width))] * e,
                "n_train": self.n_m,
            }
        )
        return GroupResult(group, self._history(), sel, bool(self.graph_ok and self.graphs))

    def _history(self) -> pd.DataFrame:
        """One row per (member, epoch) that the member trained."""
        h_lr = np.stack([lr for lr, _ in self.epoch_rows])
        hl, ha, hv, hn = torch.stack([m for _, m in self.epoch_rows], 1).cpu().numpy()
        ep_grid, mem_grid = np.meshgrid(np.arange(self.n_epochs), np.arange(self.e), indexing="ij")
        keep = ep_grid < self.ep_m[None, :]
        return pd.DataFrame(
            {
                "member": np.asarray(self.index)[mem_grid[keep]],
                "epoch": ep_grid[keep] + 1,
                "lr": h_lr[keep],
                "train_loss": hl[keep],
                "val_acc": ha[keep],
                "val_loss": hv[keep],
                "val_nll": hn[keep],
            }
        )


def validation_chunk(members: int, width: int, n_val: int) -> int:
    """Validation points per chunk: activations of about 2**21 numbers (8 MB in float32), and
    at least 256 points."""
    return max(1, min(n_val, max(256, int(2**21 // max(1, members * width)))))


class _Validation:
    """Per-member validation metrics of one group, in chunks of validation points with reused
    activation buffers (fresh multi-megabyte tensors every chunk would cost page faults).

    The shared inputs go through batched matmuls with a stride-0 member axis (no copy per
    member), the output layer is computed transposed (``W h^T``, a wide result) as in the
    training step, and the metrics read a contiguous copy of the small logits.
    """

    def __init__(self, params: list[torch.Tensor], val: DeviceSplit, loss: Loss, ok: bool):
        self.val, self.loss, self.loss_ok = val, loss, ok
        self.e = e = params[0].shape[0]
        self.nv = nv = val.x.shape[0]
        self.chunk = validation_chunk(e, max(p.shape[-2] for p in params[::2]), nv)
        self.buffers: dict[int, list[torch.Tensor]] = {}
        self.rows = torch.arange(e, device=val.x.device)[:, None]

    def _buffers(self, m: int, params: list[torch.Tensor]) -> list[torch.Tensor]:
        if m not in self.buffers:
            kw = {"dtype": params[0].dtype, "device": params[0].device}
            hidden = [torch.empty(self.e, m, w.shape[1], **kw) for w in params[:-2:2]]
            self.buffers[m] = [*hidden, torch.empty(self.e, params[-2].shape[1], m, **kw)]
        return self.buffers[m]

    def __call__(self, params: list[torch.Tensor]) -> tuple[torch.Tensor, ...]:
        """Accuracy, training-loss value (NaN when unavailable) and NLL per member."""
        val, e, nv = self.val, self.e, self.nv
        dev = val.x.device
        correct = torch.zeros(e, dtype=torch.float64, device=dev)
        lsum = torch.zeros_like(correct)
        nsum = torch.zeros_like(correct)
        with torch.no_grad():
            for a in range(0, nv, self.chunk):
                m = min(self.chunk, nv - a)
                bufs = self._buffers(m, params)
                h = val.x[a : a + m].unsqueeze(0).expand(e, -1, -1)
                for i, out in enumerate(bufs[:-1]):
                    w, b = params[2 * i], params[2 * i + 1]
                    h = torch.relu_(torch.baddbmm(b.unsqueeze(1), h, w.transpose(1, 2), out=out))
                zt = torch.baddbmm(
                    params[-1].unsqueeze(2), params[-2], h.transpose(1, 2), out=bufs[-1]
                )
                y = val.y[a : a + m]
                z = zt.transpose(1, 2).contiguous()
                correct += (z.argmax(-1) == y).sum(1).double()
                zd = z.double()
                zy = zd.gather(-1, y.view(1, m, 1).expand(e, m, 1)).squeeze(-1)
                nsum += (torch.logsumexp(zd, -1) - zy).sum(1)
                if self.loss_ok:
                    idx = torch.arange(a, a + m, device=dev).unsqueeze(0).expand(e, -1)
                    inputs = val.batch(idx, self.rows) | {"y": y.unsqueeze(0).expand(e, -1)}
                    per = self.loss.value(z, **inputs)
                    lsum += per.double().sum(1)
        vloss = lsum / nv if self.loss_ok else torch.full_like(lsum, math.nan)
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
        """Record ``fn`` (without running it) into a graph with a ``replay()`` method.

        If the capture fails, the caller's stream is made current again (``torch.cuda.graph``
        can leave the capture stream current when ending a broken capture raises too) and the
        failed graph is reset, releasing its memory pool, before the error propagates.
        """
        caller = torch.cuda.current_stream()
        graph = torch.cuda.CUDAGraph()
        try:
            with torch.cuda.graph(graph):
                fn()
        except BaseException:
            torch.cuda.set_stream(caller)
            graph.reset()
            raise
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


# The plan's names are re-exported: ``from bcpd_sim.ensemble.trainer import MemberSpec`` works.
__all__ = [
    "CAPTURE_MODES",
    "Ensemble",
    "MemberSpec",
    "SELECTION_RULES",
    "member_grid",
    "run_plan",
    "train",
]
