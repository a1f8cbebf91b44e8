"""The result of :func:`bcpd_sim.ensemble.train`: trained members, their history and selection."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from ..errors import ConfigError
from ..validation import check_choice, check_int
from . import mlp
from .plan import MemberSpec, as_array


@dataclass(frozen=True)
class Group:
    """The members that share layer widths, their parameters stacked along a leading axis."""

    index: list[int]  # the members' positions in the ensemble
    width: tuple[int, ...]
    sizes: list[int]  # layer sizes, input to output
    params: list[torch.Tensor]  # the checkpoints chosen by the selection rule
    last_params: list[torch.Tensor]  # the last epoch's


class Ensemble:
    """Trained members: selected parameters per shape group, history, selection and config."""

    def __init__(
        self,
        groups: list[Group],
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
        xa = as_array("x", x, ndim=2)
        if xa.shape[1] != self.config["input_dim"]:
            raise ConfigError(f"x must have {self.config['input_dim']} columns, got {xa.shape[1]}")
        wanted = self._member_list(members)
        pos = {m: i for i, m in enumerate(wanted)}
        dtype = self._groups[0].params[0].dtype
        xt = torch.as_tensor(xa, dtype=dtype, device=self.device)
        out = torch.empty(
            len(wanted), xt.shape[0], self.num_classes, dtype=dtype, device=self.device
        )
        with torch.no_grad():
            for g in self._groups:
                local = [j for j, m in enumerate(g.index) if m in pos]
                if not local:
                    continue
                stack = g.params if checkpoint == "selected" else g.last_params
                if len(local) == len(g.index):
                    params = stack
                else:
                    sel = torch.as_tensor(local, device=self.device)
                    params = [p[sel] for p in stack]
                dest = torch.as_tensor([pos[g.index[j]] for j in local], device=self.device)
                step = self._chunk(len(local), max(g.width, default=0))  # () = linear model
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
        g, j = self._locate(member)
        return mlp.member_module(g.params, j)

    def member_parameters(self, member: int) -> list[torch.Tensor]:
        """Member ``member``'s selected parameters ``[W1 (out,in), b1, ...]`` (CPU copies)."""
        g, j = self._locate(member)
        return [p[j].detach().cpu().clone() for p in g.params]

    def _locate(self, member: int) -> tuple[Group, int]:
        """The group holding ``member`` and its position there."""
        for g in self._groups:
            if member in g.index:
                return g, g.index.index(member)
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


__all__ = ["Ensemble", "Group"]
