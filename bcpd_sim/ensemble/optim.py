"""Optimisers and learning-rate schedules for stacked parameters (one leading axis per member).

The update rules follow ``torch.optim.SGD``, ``Adam`` and ``AdamW`` (default options), with a
per-member learning rate vector ``lr`` of shape ``(E,)`` and an optional per-member ``active`` mask:
an inactive member's parameters and optimiser state are left exactly as they were. All updates are
in place, so a step can be captured in a CUDA graph.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from ..errors import ConfigError
from ..validation import check_choice, check_fraction, check_int, check_positive

OPTIMIZER_NAMES = ("sgd", "adam", "adamw")
OPTIMIZER_DEFAULTS: dict[str, dict[str, Any]] = {
    "sgd": {"momentum": 0.9, "nesterov": False, "weight_decay": 0.0, "dampening": 0.0},
    "adam": {"betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.0},
    "adamw": {"betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.01},
}
SCHEDULE_NAMES = ("constant", "cosine", "multistep")
SCHEDULE_DEFAULTS: dict[str, dict[str, Any]] = {
    "constant": {},
    "cosine": {"min_factor": 0.0},
    "multistep": {"milestones": (), "gamma": 0.1},
}


def _fill(kind: str, name: str, defaults: Mapping[str, Any], options: Mapping | None) -> dict:
    opts = dict(defaults)
    for key, value in dict(options or {}).items():
        if key not in opts:
            valid = ", ".join(opts) or "(none)"
            raise ConfigError(f"unknown option {key!r} for {kind} {name!r}; valid: {valid}")
        opts[key] = value
    return opts


def make_optimizer_options(name: str, options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Validate an optimiser name and fill in its options."""
    check_choice("optimizer", name, OPTIMIZER_NAMES)
    o = _fill("optimizer", name, OPTIMIZER_DEFAULTS[name], options)
    o["weight_decay"] = check_positive("weight_decay", o["weight_decay"], allow_zero=True)
    if name == "sgd":
        o["momentum"] = check_fraction("momentum", o["momentum"], low=0.0, high=1.0)
        o["dampening"] = check_fraction("dampening", o["dampening"], low=0.0, high=1.0)
        if not isinstance(o["nesterov"], bool):
            raise ConfigError(f"nesterov must be True or False, got {o['nesterov']!r}")
        if o["nesterov"] and (o["momentum"] == 0 or o["dampening"] != 0):
            raise ConfigError("nesterov needs momentum > 0 and dampening = 0")
    else:
        betas = tuple(o["betas"])
        if len(betas) != 2:
            raise ConfigError(f"betas must be a pair, got {o['betas']!r}")
        o["betas"] = tuple(check_fraction("betas", b, low=0.0, high=1.0) for b in betas)
        if max(o["betas"]) >= 1.0:
            raise ConfigError(f"betas must be < 1, got {o['betas']}")
        o["eps"] = check_positive("eps", o["eps"])
    return o


