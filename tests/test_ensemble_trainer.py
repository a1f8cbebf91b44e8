"""The vectorised ensemble trainer: independence of members, agreement with a plain
nn.Module + torch.optim loop, the loss actually used, selection, and accuracy on an easy mixture."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from bcpd_sim.ensemble import MemberSpec, permutations, train
from bcpd_sim.ensemble.mlp import init_member


def _toy(n=240, d=6, k=3, seed=0):
    rng = np.random.default_rng(seed)
    mu = rng.normal(size=(k, d)) * 1.5
    y = rng.integers(0, k, n)
    x = mu[y] + rng.normal(size=(n, d))
    return x, y


@pytest.fixture(scope="module")
def easy():
    """An easy mixture: K = 3, delta = 1.5 (Bayes accuracy about 94%)."""
    from bcpd_sim.mixtures import IsotropicGaussianMixture

    mix = IsotropicGaussianMixture.lattice(num_classes=3, dim=30, delta=1.5, noise_var=6.0, seed=0)
    return mix.sample(1000, seed=1), mix.sample(500, seed=2), mix.sample(3000, seed=3)


def _torch_mlp(seed: int, sizes: list[int]) -> torch.nn.Sequential:
    """A plain torch ReLU MLP, default-initialised after ``torch.manual_seed(seed)``."""
    torch.manual_seed(seed)
    layers: list[torch.nn.Module] = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [torch.nn.Linear(a, b), torch.nn.ReLU()]
    return torch.nn.Sequential(*layers[:-1])


def test_init_equals_torch_default_initialisation():
    ref = _torch_mlp(7, [30, 128, 128, 10])
    mine = init_member(7, [30, 128, 128, 10])
    for i, lin in enumerate([ref[0], ref[2], ref[4]]):
        assert torch.equal(mine[2 * i], lin.weight.detach())
        assert torch.equal(mine[2 * i + 1], lin.bias.detach())


def test_permutations_per_member():
    p = permutations([3, 5, 3], 0, [50, 40, 50])
    assert sorted(p[0].tolist()) == list(range(50))
    assert sorted(p[1, :40].tolist()) == list(range(40))
    assert torch.equal(p[0], p[2])  # same seed, same order, whatever the neighbours
    assert torch.equal(p[1, :40], permutations([5], 0, [40])[0])
    assert not torch.equal(p[0], permutations([3], 1, [50])[0])  # new order each epoch
    assert not torch.equal(p[0], p[1, :40].new_tensor(range(50)))


@pytest.fixture(params=[1, None], ids=["1thread", "default_threads"])
def threads(request):
    before = torch.get_num_threads()
    if request.param:
        torch.set_num_threads(request.param)
    yield request.param
    torch.set_num_threads(before)


def test_member_inside_ensemble_equals_member_alone(threads):
    """Bit for bit with one CPU thread; with several, multi-threaded matmuls and reductions may
    split work differently for different ensemble sizes, so agreement is to float32 rounding."""
    x, y = _toy()
    xv, yv = _toy(n=100, seed=1)
    specs = [
        MemberSpec(seed=0),
        MemberSpec(seed=1, lr=0.03, epochs=2),
        MemberSpec(seed=2, n_train=150),
        MemberSpec(seed=3, width=(16,)),
        MemberSpec(seed=4, lr=0.002, width=(16,), n_train=200, epochs=3),
    ]
    kw = dict(
        loss="mse",
        x_val=xv,
        y_val=yv,
        lr=0.01,
        epochs=4,
        width=(32, 32),
        batch_size=32,
        schedule="cosine",
    )
    ens = train(x, y, members=specs, **kw)
    q = ens.predict_proba(xv)
    assert q.shape == (5, 100, 3)
    for m, spec in enumerate(specs):
        alone = train(x, y, members=[spec], **kw)
        tol = 0.0 if threads == 1 else 1e-6
        for a, b in zip(ens.member_parameters(m), alone.member_parameters(0)):
            torch.testing.assert_close(a, b, rtol=0, atol=tol)
        np.testing.assert_allclose(q[m], alone.predict_proba(xv)[0], rtol=0, atol=tol)
        h = ens.history[ens.history.member == m].reset_index(drop=True)
        h1 = alone.history.assign(member=m)
        np.testing.assert_allclose(
            h[["train_loss", "val_acc"]], h1[["train_loss", "val_acc"]], rtol=1e-5
        )
        assert ens.selected_epoch[m] == alone.selected_epoch[0]
    assert ens.history.groupby("member").epoch.max().tolist() == [4, 2, 4, 4, 3]


def test_seeded_runs_reproduce_exactly_on_cpu():
    x, y = _toy()
    a = train(x, y, members=3, epochs=2, lr=0.01, width=(16,))
    b = train(x, y, members=3, epochs=2, lr=0.01, width=(16,))
    assert np.array_equal(a.predict_logits(x), b.predict_logits(x))


def _direct_loss(name, z, yb, tb):
    onehot = F.one_hot(yb, z.shape[-1]).float()
    if name == "ce":
        return F.cross_entropy(z, yb)
    if name == "mse":
        return ((torch.softmax(z, -1) - onehot) ** 2).sum(-1).mean()
    if name == "mse_mean":  # the paper code's MSE: mean over the batch and the classes
        return F.mse_loss(torch.softmax(z, -1), onehot)
    if name == "mse_logits":
        return F.mse_loss(z, onehot)
    if name == "soft":
        return F.kl_div(F.log_softmax(z, -1), tb, reduction="batchmean")
    raise AssertionError(name)


@pytest.mark.parametrize(
    "loss,options,direct",
    [
        ("ce", None, "ce"),
        ("mse", None, "mse"),
        ("mse", {"reduction_over_classes": "mean"}, "mse_mean"),
        ("mse_logits", None, "mse_logits"),
        ("soft", None, "soft"),
    ],
)
def test_matches_plain_module_loop_with_the_named_loss(loss, options, direct):
    """The paper's way (nn.Module, autograd, torch.optim.SGD) on the same order and init."""
    x, y = _toy(n=150)
    k = 3
    soft = np.full((150, k), 1 / k) * 0.5 + np.eye(k)[y] * 0.5 if loss == "soft" else None
    ens = train(
        x,
        y,
        members=[11],
        loss=loss,
        loss_options=options,
        targets=soft,
        lr=0.02,
        epochs=3,
        width=(16, 16),
    )
    net = _torch_mlp(11, [6, 16, 16, k])
    opt = torch.optim.SGD(net.parameters(), lr=0.02, momentum=0.9)
    xt, yt = torch.tensor(x, dtype=torch.float32), torch.tensor(y)
    st = torch.tensor(soft, dtype=torch.float32) if soft is not None else None
    for epoch in range(3):
        order = permutations([11], epoch, [150])[0]
        for s in range(0, 150, 32):
            idx = order[s : s + 32]
            opt.zero_grad()
            _direct_loss(
                direct, net(xt[idx]), yt[idx], st[idx] if st is not None else None
            ).backward()
            opt.step()
    for a, b in zip(net.parameters(), ens.member_module(0).parameters()):
        torch.testing.assert_close(a.detach(), b.detach(), rtol=1e-5, atol=1e-6)
    assert ens.config["loss"]["name"] == loss
    if options:
        assert ens.config["loss"]["reduction_over_classes"] == "mean"


