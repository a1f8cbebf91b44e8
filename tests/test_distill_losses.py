"""Each distillation loss on fixed tensors against a direct float64 numpy formula written here."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from bcpd_sim.errors import ConfigError
from bcpd_sim.vision.distill import create_distiller, list_methods
from bcpd_sim.vision.distill.dkd import default_beta, nckd_loss, tckd_loss
from bcpd_sim.vision.distill.kd import kd_loss
from bcpd_sim.vision.models import Features

T = 4.0


def _softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _ce(z, y):
    p = _softmax(z)
    return float(np.mean(-np.log(p[np.arange(len(y)), y])))


def _smooth_l1(a, b):
    d = np.abs(a - b)
    return float(np.mean(np.where(d < 1.0, 0.5 * d**2, d - 0.5)))


@pytest.fixture()
def batch():
    g = torch.Generator().manual_seed(0)
    s = torch.randn(6, 10, generator=g, dtype=torch.float64) * 3
    t = torch.randn(6, 10, generator=g, dtype=torch.float64) * 3
    y = torch.tensor([0, 3, 9, 3, 5, 1])
    s_blocks = [torch.randn(6, 4, 8, 8, generator=g, dtype=torch.float64) for _ in range(3)]
    s_emb = torch.randn(6, 7, generator=g, dtype=torch.float64)
    t_blocks = [torch.randn(6, c, 8, 8, generator=g, dtype=torch.float64) for c in (5, 6, 8)]
    t_emb = torch.randn(6, 9, generator=g, dtype=torch.float64)
    s_stem, t_stem = (torch.randn(6, 3, 8, 8, generator=g, dtype=torch.float64) for _ in range(2))
    sf = Features(s_stem, s_blocks, s_blocks, s_emb)
    tf = Features(t_stem, t_blocks, t_blocks, t_emb)
    return s, t, y, sf, tf


def _np(x):
    return x.detach().numpy().astype(np.float64)


class _Stub(nn.Module):
    """Satisfies the model interface for distillers that size connectors from the models."""

    def __init__(self, channels):
        super().__init__()
        self.convs = nn.ModuleList(nn.Conv2d(3, c, 1) for c in channels)

    def forward(self, x, return_features=False):
        blocks = [conv(x) for conv in self.convs]
        emb = blocks[-1].mean(dim=(2, 3))
        logits = emb[:, :2]
        return (logits, Features(x, blocks, blocks, emb)) if return_features else logits


def test_registry_lists_required_methods():
    assert {"kd", "dkd", "at", "pkt", "sp", "rkd", "fitnet"} <= set(list_methods())
    with pytest.raises(ConfigError, match="unknown distillation method 'nope'"):
        create_distiller("nope", None, None)
    with pytest.raises(ConfigError, match="unknown option"):
        create_distiller("kd", None, None, tau=3)


def test_kd_matches_formula(batch):
    s, t, y, _, _ = batch
    ps, pt = _softmax(_np(s) / T), _softmax(_np(t) / T)
    kl = np.mean(np.sum(pt * np.log(pt / ps), axis=1)) * T**2
    assert float(kd_loss(s, t, T)) == pytest.approx(kl, rel=1e-12)
    total, parts = create_distiller("kd", None, None)(s, t, y)
    assert float(total) == pytest.approx(0.1 * _ce(_np(s), y.numpy()) + 0.9 * kl, rel=1e-12)
    assert set(parts) == {"ce", "kd"}


def _tckd_nckd_np(s, t, y):
    ps, pt = _softmax(s / T), _softmax(t / T)
    n = len(y)
    tck, nck = np.zeros(n), np.zeros(n)
    for i in range(n):
        bs = np.array([ps[i, y[i]], 1 - ps[i, y[i]]])
        bt = np.array([pt[i, y[i]], 1 - pt[i, y[i]]])
        tck[i] = np.sum(bt * np.log(bt / bs)) * T**2
        others = np.arange(s.shape[1]) != y[i]
        qs = ps[i, others] / ps[i, others].sum()
        qt = pt[i, others] / pt[i, others].sum()
        nck[i] = np.sum(qt * np.log(qt / qs)) * T**2
    return tck, nck, pt[np.arange(n), y]


def test_dkd_parts_match_formula_and_recombine_into_kd(batch):
    s, t, y, _, _ = batch
    tck, nck, pt_target = _tckd_nckd_np(_np(s), _np(t), y.numpy())
    got_t = tckd_loss(s, t, y, T, reduction="none").numpy()
    got_n = nckd_loss(s, t, y, T, reduction="none").numpy()
    np.testing.assert_allclose(got_t, tck, rtol=1e-10)
    np.testing.assert_allclose(got_n, nck, rtol=1e-10)
    # The DKD paper's decomposition, per sample: KD = TCKD + (1 - p_t^T) NCKD.
    kd = kd_loss(s, t, T, reduction="none").numpy()
    np.testing.assert_allclose(kd, got_t + (1 - pt_target) * got_n, rtol=1e-10)


def test_dkd_total_warmup_and_beta_by_teacher(batch):
    s, t, y, _, _ = batch
    tck, nck, _ = _tckd_nckd_np(_np(s), _np(t), y.numpy())
    ce = _ce(_np(s), y.numpy())
    d = create_distiller("dkd", None, None, teacher_arch="resnet32x4")
    assert d.hparams["beta"] == 8.0
    for epoch, factor in [(0, 1 / 20), (9, 10 / 20), (19, 1.0), (200, 1.0)]:
        total, _ = d(s, t, y, epoch=epoch)
        want = ce + factor * (1.0 * tck.mean() + 8.0 * nck.mean())
        assert float(total) == pytest.approx(want, rel=1e-10)
    assert default_beta("resnet56") == default_beta("resnet110") == 2.0
    assert default_beta("wrn_40_2") == default_beta("vgg13") == 6.0
    assert create_distiller("dkd", None, None, teacher_arch="resnet56").hparams["beta"] == 2.0
    assert create_distiller("dkd", None, None, teacher_arch="vgg13", beta=3).hparams["beta"] == 3.0


def test_dkd_gradients_are_finite():
    s = torch.randn(4, 5, requires_grad=True)
    t = torch.randn(4, 5)
    y = torch.tensor([0, 1, 2, 4])
    (tckd_loss(s, t, y) + nckd_loss(s, t, y)).backward()
    assert torch.isfinite(s.grad).all() and s.grad.abs().sum() > 0


def _at_map(f):
    a = np.mean(f**2, axis=1).reshape(len(f), -1)
    return a / np.linalg.norm(a, axis=1, keepdims=True)


def test_at_matches_formula(batch):
    s, t, y, sf, tf = batch
    want = sum(
        np.mean((_at_map(_np(a)) - _at_map(_np(b))) ** 2) for a, b in zip(sf.blocks, tf.blocks)
    )
    total, parts = create_distiller("at", None, None)(s, t, y, sf, tf)
    assert float(parts["at"]) == pytest.approx(want, rel=1e-10)
    assert float(total.detach()) == pytest.approx(_ce(_np(s), y.numpy()) + 1000 * want, rel=1e-10)


def test_at_pools_mismatched_resolutions():
    fs = [torch.rand(2, 3, 8, 8, dtype=torch.float64)]
    ft = [torch.rand(2, 4, 4, 4, dtype=torch.float64)]
    pooled = _np(fs[0]).reshape(2, 3, 4, 2, 4, 2).mean(axis=(3, 5))
    want = np.mean((_at_map(pooled) - _at_map(_np(ft[0]))) ** 2)
    from bcpd_sim.vision.distill.at import at_loss

    assert float(at_loss(fs, ft)) == pytest.approx(want, rel=1e-10)


def _pkt_np(es, et, eps=1e-7):
    def cond(x):
        x = x / (np.linalg.norm(x, axis=1, keepdims=True) + eps)
        c = (x @ x.T + 1) / 2
        return c / c.sum(axis=1, keepdims=True)

    ps, pt = cond(es), cond(et)
    return float(np.mean(pt * np.log((pt + eps) / (ps + eps))))


def test_pkt_matches_formula(batch):
    s, t, y, sf, tf = batch
    want = _pkt_np(_np(sf.embedding), _np(tf.embedding))
    total, parts = create_distiller("pkt", None, None)(s, t, y, sf, tf)
    assert float(parts["pkt"]) == pytest.approx(want, rel=1e-9)
    assert float(total) == pytest.approx(_ce(_np(s), y.numpy()) + 30000 * want, rel=1e-9)


def test_sp_matches_formula(batch):
    s, t, y, sf, tf = batch

    def gram(f):
        f = f.reshape(len(f), -1)
        g = f @ f.T
        return g / np.linalg.norm(g, axis=1, keepdims=True)

    b = len(y)
    want = np.sum((gram(_np(tf.blocks[-1])) - gram(_np(sf.blocks[-1]))) ** 2) / b**2
    total, parts = create_distiller("sp", None, None)(s, t, y, sf, tf)
    assert float(parts["sp"]) == pytest.approx(want, rel=1e-10)
    assert float(total) == pytest.approx(_ce(_np(s), y.numpy()) + 3000 * want, rel=1e-10)


def test_rkd_matches_formula(batch):
    s, t, y, sf, tf = batch
    es, et = _np(sf.embedding), _np(tf.embedding)
    n = len(es)

    def dist(e):
        d = np.array([[np.linalg.norm(e[i] - e[j]) for j in range(n)] for i in range(n)])
        return d / d[d > 0].mean()

    def angles(e):
        out = np.zeros((n, n, n))
        for i in range(n):
            for j in range(n):
                for k in range(n):
                    u, v = e[j] - e[i], e[k] - e[i]
                    nu, nv = np.linalg.norm(u), np.linalg.norm(v)
                    out[i, j, k] = 0.0 if nu == 0 or nv == 0 else u @ v / (nu * nv)
        return out

    want_d = _smooth_l1(dist(es), dist(et))
    want_a = _smooth_l1(angles(es), angles(et))
    total, parts = create_distiller("rkd", None, None)(s, t, y, sf, tf)
    assert float(parts["rkd_distance"]) == pytest.approx(want_d, rel=1e-7)
    assert float(parts["rkd_angle"]) == pytest.approx(want_a, rel=1e-7)
    want = _ce(_np(s), y.numpy()) + 25 * want_d + 50 * want_a
    assert float(total) == pytest.approx(want, rel=1e-7)


def test_fitnet_matches_formula_and_exposes_connector(batch):
    s, t, y, sf, tf = batch
    torch.manual_seed(0)
    d = create_distiller("fitnet", _Stub((5, 6, 8)), _Stub((4, 4, 4))).double()
    assert d.hint_layer == 2  # RepDistiller's feat[2]: the second stage's output
    params = d.extra_parameters()
    assert sum(p.numel() for p in params) == 4 * 6 + 2 * 6  # 1x1 conv + BN weight and bias
    with torch.no_grad():
        d.connector.bn.weight.uniform_(0.5, 1.5)
        d.connector.bn.bias.uniform_(-0.2, 0.2)
    w = _np(d.connector.conv.weight)[:, :, 0, 0]
    x = np.einsum("oc,nchw->nohw", w, _np(sf.blocks[1]))
    mu, var = x.mean(axis=(0, 2, 3), keepdims=True), x.var(axis=(0, 2, 3), keepdims=True)
    gamma = _np(d.connector.bn.weight)[None, :, None, None]
    beta = _np(d.connector.bn.bias)[None, :, None, None]
    reg = np.maximum((x - mu) / np.sqrt(var + 1e-5) * gamma + beta, 0)
    want = np.mean((reg - _np(tf.blocks[1])) ** 2)
    total, parts = d(s, t, y, sf, tf)
    assert float(parts["fitnet"].detach()) == pytest.approx(want, rel=1e-9)
    assert float(total.detach()) == pytest.approx(_ce(_np(s), y.numpy()) + 100 * want, rel=1e-9)
    total.backward()
    assert all(p.grad is not None for p in params)


def test_feature_methods_can_add_kd(batch):
    s, t, y, sf, tf = batch
    _, plain = create_distiller("sp", None, None)(s, t, y, sf, tf)
    total, parts = create_distiller("sp", None, None, kd_weight=0.9)(s, t, y, sf, tf)
    want = float(plain["ce"] + 3000 * plain["sp"] + 0.9 * kd_loss(s, t, T))
    assert float(total) == pytest.approx(want, rel=1e-12)


@pytest.mark.parametrize(
    ("teacher", "student"),
    [
        ("resnet56", "resnet20"),
        ("vgg13", "vgg8"),
        ("wrn_40_2", "mobilenetv2"),
        ("resnet8x4", "shufflenetv1"),
    ],
)
def test_fitnet_hint_is_repdistillers_second_stage_for_every_architecture(teacher, student):
    """RepDistiller's train_student.py: hint_layer = 2 indexes feat = [f0, f1, f2, ...], i.e. the
    output of the second stage of both models, whatever the architecture."""
    from bcpd_sim.vision.models import create_model

    t, s = create_model(teacher, num_classes=10), create_model(student, num_classes=10)
    d = create_distiller("fitnet", t, s)
    assert d.hint_layer == 2
    assert d.connector.conv.in_channels == s.feature_channels[1]
    assert d.connector.conv.out_channels == t.feature_channels[1]
    with pytest.raises(ConfigError, match=r"hint_layer must be an integer in \[0, 4\]"):
        create_distiller("fitnet", create_model("vgg8"), create_model("vgg8"), hint_layer=5)