def make_schedule_options(name: str, options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Validate a schedule name and fill in its options."""
    check_choice("schedule", name, SCHEDULE_NAMES)
    o = _fill("schedule", name, SCHEDULE_DEFAULTS[name], options)
    if name == "cosine":
        o["min_factor"] = check_fraction("min_factor", o["min_factor"])
    if name == "multistep":
        o["milestones"] = tuple(
            check_int("milestones", m, minimum=1) for m in sorted(o["milestones"])
        )
        o["gamma"] = check_positive("gamma", o["gamma"])
    return o


def lr_factor(name: str, options: Mapping[str, Any], epoch: int, epochs: int) -> float:
    """Multiplier of the base learning rate during 0-based ``epoch`` of a ``epochs``-epoch run.

    ``cosine`` equals ``torch.optim.lr_scheduler.CosineAnnealingLR(T_max=epochs)`` stepped once
    per epoch (with ``eta_min = min_factor * lr``); ``multistep`` multiplies by ``gamma`` at each
    milestone epoch, like ``MultiStepLR``.
    """
    if name == "constant":
        return 1.0
    if name == "cosine":
        lo = options["min_factor"]
        return lo + (1.0 - lo) * 0.5 * (1.0 + math.cos(math.pi * epoch / epochs))
    if name == "multistep":
        passed = sum(1 for m in options["milestones"] if m <= epoch)
        return float(options["gamma"]) ** passed
    raise ConfigError(f"unknown schedule {name!r}")  # pragma: no cover


@dataclass
class StackedOptimizer:
    """SGD / Adam / AdamW over a list of stacked parameter tensors ``(E, ...)``."""

    name: str
    options: dict[str, Any]
    params: Sequence[torch.Tensor]

    def __post_init__(self) -> None:
        e = self.params[0].shape[0]
        dev = self.params[0].device
        self.state: list[torch.Tensor] = []
        if self.name == "sgd":
            if self.options["momentum"] > 0:
                self.state = [torch.zeros_like(p) for p in self.params]
        else:
            self.state = [torch.zeros_like(p) for p in self.params]
            self.state += [torch.zeros_like(p) for p in self.params]
        # Per-member step counts (Adam bias correction); float64 keeps the powers exact enough.
        self.steps = torch.zeros(e, dtype=torch.float64, device=dev)

    def tensors(self) -> list[torch.Tensor]:
        """All state tensors (for snapshots)."""
        return [*self.params, *self.state, self.steps]

    @property
    def fused_momentum(self) -> float | None:
        """The momentum when the update can be fused into the backward pass, else ``None``.

        Plain momentum SGD (no weight decay, dampening or Nesterov) is ``buf = m * buf + g;
        p -= lr * buf``: :meth:`bcpd_sim.ensemble.mlp.Workspace.backward` accumulates the
        gradient into ``buf`` inside the matmul that computes it and updates ``p`` right after,
        one pass over the parameters instead of four. (``torch.optim.SGD``'s first step sets
        ``buf = g``, which is ``m * 0 + g`` exactly.) Every other setting uses :meth:`step`.
        """
        o = self.options
        if self.name != "sgd" or o["weight_decay"] or o["dampening"] or o["nesterov"]:
            return None
        return float(o["momentum"]) if o["momentum"] > 0 else None

    def hold(self) -> None:
        """Remember parameters and state, so that :meth:`release` can restore inactive members."""
        if not hasattr(self, "_held"):
            self._held = [torch.empty_like(t) for t in self.tensors()]
        for h, t in zip(self._held, self.tensors()):
            h.copy_(t)

    def release(self, active: torch.Tensor) -> None:
        """Put back the held values of the members where ``active`` is False (after an update
        that moved every member), and count a step for the active ones."""
        for h, t in zip(self._held, self.tensors()):
            torch.where(self._bcast(active, t), t, h, out=t)
        self.steps.add_(active.to(self.steps.dtype))

    def count(self) -> None:
        """Count a step for every member (after a fused update of all of them)."""
        self.steps.add_(1.0)

    @staticmethod
    def _bcast(v: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        return v.view((-1,) + (1,) * (p.dim() - 1))

    def step(
        self,
        grads: Sequence[torch.Tensor],
        lr: torch.Tensor,
        active: torch.Tensor | None = None,
    ) -> None:
        """Apply one update with per-member ``lr`` ``(E,)``; skip members where ``active`` is False."""
        o = self.options
        if active is not None:
            self.steps.add_(active.to(self.steps.dtype))
        else:
            self.steps.add_(1.0)
        if self.name == "sgd":
            self._sgd(grads, lr, active, o)
        else:
            self._adam(grads, lr, active, o)

    def _commit(self, old: torch.Tensor, new: torch.Tensor, active: torch.Tensor | None) -> None:
        if active is None:
            old.copy_(new)
        else:
            old.copy_(torch.where(self._bcast(active, old), new, old))

    # SGD updates each tensor in two fused passes (add with alpha, addcmul). Every member's
    # elements go through the same arithmetic whatever the ensemble size, so a member trained
    # alone matches it inside an ensemble bit for bit with one CPU thread (tested).

    def _sgd(self, grads, lr, active, o) -> None:
        mom, wd, damp, nest = o["momentum"], o["weight_decay"], o["dampening"], o["nesterov"]
        # torch.optim.SGD starts the momentum buffer as the undampened gradient: dampening
        # applies from each member's second step on (``steps`` already counts this one).
        keep = None
        if mom > 0 and damp:
            keep = torch.full_like(self.steps, 1.0 - damp).masked_fill_(self.steps == 1, 1.0)
        for i, (p, g) in enumerate(zip(self.params, grads)):
            d = g + p * wd if wd else g
            lr_b = self._bcast(lr, p)
            if mom > 0:
                buf = self.state[i]
                dd = d * self._bcast(keep.to(d.dtype), d) if keep is not None else d
                if active is None:  # in place, one pass: buf = dd + mom * buf
                    torch.add(dd, buf, alpha=mom, out=buf)
                    new_buf = buf
                else:
                    new_buf = torch.add(dd, buf, alpha=mom)
                    self._commit(buf, new_buf, active)
                d = d + new_buf * mom if nest else new_buf
            if active is None:
                p.addcmul_(d, lr_b, value=-1.0)
            else:
                self._commit(p, torch.addcmul(p, d, lr_b, value=-1.0), active)

    def _adam(self, grads, lr, active, o) -> None:
        b1, b2 = o["betas"]
        eps, wd = o["eps"], o["weight_decay"]
        n = len(self.params)
        t = torch.clamp(self.steps, min=1.0)
        dt = self.params[0].dtype
        # Per-member step size lr / (1 - b1^t) and sqrt(1 - b2^t), computed in float64.
        step_size = (lr.double() / (1.0 - torch.pow(b1, t))).to(dt)
        bc2_sqrt = torch.sqrt(1.0 - torch.pow(b2, t)).to(dt)
        for i, (p, g) in enumerate(zip(self.params, grads)):
            m, v = self.state[i], self.state[n + i]
            decoupled = wd and self.name == "adamw"
            if wd and not decoupled:
                g = g + p * wd
            if active is None:
                m.mul_(b1).add_(g * (1.0 - b1))
                v.mul_(b2).add_(g * g * (1.0 - b2))
                new_m, new_v = m, v
            else:
                new_m = m * b1 + g * (1.0 - b1)
                new_v = v * b2 + g * g * (1.0 - b2)
                self._commit(m, new_m, active)
                self._commit(v, new_v, active)
            denom = new_v.sqrt() / self._bcast(bc2_sqrt, p) + eps
            upd = self._bcast(step_size, p) * (new_m / denom)
            if decoupled:
                upd = upd + p * (self._bcast(lr, p) * wd)
            if active is None:
                p.sub_(upd)
            else:
                self._commit(p, p - upd, active)