def test_per_member_targets_go_to_their_member():
    x, y = _toy(n=120)
    rng = np.random.default_rng(5)
    soft = rng.dirichlet(np.ones(3), size=(2, 120))
    teach = rng.normal(size=(2, 120, 3))
    kw = dict(epochs=2, lr=0.02, width=(8,))
    both = train(x, y, members=[0, 1], loss="soft", targets=soft, **kw)
    kd = train(x, y, members=[0, 1], loss="kd", teacher_logits=teach, **kw)
    for m in range(2):
        alone = train(x, y, members=[m], loss="soft", targets=soft[m], **kw)
        np.testing.assert_allclose(both.predict_logits(x)[m], alone.predict_logits(x)[0], atol=1e-5)
        alone = train(x, y, members=[m], loss="kd", teacher_logits=teach[m], **kw)
        np.testing.assert_allclose(kd.predict_logits(x)[m], alone.predict_logits(x)[0], atol=1e-5)


def test_mse_and_ce_train_different_models_and_record_the_loss():
    x, y = _toy()
    ce = train(x, y, members=2, loss="ce", epochs=2, lr=0.01, width=(16,))
    mse = train(x, y, members=2, loss="mse", epochs=2, lr=0.01, width=(16,))
    assert np.abs(ce.predict_proba(x) - mse.predict_proba(x)).max() > 1e-3
    assert ce.config["loss"] == {"name": "ce"}
    assert mse.config["loss"] == {"name": "mse", "reduction_over_classes": "sum"}
    assert set(mse.evaluate(x, y=y)["loss"]) == {"mse"}


