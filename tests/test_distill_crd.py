"""CRD: the NCE loss, Z and memory-bank update against a direct numpy computation; class-aware
negatives; bad options; a tiny end-to-end distillation that resumes exactly."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from bcpd_sim.errors import ConfigError
from bcpd_sim.vision.distill import create_distiller
from bcpd_sim.vision.distill.crd import ClassNegativeSampler
from bcpd_sim.vision.models import create_model

N, B, K, EPS = 20, 4, 6, 1e-7


class FixedNegatives(nn.Module):
    def __init__(self, neg):
        super().__init__()
        self.neg = neg

    def forward(self, targets, k):
        assert k == self.neg.shape[1]
        return self.neg


def _np(t):
    return t.detach().double().numpy()


def _numpy_crd(e_s, e_t, w_s, b_s, w_t, b_t, mem_s, mem_t, cidx, index, T, m, n, z=None):
    """RepDistiller's CRDLoss written out in numpy: returns (loss, z, new mem_s, new mem_t)."""
    f_s = e_s @ w_s.T + b_s
    f_s /= np.linalg.norm(f_s, axis=1, keepdims=True)
    f_t = e_t @ w_t.T + b_t
    f_t /= np.linalg.norm(f_t, axis=1, keepdims=True)
    k = cidx.shape[1] - 1
    out_s = np.exp(np.einsum("bkd,bd->bk", mem_t[cidx], f_s) / T)  # student anchor, teacher bank
    out_t = np.exp(np.einsum("bkd,bd->bk", mem_s[cidx], f_t) / T)
    if z is None:
        z = (out_s.mean() * n, out_t.mean() * n)
    loss = 0.0
    for out in (out_s / z[0], out_t / z[1]):
        pn = k / n
        pos = np.log(out[:, 0] / (out[:, 0] + pn + EPS))
        neg = np.log(pn / (out[:, 1:] + pn + EPS))
        loss += -(pos.sum() + neg.sum()) / len(out)
    new = []
    for mem, f in ((mem_s, f_s), (mem_t, f_t)):
        mem = mem.copy()
        rows = mem[index] * m + f * (1 - m)
        mem[index] = rows / np.linalg.norm(rows, axis=1, keepdims=True)
        new.append(mem)
    return loss, z, new[0], new[1]


@pytest.fixture(scope="module")
def pair():
    torch.manual_seed(0)
    return create_model("resnet8", num_classes=5), create_model("wrn_16_1", num_classes=5)


