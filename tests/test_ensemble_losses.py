"""Each named loss: value and closed-form gradient against autograd on an independent formula."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from bcpd_sim.ensemble import LOSS_NAMES, loss_and_grad, make_loss
from bcpd_sim.errors import ConfigError

K = 5


def _inputs(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(3, 7, K, generator=g, dtype=torch.float64) * 2
    y = torch.randint(0, K, (3, 7), generator=g)
    p = torch.softmax(torch.randn(3, 7, K, generator=g, dtype=torch.float64), -1)
    p[0, 0] = torch.tensor([1.0, 0, 0, 0, 0], dtype=torch.float64)  # zeros in the target
    t = torch.randn(3, 7, K, generator=g, dtype=torch.float64) * 3
    return z, y, p, t


def _direct(name: str, opts: dict, z, y, p, t):
    """Per-sample losses written from their textbook definitions."""
    onehot = F.one_hot(y, K).double()
    if name == "ce":
        return -torch.log(torch.softmax(z, -1).gather(-1, y[..., None]))[..., 0]
    if name == "mse":
        out = ((torch.softmax(z, -1) - onehot) ** 2).sum(-1)
        return out / K if opts.get("reduction_over_classes") == "mean" else out
    if name == "mse_logits":
        out = ((z - onehot) ** 2).sum(-1)
        return out if opts.get("reduction_over_classes") == "sum" else out / K
    if name == "ls":
        eps = opts["epsilon"]
        tgt = (1 - eps) * onehot + eps / K
        return -(tgt * torch.log(torch.softmax(z, -1))).sum(-1)
    if name == "soft":
        temp = opts["temperature"]
        q = torch.softmax(z / temp, -1)
        kl = (p * (torch.log(p.clamp_min(1e-300)) - torch.log(q))).sum(-1)  # 0 log 0 = 0
        return temp**2 * kl if opts.get("scale_t2", True) else kl
    if name == "kd":
        temp, a, b = opts["temperature"], opts["alpha"], opts["beta"]
        if opts.get("hard_labels") == "teacher":  # unlabelled inputs: the teacher's argmax
            y = t.argmax(-1)
        ce = F.cross_entropy(z.reshape(-1, K), y.reshape(-1), reduction="none").view(y.shape)
        pt = torch.softmax(t / temp, -1)
        kl = F.kl_div(F.log_softmax(z / temp, -1), pt, reduction="none").sum(-1)
        return a * ce + b * temp**2 * kl
    raise AssertionError(name)


CASES = [
    ("ce", {}),
    ("mse", {}),
    ("mse", {"reduction_over_classes": "mean"}),
    ("mse_logits", {}),
    ("mse_logits", {"reduction_over_classes": "sum"}),
    ("ls", {"epsilon": 0.2}),
    ("soft", {"temperature": 1.0}),
    ("soft", {"temperature": 3.0}),
    ("soft", {"temperature": 2.0, "scale_t2": False}),
    ("kd", {"alpha": 0.1, "beta": 0.9, "temperature": 4.0}),
    ("kd", {"alpha": 1.0, "beta": 2.0, "temperature": 1.0}),
    ("kd", {"alpha": 0.1, "beta": 0.9, "temperature": 4.0, "hard_labels": "teacher"}),
]


@pytest.mark.parametrize("name,opts", CASES)
def test_loss_value_and_gradient_match_autograd(name, opts):
    z, y, p, t = _inputs()
    spec = make_loss(name, opts)
    loss, grad = loss_and_grad(spec, z, y=y, targets=p, teacher_logits=t)
    zz = z.clone().requires_grad_(True)
    ref = _direct(name, {**spec.options}, zz, y, p, t)
    (ref_grad,) = torch.autograd.grad(ref.sum(), zz)
    torch.testing.assert_close(loss, ref.detach(), rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(grad, ref_grad, rtol=1e-9, atol=1e-12)
    # the value alone (validation) is the same numbers
    assert torch.equal(spec.value(z, y=y, targets=p, teacher_logits=t), loss)


def test_every_named_loss_is_covered():
    assert {name for name, _ in CASES} == set(LOSS_NAMES)


def test_mse_and_ce_gradients_differ():
    z, y, p, t = _inputs(1)
    _, g_ce = loss_and_grad(make_loss("ce"), z, y=y)
    _, g_mse = loss_and_grad(make_loss("mse"), z, y=y)
    assert (g_ce - g_mse).abs().max() > 1e-2


def test_mean_over_classes_is_sum_over_k():
    z, y, _, _ = _inputs(2)
    ls, gs = loss_and_grad(make_loss("mse"), z, y=y)
    lm, gm = loss_and_grad(make_loss("mse", {"reduction_over_classes": "mean"}), z, y=y)
    torch.testing.assert_close(ls / K, lm)
    torch.testing.assert_close(gs / K, gm)


def test_loss_spec_records_defaults():
    assert make_loss("mse").as_dict() == {"name": "mse", "reduction_over_classes": "sum"}
    assert make_loss("kd").as_dict()["temperature"] == 4.0


@pytest.mark.parametrize(
    "name,opts,match",
    [
        ("bce", {}, "valid: ce, mse"),
        ("mse", {"reduction_over_classes": "max"}, "reduction_over_classes"),
        ("mse", {"reduction": "sum"}, "unknown option"),
        ("ls", {"epsilon": 1.5}, "epsilon"),
        ("soft", {"temperature": 0}, "temperature"),
        ("kd", {"alpha": -1}, "alpha"),
        ("kd", {"hard_labels": "drawn"}, "hard_labels"),
    ],
)
def test_bad_loss_configs(name, opts, match):
    with pytest.raises(ConfigError, match=match):
        make_loss(name, opts)


def _registry_cases():
    from bcpd_sim.ensemble.losses import LOSSES

    for name, cls in LOSSES.items():
        yield name, {}
        for options in cls.variants.values():
            yield name, dict(options)


@pytest.mark.parametrize("name,opts", list(_registry_cases()))
def test_every_registered_loss_gradient_equals_autograd_of_its_value(name, opts):
    """Over the registry itself: the hand-written gradient equals autograd of the same loss."""
    z, y, p, t = _inputs(3)
    loss = make_loss(name, opts)
    value, grad = loss.value_and_grad(z, y=y, targets=p, teacher_logits=t)
    zz = z.clone().requires_grad_(True)
    auto_value, _ = loss.value_and_grad(zz, y=y, targets=p, teacher_logits=t)
    (auto_grad,) = torch.autograd.grad(auto_value.sum(), zz)
    torch.testing.assert_close(value, auto_value.detach(), rtol=0, atol=0)
    torch.testing.assert_close(grad, auto_grad, rtol=1e-9, atol=1e-12)
    assert set(loss.needs) <= {"y", "targets", "teacher_logits"}


def test_teacher_losses_are_the_label_only_losses_and_their_variants():
    from bcpd_sim.ensemble.losses import TEACHER_LOSSES

    assert list(TEACHER_LOSSES) == ["ce", "mse", "mse_mean", "mse_logits", "ls"]
    assert TEACHER_LOSSES["mse_mean"] == ("mse", {"reduction_over_classes": "mean"})
    for base, options in TEACHER_LOSSES.values():
        assert make_loss(base, options).needs == ("y",)


def test_cifar_teacher_losses_share_the_registry_names_and_meanings():
    """bcpd_sim.vision.losses names a subset of the ensemble's teacher losses, and each name
    means the same batch-mean loss on both sides."""
    from bcpd_sim.ensemble.losses import TEACHER_LOSSES
    from bcpd_sim.vision.losses import LOSSES as VISION_LOSSES
    from bcpd_sim.vision.losses import teacher_loss

    assert set(VISION_LOSSES) <= set(TEACHER_LOSSES)
    g = torch.Generator().manual_seed(5)
    z = torch.randn(16, K, generator=g, dtype=torch.float64)
    y = torch.randint(0, K, (16,), generator=g)
    for name in VISION_LOSSES:
        base, options = TEACHER_LOSSES[name]
        per, _ = make_loss(base, options).value_and_grad(z, y=y)
        torch.testing.assert_close(teacher_loss(name)(z, y).double(), per.mean(), rtol=1e-6, atol=0)