@pytest.mark.parametrize("select", ["best_val_acc", "best_val_loss", "last"])
def test_checkpoint_selection(select):
    x, y = _toy(seed=3)
    xv, yv = _toy(n=100, seed=4)
    ens = train(
        x,
        y,
        members=[0, 1, {"seed": 2, "epochs": 3}],
        x_val=xv,
        y_val=yv,
        lr=0.05,
        epochs=5,
        width=(8,),
        select=select,
    )
    assert ens.selection_rule == select and set(ens.selection.rule) == {select}
    for m in range(3):
        h = ens.history[ens.history.member == m]
        if select == "best_val_acc":
            want = int(h.epoch.iloc[int(np.argmax(h.val_acc.to_numpy()))])
        elif select == "best_val_loss":
            want = int(h.epoch.iloc[int(np.argmin(h.val_loss.to_numpy()))])
        else:
            want = int(h.epoch.max())
        assert ens.selected_epoch[m] == want
        acc = float((ens.predict_proba(xv)[m].argmax(1) == yv).mean())
        assert acc == pytest.approx(float(h.val_acc[h.epoch == want].iloc[0]))


def test_history_is_tidy():
    x, y = _toy()
    ens = train(x, y, members=2, epochs=2, lr=0.01, width=(8,), x_val=x, y_val=y)
    assert list(ens.history.columns) == [
        "member",
        "epoch",
        "lr",
        "train_loss",
        "val_acc",
        "val_loss",
        "val_nll",
    ]
    assert len(ens.history) == 4
    # For CE the validation loss is the NLL.
    np.testing.assert_allclose(ens.history.val_loss, ens.history.val_nll, rtol=1e-5)


@pytest.mark.parametrize("loss", ["ce", "mse", "mse_logits", "ls", "soft", "kd"])
def test_reaches_bayes_accuracy_on_easy_mixture(easy, loss):
    tr, va, te = easy
    kw = {}
    if loss == "soft":
        kw["targets"] = tr.p_star
    if loss == "kd":
        kw["teacher_logits"] = np.log(tr.p_star)
        kw["loss_options"] = {"alpha": 0.5, "beta": 0.5, "temperature": 2.0}
    lr = 0.05 if loss == "mse_logits" else 0.01
    ens = train(
        tr.x,
        tr.y,
        members=2,
        loss=loss,
        x_val=va.x,
        y_val=va.y,
        lr=lr,
        epochs=6,
        width=(64, 64),
        num_classes=3,
        **kw,
    )
    bayes = float((te.p_star.argmax(1) == te.y).mean())
    acc = ens.evaluate(te.x, y=te.y, p_star=te.p_star)["accuracy"].to_numpy()
    assert acc.min() >= bayes - 0.04, (loss, acc, bayes)


class _FakeGraphs:
    """A CPU stand-in for CUDA graphs: capture records without running, replay runs."""

    calls = {"capture": 0, "replay": 0}
    broken: str | None = None

    @staticmethod
    def available(device):
        return True

    @staticmethod
    def warmup(fn):
        fn()

    @classmethod
    def capture(cls, fn):
        cls.calls["capture"] += 1
        if cls.broken == "capture":
            raise RuntimeError("cannot capture")

        class Graph:
            def replay(self):
                cls.calls["replay"] += 1
                fn()
                if cls.broken == "replay":  # a graph that does the wrong thing
                    fn()

        return Graph()

    @staticmethod
    def synchronize():
        pass