# N <= B (1 + K): one matrix product, else gathered rows (also forced, as RepDistiller does)
@pytest.mark.parametrize("K, gather", [(K, None), (3, None), (K, True)])
def test_crd_loss_and_bank_update_match_numpy(pair, K, gather):
    teacher, student = pair
    labels = np.arange(N) % 5
    d = create_distiller("crd", teacher, student, n_data=N, labels=labels, nce_k=K, feat_dim=8)
    d.gather_rows = gather
    assert d.hparams["crd_weight"] == 0.8 and d.hparams["ce_weight"] == 1.0
    assert d.hparams["nce_t"] == 0.07 and d.hparams["nce_m"] == 0.5
    g = torch.Generator().manual_seed(1)
    s, t = torch.randn(B, 5, generator=g), torch.randn(B, 5, generator=g)
    y = torch.tensor([0, 1, 2, 3])
    index = torch.tensor([0, 6, 12, 18])  # labels 0, 1, 2, 3
    z = None
    for _step in range(2):  # Z is fixed by the first batch and kept for the second
        e_s = torch.randn(B, student.embedding_dim, generator=g)
        e_t = torch.randn(B, teacher.embedding_dim, generator=g)
        neg = torch.randint(0, N, (B, K), generator=g)
        d.sampler = FixedNegatives(neg)
        cidx = torch.cat([index[:, None], neg], 1).numpy()
        mem_s, mem_t = _np(d.memory_s), _np(d.memory_t)
        want, z, new_s, new_t = _numpy_crd(
            _np(e_s), _np(e_t),
            _np(d.embed_s.linear.weight), _np(d.embed_s.linear.bias),
            _np(d.embed_t.linear.weight), _np(d.embed_t.linear.bias),
            mem_s, mem_t, cidx, index.numpy(), 0.07, 0.5, N, z,
        )  # fmt: skip
        sf, tf = SimpleNamespace(embedding=e_s), SimpleNamespace(embedding=e_t)
        total, parts = d(s, t, y, sf, tf, epoch=0, index=index)
        assert float(parts["crd"].detach()) == pytest.approx(want, rel=1e-5)
        ce = float(torch.nn.functional.cross_entropy(s, y))
        assert float(total.detach()) == pytest.approx(ce + 0.8 * want, rel=1e-5)
        np.testing.assert_allclose(_np(d.z), z, rtol=1e-5)
        np.testing.assert_allclose(_np(d.memory_s), new_s, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(_np(d.memory_t), new_t, rtol=1e-5, atol=1e-6)
    total.backward()
    assert d.embed_s.linear.weight.grad is not None and d.embed_t.linear.weight.grad is not None
    assert not d.memory_s.requires_grad
    assert {"memory_s", "memory_t", "z"} <= set(d.state_dict())  # checkpointed with the run


def test_negatives_come_from_other_classes_uniformly():
    torch.manual_seed(0)
    labels = np.array([0] * 3 + [1] * 5 + [2] * 2)
    sampler = ClassNegativeSampler(labels, len(labels))
    targets = torch.tensor([0, 1, 2]).repeat_interleave(2000)
    neg = sampler(targets, 7)
    for c in range(3):
        drawn = neg[targets == c].flatten()
        assert (torch.as_tensor(labels)[drawn] != c).all()
        others = np.flatnonzero(labels != c)
        freq = np.bincount(drawn.numpy(), minlength=len(labels))[others] / drawn.numel()
        np.testing.assert_allclose(freq, 1 / len(others), atol=0.015)  # 14,000 draws each
    relax = ClassNegativeSampler(None, 10)(torch.zeros(500, dtype=torch.long), 4)
    assert set(relax.flatten().tolist()) == set(range(10))


def test_bad_options(pair):
    teacher, student = pair
    with pytest.raises(ConfigError, match="n_data"):
        create_distiller("crd", teacher, student)
    with pytest.raises(ConfigError, match="nce_k"):
        create_distiller("crd", teacher, student, n_data=10, nce_k=2.5)
    with pytest.raises(ConfigError, match="labels"):
        create_distiller("crd", teacher, student, n_data=10, labels=[0, 1])
    d = create_distiller("crd", teacher, student, n_data=10, nce_k=4)
    e = SimpleNamespace(embedding=torch.randn(2, 64))
    with pytest.raises(ConfigError, match="index"):
        d(torch.randn(2, 5), torch.randn(2, 5), torch.tensor([0, 1]), e, e)


def test_crd_distils_end_to_end_and_resumes_exactly(tmp_path):
    from bcpd_sim.vision.distill.trainer import DistillConfig, distill
    from bcpd_sim.vision.train import TeacherConfig, train_teacher

    tiny = dict(
        recipe="tiny", device="cpu", train_limit=80, val_size=16, test_limit=32, batch_size=32
    )
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        teacher = tmp_path / "teacher"
        train_teacher(
            TeacherConfig(
                out=str(teacher), arch="resnet8", data="synthetic", num_classes=10, epochs=1, **tiny
            )
        )

        def cfg(out):
            return DistillConfig(
                out=str(tmp_path / out), teacher=str(teacher / "checkpoints" / "last.pt"),
                student="resnet8", method="crd", method_options={"nce_k": 64}, epochs=2, **tiny,
            )  # fmt: skip

        full = distill(cfg("a"))
        assert full["method_hparams"]["nce_k"] == 64 and full["method_hparams"]["crd_weight"] == 0.8

        class Stop(Exception):
            pass

        def stop(epoch, row):
            if epoch == 1:
                raise Stop

        with pytest.raises(Stop):
            distill(cfg("b"), on_epoch_end=stop)
        resumed = distill(cfg("b"))
    finally:
        torch.set_num_threads(before)
    a = pd.read_csv(tmp_path / "a" / "metrics.csv")
    b = pd.read_csv(tmp_path / "b" / "metrics.csv")
    pd.testing.assert_series_equal(a["train_loss"], b["train_loss"])  # banks, Z and RNG resumed
    assert resumed["test_acc_last"] == full["test_acc_last"]
