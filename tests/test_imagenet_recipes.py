"""The ImageNet recipes and distillation settings (mdistiller's configs) and their schedule."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from bcpd_sim.errors import ConfigError
from bcpd_sim.imagenet.recipes import get_imagenet_recipe, method_options
from bcpd_sim.vision.distill import create_distiller
from bcpd_sim.vision.recipes import get_recipe, make_optimizer, make_scheduler


def test_imagenet_recipe_is_mdistillers():
    r = get_imagenet_recipe("imagenet")
    assert (r.epochs, r.batch_size, r.lr, r.momentum, r.weight_decay) == (100, 512, 0.2, 0.9, 1e-4)
    assert r.milestones == (30, 60, 90) and r.gamma == 0.1 and r.warmup_epochs == 0
    assert r.bf16 and r.channels_last and r.lr_for("mobilenetv1") == 0.2


def test_schedule_steps_down_at_30_60_90():
    r = get_imagenet_recipe("imagenet")
    opt = make_optimizer([torch.nn.Parameter(torch.zeros(1))], r, "resnet18")
    sched = make_scheduler(opt, r, steps_per_epoch=3)
    lrs = []
    for _ in range(100 * 3):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    per_epoch = lrs[::3]
    for epoch, expected in [(0, 0.2), (29, 0.2), (30, 0.02), (59, 0.02), (60, 0.002), (90, 2e-4)]:
        assert per_epoch[epoch] == pytest.approx(expected)


def test_overrides_and_tables_stay_apart():
    assert get_imagenet_recipe("imagenet", epochs=10).milestones == (3, 6, 9)
    with pytest.raises(ConfigError, match="valid: imagenet, tiny"):
        get_imagenet_recipe("standard")
    with pytest.raises(ConfigError, match="unknown recipe 'imagenet'"):
        get_recipe("imagenet")


def test_kd_options_give_half_ce_half_kl_at_t1():
    opts = method_options("kd", "resnet34", "resnet18")
    net = torch.nn.Linear(2, 2)
    kd = create_distiller("kd", net, net, **opts)
    gen = torch.Generator().manual_seed(0)
    s, t = torch.randn(6, 5, generator=gen), torch.randn(6, 5, generator=gen)
    y = torch.randint(0, 5, (6,), generator=gen)
    total, _ = kd(s, t, y)
    kl = F.kl_div(F.log_softmax(s, 1), F.log_softmax(t, 1), log_target=True, reduction="batchmean")
    torch.testing.assert_close(total, 0.5 * F.cross_entropy(s, y) + 0.5 * kl)


@pytest.mark.parametrize(
    "teacher, student, beta", [("resnet34", "resnet18", 0.5), ("resnet50", "mobilenetv1", 2.0)]
)
def test_dkd_options_per_pair(teacher, student, beta):
    opts = method_options("dkd", teacher, student)
    assert opts == {
        "ce_weight": 1.0,
        "alpha": 1.0,
        "beta": beta,
        "temperature": 1.0,
        "warmup_epochs": 1.0,
    }
    net = torch.nn.Linear(2, 2)
    dkd = create_distiller("dkd", net, net, teacher_arch=teacher, **opts)
    assert dkd.hparams["beta"] == beta and dkd.warmup_factor(0) == 1.0


def test_unknown_pair_and_method():
    with pytest.raises(ConfigError, match="--option beta=VALUE"):
        method_options("dkd", "resnet50", "resnet18")
    assert method_options("dkd", "resnet50", "resnet18", {"beta": 1.5})["beta"] == 1.5
    with pytest.raises(ConfigError, match="valid: kd, dkd"):
        method_options("crd", "resnet34", "resnet18")