@pytest.mark.parametrize("broken", [None, "capture", "replay"])
def test_captured_step_path_is_the_same_training(monkeypatch, broken):
    """The capture/replay bookkeeping (CUDA-only in real use) trains exactly like eager, and
    any capture failure falls back to eager with a warning."""
    import bcpd_sim.ensemble.trainer as trainer_mod

    x, y = _toy(n=150)
    specs = [MemberSpec(0), MemberSpec(1, n_train=100)]  # needs masked and unmasked steps
    kw = dict(lr=0.02, epochs=2, width=(8,), loss="mse")
    eager = train(x, y, members=specs, capture="eager", **kw)
    monkeypatch.setattr(trainer_mod, "_GRAPH_BACKEND", _FakeGraphs)
    monkeypatch.setattr(_FakeGraphs, "broken", broken)
    monkeypatch.setattr(_FakeGraphs, "calls", {"capture": 0, "replay": 0})
    if broken:
        with pytest.warns(UserWarning, match="training eagerly"):
            graphed = train(x, y, members=specs, capture="auto", **kw)
        assert graphed.config["capture_used"] == "eager"
    else:
        graphed = train(x, y, members=specs, capture="cuda_graph", **kw)
        assert graphed.config["capture_used"] == "cuda_graph"
        assert _FakeGraphs.calls == {"capture": 2, "replay": 2 * 5}  # 5 steps/epoch, 2 epochs
    np.testing.assert_array_equal(graphed.predict_logits(x), eager.predict_logits(x))


def test_per_member_validation_targets_follow_their_member_across_width_groups():
    x, y = _toy(n=120)
    rng = np.random.default_rng(6)
    soft = rng.dirichlet(np.ones(3), size=(3, 120))
    vsoft = rng.dirichlet(np.ones(3), size=(3, 120))
    specs = [MemberSpec(0, width=(8,)), MemberSpec(1, width=(4,)), MemberSpec(2, width=(8,))]
    kw = dict(loss="soft", x_val=x, y_val=y, epochs=2, lr=0.02, select="best_val_loss")
    ens = train(x, y, members=specs, targets=soft, val_targets=vsoft, **kw)
    for m in range(3):
        alone = train(x, y, members=[specs[m]], targets=soft[m], val_targets=vsoft[m], **kw)
        h = ens.history[ens.history.member == m].val_loss.to_numpy()
        np.testing.assert_allclose(h, alone.history.val_loss.to_numpy(), rtol=1e-5)


def test_predict_subset_of_members():
    x, y = _toy(n=60)
    specs = [MemberSpec(0, width=(8,)), MemberSpec(1, width=(4,)), MemberSpec(2, width=(8,))]
    ens = train(x, y, members=specs, epochs=1, lr=0.02)
    full = ens.predict_logits(x)
    np.testing.assert_array_equal(ens.predict_logits(x, members=[2, 1]), full[[2, 1]])
    frame = ens.evaluate(x, y=y)
    assert list(frame.member) == [0, 1, 2] and list(frame.seed) == [0, 1, 2]


def test_member_grid():
    from bcpd_sim.ensemble import member_grid

    grid = member_grid(2, lr=[0.1, 0.01], n_train=[50])
    assert [(m.seed, m.lr, m.n_train) for m in grid] == [
        (0, 0.1, 50),
        (1, 0.1, 50),
        (0, 0.01, 50),
        (1, 0.01, 50),
    ]
    with pytest.raises(Exception, match="unknown member setting"):
        member_grid(2, depth=[1])


def test_last_checkpoint_is_kept_beside_the_selected_one():
    """Best-epoch and last-epoch predictions are both available (reported apart)."""
    from bcpd_sim.ensemble import train
    from bcpd_sim.mixtures import make_mixture

    mix = make_mixture("paper", seed=0)
    tr, va = mix.sample(300, seed=0), mix.sample(200, seed=1)
    kw = dict(
        members=[0, 1],
        x_val=va.x,
        y_val=va.y,
        num_classes=10,
        lr=5e-2,
        epochs=6,
        width=(16,),
        device="cpu",
    )
    best = train(tr.x, tr.y, select="best_val_acc", **kw)
    last = train(tr.x, tr.y, select="last", **kw)
    np.testing.assert_allclose(
        best.predict_proba(va.x, checkpoint="last"), last.predict_proba(va.x), atol=1e-6
    )
    for m, epoch in enumerate(best.selected_epoch):
        if epoch == 6:
            np.testing.assert_allclose(
                best.predict_proba(va.x)[m], last.predict_proba(va.x)[m], atol=1e-6
            )
    with pytest.raises(ValueError, match="checkpoint"):
        best.predict_proba(va.x, checkpoint="best")


