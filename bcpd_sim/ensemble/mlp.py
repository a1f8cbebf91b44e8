"""Stacked-parameter ReLU MLPs: E networks of one shape evaluated with batched matmuls.

Weights are stored as ``(E, fan_out, fan_in)`` (``nn.Linear``'s layout, which is also the faster
one for batched CPU matmuls with a narrow output layer) and biases as ``(E, fan_out)``. Member ``m``'s
initial weights are exactly those of ``torch.manual_seed(seed_m)`` followed by building
``nn.Sequential(nn.Linear, nn.ReLU, ..., nn.Linear)`` (PyTorch's default initialisation), so a
member can be compared with, or exported to, a plain ``nn.Module``. The backward pass is written
out by hand (three batched matmuls per layer), which keeps a training step free of autograd and
easy to capture in a CUDA graph.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn


def layer_sizes(in_dim: int, hidden: Sequence[int], out_dim: int) -> list[int]:
    """``[in_dim, *hidden, out_dim]``."""
    return [int(in_dim), *(int(h) for h in hidden), int(out_dim)]


def init_member(seed: int, sizes: Sequence[int]) -> list[torch.Tensor]:
    """One member's parameters ``[W1 (out,in), b1, W2, b2, ...]`` in float32 on the CPU.

    Reproduces ``nn.Linear``'s default initialisation drawn from a generator seeded with ``seed``,
    in the order a ``torch.manual_seed(seed); nn.Sequential(...)`` would draw them.
    """
    g = torch.Generator().manual_seed(int(seed))
    out: list[torch.Tensor] = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        gain = math.sqrt(2.0 / (1 + 5.0))  # kaiming_uniform_(a=sqrt(5)) as in nn.Linear
        bound_w = math.sqrt(3.0) * (gain / math.sqrt(fan_in))
        w = torch.empty(fan_out, fan_in).uniform_(-bound_w, bound_w, generator=g)
        bound_b = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
        b = torch.empty(fan_out).uniform_(-bound_b, bound_b, generator=g)
        out += [w, b]
    return out


def init_stack(seeds: Sequence[int], sizes: Sequence[int], device, dtype) -> list[torch.Tensor]:
    """Stacked parameters ``[W1 (E,out,in), b1 (E,out), ...]`` of the members with ``seeds``."""
    per = [init_member(s, sizes) for s in seeds]
    return [
        torch.stack([m[i] for m in per]).to(device=device, dtype=dtype).contiguous()
        for i in range(len(per[0]))
    ]


def forward(params: Sequence[torch.Tensor], x: torch.Tensor) -> list[torch.Tensor]:
    """Activations ``[h1, ..., h_{L-1}, logits]`` for ``x`` of shape ``(E, B, in)``."""
    acts = []
    h = x
    nlayers = len(params) // 2
    for i in range(nlayers):
        w, b = params[2 * i], params[2 * i + 1]
        h = torch.baddbmm(b.unsqueeze(1), h, w.transpose(1, 2))
        if i < nlayers - 1:
            h = torch.relu_(h)
        acts.append(h)
    return acts


def logits(params: Sequence[torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """Logits ``(E, B, K)``; ``x`` may be ``(B, in)`` (shared by all members) or ``(E, B, in)``."""
    if x.dim() == 2:
        x = x.unsqueeze(0).expand(params[0].shape[0], -1, -1)
    return forward(params, x)[-1]


def backward(
    params: Sequence[torch.Tensor],
    x: torch.Tensor,
    acts: Sequence[torch.Tensor],
    grad_logits: torch.Tensor,
) -> list[torch.Tensor]:
    """Gradients ``[dW1, db1, ...]`` of ``sum(grad_logits * logits)`` (the chain rule by hand)."""
    nlayers = len(params) // 2
    grads: list[torch.Tensor] = [None] * len(params)  # type: ignore[list-item]
    g = grad_logits
    for i in reversed(range(nlayers)):
        inp = acts[i - 1] if i > 0 else x
        grads[2 * i] = torch.bmm(g.transpose(1, 2), inp)
        grads[2 * i + 1] = g.sum(1)
        if i > 0:
            # ReLU backward (one kernel; a bool-mask product would cost a cast and two passes).
            g = torch.ops.aten.threshold_backward(torch.bmm(g, params[2 * i]), inp, 0)
    return grads


def member_module(params: Sequence[torch.Tensor], member: int) -> nn.Sequential:
    """Member ``member`` of a stack as a plain ``nn.Sequential`` of Linear and ReLU layers."""
    layers: list[nn.Module] = []
    nlayers = len(params) // 2
    for i in range(nlayers):
        w = params[2 * i][member].detach().cpu().float()
        b = params[2 * i + 1][member].detach().cpu().float()
        lin = nn.Linear(w.shape[1], w.shape[0])
        with torch.no_grad():
            lin.weight.copy_(w)
            lin.bias.copy_(b)
        layers.append(lin)
        if i < nlayers - 1:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class Workspace:
    """Preallocated activations, gradients and input buffers for one training step.

    Writing every large intermediate into a reused buffer (``out=``) avoids allocating and
    page-faulting megabytes per step on the CPU (a 2-3x difference for the paper MLP) and keeps
    tensor addresses fixed for CUDA-graph capture. Same mathematics as :func:`forward` and
    :func:`backward`, arranged for the fastest batched matmuls on the CPU:

    - the narrow output layer is computed transposed, ``W h^T`` into an ``(E, K, B)`` buffer
      (a wide result instead of a 10-column one, about twice as fast for the paper MLP), then
      copied to ``(E, B, K)`` logits (the loss's many small passes are several times faster on
      contiguous rows than on the transposed view);
    - bias gradients are a batched matmul with a row of ones (so they can accumulate like the
      weight gradients);
    - :meth:`backward` can accumulate the gradients straight into SGD momentum buffers
      (``buf = beta * buf + grad`` inside the matmul, no gradient tensor written and read back)
      and apply ``p -= lr * buf`` layer by layer while the buffer is still in cache.

    Every member's numbers go through the same kernels whatever the ensemble size, so a member
    trained inside an ensemble still matches the member trained alone bit for bit (one thread).
    """

    def __init__(self, params: Sequence[torch.Tensor], batch: int, in_dim: int) -> None:
        e = params[0].shape[0]
        kw = {"dtype": params[0].dtype, "device": params[0].device}
        nlayers = len(params) // 2
        self.x = torch.empty(e, batch, in_dim, **kw)
        hidden = [torch.empty(e, batch, params[2 * i].shape[1], **kw) for i in range(nlayers - 1)]
        self.logits_t = torch.empty(e, params[-1].shape[1], batch, **kw)
        self.acts = [*hidden, torch.empty(e, batch, params[-1].shape[1], **kw)]
        self.dh = [torch.empty_like(a) for a in hidden]
        self.grads = [torch.empty_like(p) for p in params]
        self.ones = torch.ones(e, 1, batch, **kw)

    def gather(self, data: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        """``data[idx]`` for ``idx`` of shape ``(E, B)``, written into the input buffer."""
        torch.index_select(data, 0, idx.reshape(-1), out=self.x.view(-1, data.shape[1]))
        return self.x

    def forward(self, params: Sequence[torch.Tensor], x: torch.Tensor) -> list[torch.Tensor]:
        """Activations ``[h1, ..., logits]`` (ReLU applied in place) in the workspace."""
        nlayers = len(params) // 2
        h = x
        for i in range(nlayers - 1):
            w, b = params[2 * i], params[2 * i + 1]
            out = self.acts[i]
            torch.baddbmm(b.unsqueeze(1), h, w.transpose(1, 2), out=out)
            torch.relu_(out)
            h = out
        w, b = params[-2], params[-1]
        torch.baddbmm(b.unsqueeze(2), w, h.transpose(1, 2), out=self.logits_t)
        self.acts[-1].copy_(self.logits_t.transpose(1, 2))
        return self.acts

    def backward(
        self,
        params: Sequence[torch.Tensor],
        x: torch.Tensor,
        grad_logits: torch.Tensor,
        *,
        into: Sequence[torch.Tensor] | None = None,
        beta: float = 0.0,
        lr: torch.Tensor | None = None,
    ) -> list[torch.Tensor]:
        """Gradients ``[dW1, db1, ...]`` of ``sum(grad_logits * logits)`` after :meth:`forward`.

        By default they are written into the workspace. With ``into`` (tensors shaped like the
        parameters) they are accumulated there instead, ``into = beta * into + grad`` (SGD's
        momentum buffers); with ``lr`` ``(E,)`` as well, each layer's parameters are then
        updated in place, ``p -= lr * into``, right after the layer's input gradient (which
        needs the old weights) is computed. Returns the gradient (or accumulated) tensors.
        """
        nlayers = len(params) // 2
        out = list(self.grads if into is None else into)
        g = grad_logits
        for i in reversed(range(nlayers)):
            inp = self.acts[i - 1] if i > 0 else x
            w, dw, db = params[2 * i], out[2 * i], out[2 * i + 1].unsqueeze(1)
            if into is None:
                torch.bmm(g.transpose(1, 2), inp, out=dw)
                torch.bmm(self.ones, g, out=db)
            else:
                dw.baddbmm_(g.transpose(1, 2), inp, beta=beta)
                db.baddbmm_(self.ones, g, beta=beta)
            if i > 0:
                dh = self.dh[i - 1]
                torch.bmm(g, w, out=dh)
                torch.ops.aten.threshold_backward.grad_input(dh, inp, 0, grad_input=dh)
                g = dh
            if lr is not None:
                for p, d in ((w, out[2 * i]), (params[2 * i + 1], out[2 * i + 1])):
                    p.addcmul_(d, lr.view((-1,) + (1,) * (p.dim() - 1)), value=-1.0)
        return out
