"""Stacked optimisers and schedules against torch.optim run member by member."""

from __future__ import annotations

import pytest
import torch

from bcpd_sim.ensemble.optim import (
    StackedOptimizer,
    lr_factor,
    make_optimizer_options,
    make_schedule_options,
)
from bcpd_sim.errors import ConfigError

CASES = [
    ("sgd", {"momentum": 0.0}, torch.optim.SGD, {}),
    ("sgd", {}, torch.optim.SGD, {"momentum": 0.9}),
    (
        "sgd",
        {"nesterov": True, "weight_decay": 1e-2},
        torch.optim.SGD,
        {"momentum": 0.9, "nesterov": True, "weight_decay": 1e-2},
    ),
    (
        "sgd",
        {"dampening": 0.3, "weight_decay": 1e-3},
        torch.optim.SGD,
        {"momentum": 0.9, "dampening": 0.3, "weight_decay": 1e-3},
    ),
    ("adam", {"weight_decay": 1e-2}, torch.optim.Adam, {"weight_decay": 1e-2}),
    ("adamw", {}, torch.optim.AdamW, {"weight_decay": 0.01}),
]


@pytest.mark.parametrize("first_masked", [False, True])
@pytest.mark.parametrize("name,opts,torch_cls,torch_kw", CASES)
def test_matches_torch_optim_per_member_lr_and_mask(name, opts, torch_cls, torch_kw, first_masked):
    g = torch.Generator().manual_seed(0)
    e = 3
    lrs = [0.1, 0.01, 0.003]
    w = torch.randn(e, 4, 2, generator=g, dtype=torch.float64)
    b = torch.randn(e, 2, generator=g, dtype=torch.float64)
    grads = [
        (
            torch.randn(e, 4, 2, generator=g, dtype=torch.float64),
            torch.randn(e, 2, generator=g, dtype=torch.float64),
        )
        for _ in range(6)
    ]
    # Member 2 skips steps 1 and 4 (an inactive member must not move, state included).
    # With ``first_masked`` member 1 also skips step 0, so its first step is another's second
    # (SGD's dampening and Adam's bias correction count each member's own steps).
    masks = [
        torch.tensor([True, False, True]) if first_masked else None,
        torch.tensor([True, True, False]),
        None,
        None,
        torch.tensor([True, True, False]),
        None,
    ]
    ref = []
    for m in range(e):
        pw, pb = w[m].clone().requires_grad_(), b[m].clone().requires_grad_()
        o = torch_cls([pw, pb], lr=lrs[m], **torch_kw)
        for gs, mask in zip(grads, masks):
            if mask is not None and not mask[m]:
                continue
            pw.grad, pb.grad = gs[0][m].clone(), gs[1][m].clone()
            o.step()
        ref.append((pw.detach(), pb.detach()))
    params = [w.clone(), b.clone()]
    opt = StackedOptimizer(name, make_optimizer_options(name, opts), params)
    lr = torch.tensor(lrs, dtype=torch.float64)
    for gs, mask in zip(grads, masks):
        opt.step(list(gs), lr, mask)
    for m in range(e):
        torch.testing.assert_close(params[0][m], ref[m][0], rtol=1e-12, atol=1e-14)
        torch.testing.assert_close(params[1][m], ref[m][1], rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize(
    "name,opts,sched,kw",
    [
        ("constant", {}, None, {}),
        ("cosine", {}, torch.optim.lr_scheduler.CosineAnnealingLR, {"T_max": 7}),
        (
            "cosine",
            {"min_factor": 0.1},
            torch.optim.lr_scheduler.CosineAnnealingLR,
            {"T_max": 7, "eta_min": 0.05},
        ),
        (
            "multistep",
            {"milestones": [2, 5], "gamma": 0.2},
            torch.optim.lr_scheduler.MultiStepLR,
            {"milestones": [2, 5], "gamma": 0.2},
        ),
    ],
)
def test_schedules_match_torch(name, opts, sched, kw):
    base = 0.5
    o = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=base)
    s = sched(o, **kw) if sched else None
    full = make_schedule_options(name, opts)
    for epoch in range(7):
        assert base * lr_factor(name, full, epoch, 7) == pytest.approx(
            o.param_groups[0]["lr"], rel=1e-12
        )
        if s:
            o.step()
            s.step()


def test_bad_optimizer_and_schedule_names():
    with pytest.raises(ConfigError, match="valid: sgd, adam, adamw"):
        make_optimizer_options("rmsprop")
    with pytest.raises(ConfigError, match="valid: constant, cosine, multistep"):
        make_schedule_options("step")
    with pytest.raises(ConfigError, match="unknown option"):
        make_optimizer_options("sgd", {"betas": (0.9, 0.99)})
    with pytest.raises(ConfigError, match="momentum"):
        make_optimizer_options("sgd", {"momentum": 1.5})
    with pytest.raises(ConfigError, match="nesterov"):
        make_optimizer_options("sgd", {"momentum": 0.0, "nesterov": True})