def test_members_split_across_cpu_threads_train_exactly_as_on_one_thread():
    """With several torch threads a group's members are trained in parts on Python threads
    (one intra-op thread each); the result is the one-thread result, bit for bit."""
    from bcpd_sim.ensemble.trainer import MIN_MEMBERS_PER_THREAD, _split

    assert _split(list(range(5)), 4) == [list(range(5))]
    parts = _split(list(range(20)), 3)
    assert [len(p) for p in parts] == [10, 10] and sum(parts, []) == list(range(20))
    x, y = _toy()
    xv, yv = _toy(n=100, seed=1)
    n = 2 * MIN_MEMBERS_PER_THREAD
    specs = [MemberSpec(seed=s, n_train=150 + s, epochs=2 + s % 2) for s in range(n)]
    specs += [MemberSpec(seed=100 + s, width=(8,)) for s in range(n + 1)]
    kw = dict(x_val=xv, y_val=yv, lr=0.02, epochs=3, width=(16, 16), show_progress=False)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = train(x, y, members=specs, **kw)
        torch.set_num_threads(2)
        split = train(x, y, members=specs, **kw)
        assert torch.get_num_threads() == 2  # restored after the worker threads
    finally:
        torch.set_num_threads(before)
    assert one.config["cpu_threads"] == 1 and split.config["cpu_threads"] == 2
    np.testing.assert_array_equal(split.predict_logits(xv), one.predict_logits(xv))
    np.testing.assert_array_equal(
        split.predict_logits(xv, checkpoint="last"), one.predict_logits(xv, checkpoint="last")
    )
    pd.testing.assert_frame_equal(split.history, one.history)
    assert split.selected_epoch.tolist() == one.selected_epoch.tolist()


def test_a_failing_cpu_thread_stops_the_others_and_raises(monkeypatch):
    import bcpd_sim.ensemble.trainer as trainer_mod

    x, y = _toy()
    n = 2 * trainer_mod.MIN_MEMBERS_PER_THREAD
    original = trainer_mod._GroupTrainer.train_epoch
    epochs_run = []

    def train_epoch(self, epoch):
        if self.index[0] != 0:
            raise ValueError("broken part")
        epochs_run.append(epoch)
        return original(self, epoch)

    monkeypatch.setattr(trainer_mod._GroupTrainer, "train_epoch", train_epoch)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        with pytest.raises(ValueError, match="broken part"):
            train(x, y, members=n, epochs=50, width=(8,), show_progress=False)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
    assert len(epochs_run) < 50  # the healthy part stopped early


def test_inputs_gathered_in_blocks_of_steps_train_the_same(monkeypatch):
    """Eager steps read inputs gathered a block of steps at a time; blocks of 3 steps of 8 (the
    last one short) train exactly like one block per epoch (whose gather the plain-module test
    checks)."""
    import bcpd_sim.ensemble.trainer as trainer_mod

    x, y = _toy()
    kw = dict(members=[MemberSpec(0), MemberSpec(1, n_train=170)], lr=0.02, epochs=2, width=(8,))
    one_block = train(x, y, **kw)
    monkeypatch.setattr(trainer_mod, "GATHER_BLOCK", 3 * 2 * 32)
    blocks = train(x, y, **kw)
    np.testing.assert_array_equal(blocks.predict_logits(x), one_block.predict_logits(x))


def test_a_linear_member_trains_and_predicts():
    """``width=()`` is multinomial logistic regression: predictions work (they once failed on an
    empty width) and the logits are affine in x, f(a) + f(b) - f(0) = f(a + b)."""
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(120, 4)), rng.integers(0, 3, 120)
    ens = train(x, y, members=[MemberSpec(seed=1), MemberSpec(seed=2)], loss="ce",
                num_classes=3, epochs=3, width=(), lr=0.1)  # fmt: skip
    a, b = rng.normal(size=(5, 4)), rng.normal(size=(5, 4))
    f = ens.predict_logits
    np.testing.assert_allclose(f(a) + f(b) - f(np.zeros_like(a)), f(a + b), atol=1e-5)
    assert ens.predict_proba(x).shape == (2, 120, 3)
