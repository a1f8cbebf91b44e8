"""The hand-written training step of the stacked MLPs against autograd and torch.optim, in float64:
the workspace's forward (transposed output layer), backward (bias gradients as matmuls), the
momentum-SGD update fused into the backward pass, the masked (hold / release) variant, and the
validation metrics."""

from __future__ import annotations

import math

import pytest
import torch

from bcpd_sim.ensemble import mlp
from bcpd_sim.ensemble.losses import make_loss
from bcpd_sim.ensemble.optim import StackedOptimizer, make_optimizer_options
from bcpd_sim.ensemble.plan import Split
from bcpd_sim.ensemble.trainer import DeviceSplit, _Validation

SIZES = [7, 16, 12, 5]
E, B = 4, 9


def _params(seed=0, sizes=SIZES):
    return mlp.init_stack(range(seed, seed + E), sizes, "cpu", torch.float64)


def _autograd_grads(params, x, grad_logits):
    leaves = [p.clone().requires_grad_() for p in params]
    z = mlp.forward(leaves, x)[-1]
    (z * grad_logits).sum().backward()
    return z.detach(), [p.grad for p in leaves]


@pytest.mark.parametrize("sizes", [SIZES, [3, 8, 2], [5, 6, 6, 6, 4]])
def test_workspace_forward_and_backward_match_autograd(sizes):
    g = torch.Generator().manual_seed(1)
    params = _params(sizes=sizes)
    x = torch.randn(E, B, sizes[0], generator=g, dtype=torch.float64)
    gz = torch.randn(E, B, sizes[-1], generator=g, dtype=torch.float64)
    ws = mlp.Workspace(params, B, sizes[0])
    acts = ws.forward(params, ws.gather(x.reshape(E * B, -1), torch.arange(E * B).view(E, B)))
    assert acts[-1].shape == (E, B, sizes[-1])
    z, ref = _autograd_grads(params, x, gz)
    torch.testing.assert_close(acts[-1], z, rtol=1e-12, atol=1e-12)
    got = ws.backward(params, ws.x, gz)
    for a, b in zip(got, ref):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def _sgd_reference(params, xs, gzs, lrs, masks, momentum):
    """Autograd gradients, then StackedOptimizer.step (itself tested against torch.optim)."""
    params = [p.clone() for p in params]
    opt = StackedOptimizer("sgd", make_optimizer_options("sgd", {"momentum": momentum}), params)
    for x, gz, lr, mask in zip(xs, gzs, lrs, masks):
        _, grads = _autograd_grads(params, x, gz)
        opt.step(grads, lr, mask)
    return params, opt.state


@pytest.mark.parametrize("masked", [False, True])
def test_fused_momentum_sgd_matches_the_optimizer_step(masked):
    g = torch.Generator().manual_seed(2)
    params = _params()
    n = 5
    xs = [torch.randn(E, B, SIZES[0], generator=g, dtype=torch.float64) for _ in range(n)]
    gzs = [torch.randn(E, B, SIZES[-1], generator=g, dtype=torch.float64) for _ in range(n)]
    lrs = [torch.tensor([0.1, 0.05, 0.02, 0.2], dtype=torch.float64)] * n
    masks = [None] * n
    if masked:  # member 1 skips its first step, member 3 two later ones
        masks[0] = torch.tensor([True, False, True, True])
        masks[2] = masks[3] = torch.tensor([True, True, True, False])
    ref_params, ref_state = _sgd_reference(params, xs, gzs, lrs, masks, 0.9)

    params = [p.clone() for p in params]
    opt = StackedOptimizer("sgd", make_optimizer_options("sgd", {}), params)
    assert opt.fused_momentum == 0.9
    ws = mlp.Workspace(params, B, SIZES[0])
    for x, gz, lr, mask in zip(xs, gzs, lrs, masks):
        ws.x.copy_(x)
        ws.forward(params, ws.x)
        if mask is not None:
            opt.hold()
        ws.backward(params, ws.x, gz, into=opt.state, beta=0.9, lr=lr)
        if mask is not None:
            opt.release(mask)
        else:
            opt.count()
    for a, b in zip([*params, *opt.state], [*ref_params, *ref_state]):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-13)
    assert opt.steps.tolist() == ([5, 4, 5, 3] if masked else [5] * E)


@pytest.mark.parametrize(
    "name,options",
    [
        ("sgd", {"momentum": 0.0}),
        ("sgd", {"weight_decay": 1e-3}),
        ("sgd", {"nesterov": True}),
        ("sgd", {"dampening": 0.1}),
        ("adam", {}),
    ],
)
def test_only_plain_momentum_sgd_is_fused(name, options):
    opt = StackedOptimizer(name, make_optimizer_options(name, options), _params())
    assert opt.fused_momentum is None


@pytest.mark.parametrize("loss", ["ce", "mse"])
def test_validation_metrics_match_a_direct_computation(loss):
    g = torch.Generator().manual_seed(3)
    params = _params()
    nv = 23
    x = torch.randn(nv, SIZES[0], generator=g, dtype=torch.float64)
    y = torch.randint(0, SIZES[-1], (nv,), generator=g)
    split = Split(x=x.numpy(), y=y.numpy(), targets=None, teacher_logits=None)
    val = DeviceSplit.of(split, torch.device("cpu"), torch.float64)
    spec = make_loss(loss)
    v = _Validation(params, val, spec, True)
    v.chunk = 10  # several chunks, the last one shorter
    acc, vloss, nll = v(params)
    z = mlp.logits(params, x)
    yb = y.expand(E, -1)
    torch.testing.assert_close(acc, (z.argmax(-1) == yb).double().mean(1), rtol=0, atol=0)
    logp = torch.log_softmax(z, -1)
    ref_nll = -logp.gather(-1, yb.unsqueeze(-1)).squeeze(-1).mean(1)
    torch.testing.assert_close(nll, ref_nll, rtol=1e-12, atol=1e-12)
    per, _ = spec.value_and_grad(z, y=yb)
    torch.testing.assert_close(vloss, per.mean(1), rtol=1e-12, atol=1e-12)
    assert math.isfinite(float(vloss.sum()))
