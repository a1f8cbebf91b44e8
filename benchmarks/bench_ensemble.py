"""Benchmark: the vectorised ensemble trainer against the paper's one-model-at-a-time loop.

Both ways train the same members (paper MLP 30-128-128-10, SGD lr 5e-4 momentum 0.9, batch 32,
validation accuracy every epoch with best-epoch checkpointing) on the paper's mixture (K = 10,
d = 30, delta = 1, noise variance 6). The reference loop (an ``nn.Module`` per member, a shuffling
``DataLoader``, ``torch.optim.SGD``) is timed on ``--ref-members`` members and extrapolated per
member to the full count; the output says so.

On the CPU it also measures the machine's own limit for the same work: the batched matmuls a
training step must do (forward, weight gradients, input gradients; ``torch.bmm`` at the trainer's
shapes, each in its faster orientation, back to back) and the validation forward passes, timed
alone. The trainer's fraction of that limit is (work at the limit's rate) / (trainer's time), and
a breakdown measures where the rest of an epoch goes. The last line is ``RESULT {json}``.

    python benchmarks/bench_ensemble.py                      # CPU: 64 members, target >= 8x
    python benchmarks/bench_ensemble.py --epochs 10          # quicker, same per-step ratio
    python benchmarks/bench_ensemble.py --gpu-target         # 1,024 teacher/student pairs
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import threading
import time

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from bcpd_sim.device import resolve_device
from bcpd_sim.ensemble import train


def paper_data(n_train: int, n_val: int, seed: int = 0):
    """Train/validation samples of the paper's mixture (with the exact BCPD)."""
    from bcpd_sim.mixtures import IsotropicGaussianMixture

    mix = IsotropicGaussianMixture.lattice(
        num_classes=10, dim=30, delta=1.0, noise_var=6.0, seed=seed
    )
    return mix.sample(n_train, seed=seed + 1), mix.sample(n_val, seed=seed + 2)


def reference_member(
    seed, x, y, xv, yv, *, epochs, lr, batch_size, device, soft=None, width=(128, 128)
) -> float:
    """Train one MLP the paper's way; returns the best validation accuracy (forces the work)."""
    torch.manual_seed(seed)
    k = 10
    sizes = [x.shape[1], *width, k]
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    net = nn.Sequential(*layers).to(device)
    opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9)
    tensors = [torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y)]
    if soft is not None:
        tensors.append(torch.as_tensor(soft, dtype=torch.float32))
    loader = DataLoader(TensorDataset(*tensors), batch_size=batch_size, shuffle=True)
    xv_t = torch.as_tensor(xv, dtype=torch.float32, device=device)
    yv_t = torch.as_tensor(yv, device=device)
    best, best_state = -1.0, None
    for _ in range(epochs):
        net.train()
        for batch in loader:
            batch = [b.to(device) for b in batch]
            opt.zero_grad()
            z = net(batch[0])
            if soft is None:
                loss = nn.functional.cross_entropy(z, batch[1])
            else:
                loss = nn.functional.kl_div(
                    nn.functional.log_softmax(z, -1), batch[2], reduction="batchmean"
                )
            loss.backward()
            opt.step()
        net.eval()
        with torch.no_grad():
            acc = (net(xv_t).argmax(1) == yv_t).float().mean().item()
        if acc > best:
            best, best_state = acc, {k_: v.clone() for k_, v in net.state_dict().items()}
    assert best_state is not None
    return best


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _peak_memory(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{torch.cuda.max_memory_allocated() / 2**20:.0f} MiB (CUDA max allocated)"
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return f"{rss:.0f} MiB (process peak RSS so far)"


def _reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()


def time_reference(args, device, tr, va, soft=None) -> tuple[float, float]:
    """Wall and CPU seconds per member of the reference loop, measured on ``args.ref_members``
    members (after an untimed one-epoch warm-up on 64 points)."""
    reference_member(
        0,
        tr.x[:64],
        tr.y[:64],
        va.x[:64],
        va.y[:64],
        epochs=1,
        lr=args.lr,
        batch_size=args.batch_size,
        device=device,
        soft=None if soft is None else soft[:64],
    )
    _sync(device)
    t0, c0 = time.perf_counter(), time.process_time()
    for seed in range(args.ref_members):
        reference_member(
            seed,
            tr.x,
            tr.y,
            va.x,
            va.y,
            epochs=args.epochs,
            lr=args.lr,
            batch_size=args.batch_size,
            device=device,
            soft=soft,
        )
    _sync(device)
    n = args.ref_members
    return (time.perf_counter() - t0) / n, (time.process_time() - c0) / n


def run_options(args, device, va) -> dict:
    """The ensemble settings every timed run shares (validation, recipe, device, capture)."""
    return {
        "x_val": va.x,
        "y_val": va.y,
        "lr": args.lr,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "device": device,
        "num_classes": 10,
        "capture": args.capture,
        "show_progress": False,
    }


def warm_up(args, device, tr, va) -> None:
    """An untimed tiny ensemble run (library loading, CUDA context, cuBLAS handles)."""
    train(
        tr.x[:64],
        tr.y[:64],
        members=2,
        x_val=va.x[:64],
        y_val=va.y[:64],
        epochs=1,
        device=device,
        num_classes=10,
        capture=args.capture,
        show_progress=False,
    )
    _sync(device)


# ------------------------------------------------------------------ the machine's own limit


def _calls_per_batch(fn, budget_s: float, repeats: int) -> int:
    fn()
    t0 = time.perf_counter()
    fn()
    return max(1, int(budget_s / repeats / max(time.perf_counter() - t0, 1e-7)))


def _seconds_per_call(fn, *, budget_s: float = 0.3, repeats: int = 5, best: bool = True) -> float:
    """Seconds per call of ``fn``: the best (or the median) of ``repeats`` timed batches."""
    inner = _calls_per_batch(fn, budget_s, repeats)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        times.append((time.perf_counter() - t0) / inner)
    return min(times) if best else float(np.median(times))


def _seconds_side_by_side(fns: list, *, budget_s: float = 0.3, repeats: int = 5, best=True):
    """Wall seconds per round of ``fns`` run side by side, one Python thread (with one torch
    thread) each, started together: the time for all of them to finish a round."""
    if len(fns) == 1:
        return _seconds_per_call(fns[0], budget_s=budget_s, repeats=repeats, best=best)
    k = len(fns)
    inner = _calls_per_batch(fns[0], budget_s * k, repeats)
    start, done = threading.Barrier(k + 1), threading.Barrier(k + 1)
    before = torch.get_num_threads()

    def worker(fn):
        torch.set_num_threads(1)
        fn()
        for _ in range(repeats):
            start.wait()
            for _ in range(inner):
                fn()
            done.wait()

    threads = [threading.Thread(target=worker, args=(fn,)) for fn in fns]
    for t in threads:
        t.start()
    times = []
    for _ in range(repeats):
        start.wait()
        t0 = time.perf_counter()
        done.wait()
        times.append((time.perf_counter() - t0) / inner)
    for t in threads:
        t.join()
    torch.set_num_threads(before)
    return min(times) if best else float(np.median(times))


def step_flops(e: int, b: int, sizes: list[int]) -> int:
    """Matmul FLOPs of one training step: forward, weight gradients, and input gradients of
    every layer but the first (bias terms and elementwise work not counted)."""
    pairs = list(zip(sizes[:-1], sizes[1:]))
    per = sum(3 * fi * fo for fi, fo in pairs) - sizes[0] * sizes[1]
    return 2 * e * b * per


def val_flops(e: int, n: int, sizes: list[int]) -> int:
    """Matmul FLOPs of one validation pass (forward only) over ``n`` points."""
    return 2 * e * n * sum(fi * fo for fi, fo in zip(sizes[:-1], sizes[1:]))


def _fastest(candidates: list):
    """The fastest of several equivalent matmul calls, each timed alone."""
    return min(candidates, key=lambda c: _seconds_per_call(c, budget_s=0.1))


def gemm_programs(e: int, b: int, sizes: list[int], n_val: int, chunk: int):
    """The matmuls of one training step and of one validation pass for ``e`` members, as two
    functions of ``torch.bmm`` calls on float32 (random operands).

    Each matmul is timed alone in both orientations of its result (``A B`` into an ``(m, n)``
    buffer, or ``B^T A^T`` into an ``(n, m)`` one) and the faster is kept. Validation inputs
    are shared by all members (a stride-0 member axis), ``n_val`` points in chunks of ``chunk``.
    """
    g = torch.Generator().manual_seed(0)

    def rnd(*shape):
        return torch.randn(*shape, generator=g)

    def both(a, bt, m, n):  # a @ bt^T into (E, m, n), or bt @ a^T into (E, n, m)
        y, yt = torch.empty(e, m, n), torch.empty(e, n, m)
        return _fastest(
            [
                lambda: torch.bmm(a, bt.transpose(1, 2), out=y),
                lambda: torch.bmm(bt, a.transpose(1, 2), out=yt),
            ]
        )

    pairs = list(zip(sizes[:-1], sizes[1:]))
    w = [rnd(e, fo, fi) * fi**-0.5 for fi, fo in pairs]
    acts = [rnd(e, b, n) for n in sizes]  # layer inputs / outputs
    grads = [rnd(e, b, n) for n in sizes]  # gradients w.r.t. them
    step_calls = []
    for i, (fi, fo) in enumerate(pairs):
        x, go = acts[i], grads[i + 1]
        step_calls.append(both(x, w[i], b, fo))  # forward: x W^T
        step_calls.append(both(go.transpose(1, 2), x.transpose(1, 2), fo, fi))  # dW = g^T x
        if i > 0:
            step_calls.append(both(go, w[i].transpose(1, 2), b, fi))  # dx = g W

    xv = rnd(n_val, sizes[0])
    h = [xv[:chunk].unsqueeze(0).expand(e, -1, -1)] + [rnd(e, chunk, n) for n in sizes[1:]]
    val_calls = [both(h[i], w[i], chunk, fo) for i, (_, fo) in enumerate(pairs)]

    def step():
        for c in step_calls:
            c()

    def validation():
        for _ in range(-(-n_val // chunk)):
            for c in val_calls:
                c()

    return step, validation


def gemm_limit(e: int, b: int, sizes: list[int], n_val: int, chunk: int, threads: int) -> dict:
    """The machine's limit for the trainer's matmul work with ``torch.bmm``: the faster of
    (a) all ``e`` members with ``threads`` intra-op threads and (b) ``threads`` Python threads
    side by side, each with one torch thread and its share of the members (how the trainer
    runs on the CPU). Seconds per training step and per validation pass."""
    from bcpd_sim.ensemble.trainer import _split

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        step, validation = gemm_programs(e, b, sizes, n_val, chunk)
        out = {
            "step_s": _seconds_per_call(step, budget_s=1.0),
            "val_s": _seconds_per_call(validation, budget_s=1.0, repeats=3),
        }
    finally:
        torch.set_num_threads(before)
    parts = _split(list(range(e)), threads)
    if len(parts) > 1:
        torch.set_num_threads(1)
        try:
            progs = [gemm_programs(len(p), b, sizes, n_val, chunk) for p in parts]
        finally:
            torch.set_num_threads(before)
        t_step = _seconds_side_by_side([p[0] for p in progs], budget_s=1.0)
        t_val = _seconds_side_by_side([p[1] for p in progs], budget_s=1.0, repeats=3)
        out = {"step_s": min(out["step_s"], t_step), "val_s": min(out["val_s"], t_val)}
    out["step_flops"] = step_flops(e, b, sizes)
    out["val_flops"] = val_flops(e, n_val, sizes)
    return out


def _stages(args, device, tr, va, index: list[int]) -> dict:
    """Closures running each stage of the trainer's step on the trainer's own objects, for the
    members ``index`` (as one CPU thread of the trainer trains them)."""
    from bcpd_sim.ensemble import trainer as tm
    from bcpd_sim.ensemble.losses import loss_and_grad
    from bcpd_sim.ensemble.plan import make_plan
    from bcpd_sim.ensemble.shuffle import permutations

    opts = run_options(args, device, va) | {"epochs": 1, "capture": "eager"}
    plan = make_plan(tr.x, tr.y, members=args.members, loss=args.loss, **opts)
    ((width, _),) = plan.groups().items()
    data = tm.DeviceSplit.of(plan.train, plan.device, plan.dtype)
    val = tm.DeviceSplit.of(plan.val, plan.device, plan.dtype)
    g = tm._GroupTrainer(plan, width, index, data.members(index), val.members(index), False)
    e, b = len(index), plan.batch_size
    perm = permutations(g.seeds, 0, g.n_m.tolist(), hashes=g.hashes)
    perm = torch.cat([perm, perm.new_zeros(e, g.n_steps * b - perm.shape[1])], 1)
    idx_steps = perm.view(e, -1, b).transpose(0, 1).contiguous()
    block = max(1, tm.GATHER_BLOCK // (e * b))
    rows = idx_steps[:block].reshape(-1)
    xs, ys = g._block_buffers(block)
    k = rows.shape[0] // (e * b)

    def gather():  # a block of steps' inputs and labels, as the eager trainer gathers them
        torch.index_select(g.data.x, 0, rows, out=xs[:k].view(len(rows), -1))
        torch.index_select(g.data.y, 0, rows, out=ys[:k].view(-1))

    gather()
    g.s_idx, g.s_x, g.s_y = idx_steps[0], xs[0], ys[0]
    g.s_valid, g.s_wgt = g.valid_steps[0], g.wgt_steps[0]
    g.s_lr.fill_(args.lr)
    mom = g.opt.fused_momentum
    xb = g.s_x
    state = g.opt.state if mom is not None else g.ws.grads
    lr = g.s_lr

    def loss():
        batch = g.data.batch(g.s_idx, g.rows, g.s_y)
        per, gz = loss_and_grad(plan.loss, g.ws.acts[-1], **batch)
        g.loss_acc.add_((per * g.s_valid).sum(1))
        return gz * g.s_wgt.unsqueeze(-1)

    gz = loss()

    def backward():
        if mom is None:
            g.opt.step(g.ws.backward(g.params, xb, gz), g.s_lr)
        else:
            g.ws.backward(g.params, xb, gz, into=g.opt.state, beta=mom, lr=g.s_lr)

    def gemms():  # the matmul calls of Workspace.forward and .backward, nothing else
        h = xb
        for i in range(len(g.params) // 2 - 1):
            w, b = g.params[2 * i], g.params[2 * i + 1]
            torch.baddbmm(b.unsqueeze(1), h, w.transpose(1, 2), out=g.ws.acts[i])
            h = g.ws.acts[i]
        w, b = g.params[-2], g.params[-1]
        torch.baddbmm(b.unsqueeze(2), w, h.transpose(1, 2), out=g.ws.logits_t)
        d = gz
        for i in reversed(range(len(g.params) // 2)):
            inp = g.ws.acts[i - 1] if i > 0 else xb
            state[2 * i].baddbmm_(d.transpose(1, 2), inp, beta=mom or 0.0)
            state[2 * i + 1].unsqueeze(1).baddbmm_(g.ws.ones, d, beta=mom or 0.0)
            if i > 0:
                torch.bmm(d, g.params[2 * i], out=g.ws.dh[i - 1])
                d = g.ws.dh[i - 1]

    def update():
        for p, d in zip(g.params, state):
            p.addcmul_(d, lr.view((-1,) + (1,) * (p.dim() - 1)), value=-1.0)

    v = g.validation

    def val_gemms():  # the matmul calls of one validation pass, nothing else
        for a in range(0, v.nv, v.chunk):
            m = min(v.chunk, v.nv - a)
            bufs = v._buffers(m, g.params)
            h = v.val.x[a : a + m].unsqueeze(0).expand(len(index), -1, -1)
            for i, out in enumerate(bufs[:-1]):
                w, b = g.params[2 * i], g.params[2 * i + 1]
                h = torch.baddbmm(b.unsqueeze(1), h, w.transpose(1, 2), out=out)
            w, b = g.params[-2], g.params[-1]
            torch.baddbmm(b.unsqueeze(2), w, h.transpose(1, 2), out=bufs[-1])

    def epoch():
        g.rec = g.train_epoch(0)
        g.s_x, g.s_y = xs[0], ys[0]  # the stages above read them

    epoch()
    return {
        "gather": gather,
        "gather_steps": k,
        "forward": lambda: g.ws.forward(g.params, xb),
        "loss": loss,
        "backward_update": backward,
        "gemms": gemms,
        "update": update,
        "step": lambda: g.step(False),
        "shuffle": lambda: permutations(g.seeds, 0, g.n_m.tolist(), hashes=g.hashes),
        "epoch_train": epoch,
        "validation": lambda: g.evaluate(0, *g.rec),
        "val_gemms": val_gemms,
        "steps": g.n_steps,
    }


def breakdown(args, device, tr, va) -> dict:
    """Where one epoch of the trainer's time goes: each stage measured on the trainer's own
    objects, with the members split over CPU threads as the trainer splits them (the threads
    run each stage side by side; the time is that of a round for all of them). Best of several
    timed batches, like the limit (other load only ever adds time)."""
    from bcpd_sim.ensemble.trainer import _split, cpu_shards

    parts = _split(list(range(args.members)), cpu_shards(device))
    before = torch.get_num_threads()
    if len(parts) > 1:
        torch.set_num_threads(1)
    try:
        stages = [_stages(args, device, tr, va, p) for p in parts]
    finally:
        torch.set_num_threads(before)
    t = {"steps": stages[0]["steps"], "threads": len(parts)}
    for key in stages[0]:
        if key in ("steps", "gather_steps"):
            continue
        long = key in ("epoch_train", "validation", "val_gemms")
        t[key] = _seconds_side_by_side(
            [s[key] for s in stages],
            budget_s=1.5 if long else 0.3,
            repeats=3 if long else 5,
        )
    t["gather"] /= stages[0]["gather_steps"]  # per step
    return t


def report_limit(args, t_ens: float, steps_per_epoch: int, in_dim: int, t: dict) -> dict:
    """Print the trainer's FLOP rate against the measured limit; return the numbers.

    The limit per step (per validation pass) is the faster of :func:`gemm_limit` and the
    trainer's own matmul calls timed alone (``t``, from :func:`breakdown`), so that a layout
    the bmm program missed cannot make the trainer look closer to the limit than it is."""
    from bcpd_sim.ensemble.plan import PAPER_WIDTH
    from bcpd_sim.ensemble.trainer import validation_chunk

    sizes = [in_dim, *PAPER_WIDTH, 10]
    chunk = validation_chunk(args.members, max(sizes[1:]), args.n_val)
    threads = torch.get_num_threads()
    lim = gemm_limit(args.members, args.batch_size, sizes, args.n_val, chunk, threads)
    lim["bmm_step_s"], lim["bmm_val_s"] = lim["step_s"], lim["val_s"]
    lim["step_s"] = min(lim["step_s"], t["gemms"])
    lim["val_s"] = min(lim["val_s"], t["val_gemms"])
    steps = steps_per_epoch * args.epochs
    flops = steps * lim["step_flops"] + args.epochs * lim["val_flops"]
    t_lim = steps * lim["step_s"] + args.epochs * lim["val_s"]
    frac = t_lim / t_ens
    step_rate = lim["step_flops"] / lim["step_s"] / 1e9
    val_rate = lim["val_flops"] / lim["val_s"] / 1e9
    print(
        f"limit (the matmuls alone at the trainer's shapes, {threads} thread(s); faster of a "
        f"torch.bmm program ({lim['bmm_step_s'] * 1e3:.2f} ms, {lim['bmm_val_s'] * 1e3:.0f} ms) "
        f"and the trainer's own calls ({t['gemms'] * 1e3:.2f} ms, "
        f"{t['val_gemms'] * 1e3:.0f} ms)): training step {lim['step_s'] * 1e3:.2f} ms "
        f"({step_rate:.1f} GFLOP/s), validation pass {lim['val_s'] * 1e3:.0f} ms "
        f"({val_rate:.1f} GFLOP/s)"
    )
    print(
        f"trainer: {flops / 1e12:.2f} TFLOP of matmuls in {t_ens:.2f} s = "
        f"{flops / t_ens / 1e9:.1f} GFLOP/s; the limit does it in {t_lim:.2f} s "
        f"({flops / t_lim / 1e9:.1f} GFLOP/s): {100 * frac:.0f}% of the limit "
        f"({'meets' if frac >= 0.7 else 'MISSES'} the 70% target)"
    )
    return {
        "achieved_gflops": round(flops / t_ens / 1e9, 2),
        "limit_gflops": round(flops / t_lim / 1e9, 2),
        "fraction_of_limit": round(frac, 3),
        "limit_step_ms": round(lim["step_s"] * 1e3, 3),
        "limit_val_ms": round(lim["val_s"] * 1e3, 2),
        "limit_seconds": round(t_lim, 4),
        "_lim": lim,
    }


def report_breakdown(t: dict, lim: dict) -> dict:
    """Print where an epoch goes (stages measured by :func:`breakdown`); return the numbers."""
    n = t["steps"]
    epoch = t["epoch_train"] + t["validation"]
    other = t["step"] - t["gemms"] - t["update"]
    rows = [
        ("batched matmuls, as the trainer calls them", n * t["gemms"]),
        ("  the limit for them (matmuls alone, fastest found)", n * lim["step_s"]),
        ("parameter update p -= lr * buf", n * t["update"]),
        ("rest of the step (bias, ReLU, loss and its gradient, dispatch)", n * other),
        ("batch gather (inputs, labels; a block of steps at a time)", n * t["gather"]),
        (
            "per-step loop (Python; epoch minus steps minus gathers)",
            t["epoch_train"] - n * (t["step"] + t["gather"]),
        ),
        ("  of which the epoch's shuffle", t["shuffle"]),
        ("validation pass", t["validation"]),
        ("  the limit for its matmuls", lim["val_s"]),
    ]
    how = f"{t['threads']} Python thread(s) side by side, one torch thread each"
    if t["threads"] == 1:
        how = f"{torch.get_num_threads()} torch thread(s)"
    print(f"where one epoch goes (members split over {how}; seconds per epoch):")
    for name, sec in rows:
        share = "" if name.startswith("  ") else f" {100 * sec / epoch:5.1f}%"
        print(f"  {name:<66} {sec:7.3f}{share}")
    print(
        f"  {'epoch (measured: training steps + validation)':<66} {epoch:7.3f}"
        f"   [one step: forward {t['forward'] * 1e3:.2f} ms, loss {t['loss'] * 1e3:.2f} ms, "
        f"backward+update {t['backward_update'] * 1e3:.2f} ms, whole {t['step'] * 1e3:.2f} ms]"
    )
    keys = ("gemms", "update", "gather", "forward", "loss", "backward_update", "step")
    out = {f"{k}_ms": round(t[k] * 1e3, 3) for k in keys}
    out.update(
        epoch_train_s=round(t["epoch_train"], 3),
        validation_s=round(t["validation"], 3),
        val_gemms_s=round(t["val_gemms"], 3),
        shuffle_s=round(t["shuffle"], 4),
        threads=t["threads"],
    )
    return out


def run_cpu_style(args, device) -> int:
    tr, va = paper_data(args.n_train, args.n_val)
    warm_up(args, device, tr, va)
    steps = -(-args.n_train // args.batch_size) * args.epochs
    print(f"device {device}, torch {torch.__version__}, threads {torch.get_num_threads()}")
    print(
        f"work: {args.members} members x {args.epochs} epochs x {steps // args.epochs} steps "
        f"(n_train {args.n_train}, batch {args.batch_size}), loss {args.loss}, "
        "validation accuracy every epoch"
    )
    _reset_peak(device)
    t0, c0 = time.perf_counter(), time.process_time()
    ens = train(
        tr.x,
        tr.y,
        members=args.members,
        loss=args.loss,
        **run_options(args, device, va),
    )
    _sync(device)
    t_ens = time.perf_counter() - t0
    c_ens = time.process_time() - c0
    mem_ens = _peak_memory(device)
    print(
        f"ensemble: {t_ens:.2f} s wall ({c_ens:.2f} s CPU) for {args.members} members "
        f"({args.members * steps / t_ens:,.0f} model-steps/s, capture {ens.config['capture_used']}), "
        f"peak memory {mem_ens}"
    )
    _reset_peak(device)
    per, c_per = time_reference(args, device, tr, va)
    t_ref = per * args.members
    print(
        f"reference loop: {per:.2f} s wall ({c_per:.2f} s CPU) per member measured on "
        f"{args.ref_members} member(s), extrapolated x{args.members} = {t_ref:.1f} s wall "
        f"({steps / per:,.0f} model-steps/s), peak memory {_peak_memory(device)}"
    )
    ratio = t_ref / t_ens
    target = args.target if args.target is not None else (8.0 if device.type == "cpu" else 200.0)
    verdict = "meets" if ratio >= target else "MISSES"
    print(f"speed-up (wall): {ratio:.1f}x ({verdict} the {target:g}x target)")
    result = {
        "members": args.members,
        "epochs": args.epochs,
        "threads": torch.get_num_threads(),
        "seconds": round(t_ens, 3),
        "cpu_seconds": round(c_ens, 2),
        "reference_seconds": round(t_ref, 1),
        "speedup": round(ratio, 2),
        "target_met": ratio >= target,
    }
    if device.type == "cpu":
        # CPU seconds are robust to other processes sharing the cores (exact for one thread).
        load = os.getloadavg()[0]
        print(
            f"speed-up (CPU time): {c_per * args.members / c_ens:.1f}x; load average "
            f"{load:.1f} on {os.cpu_count()} cores"
        )
        result["load_average"] = round(load, 2)
        if not args.no_limit:
            stages = breakdown(args, device, tr, va)
            lim = report_limit(args, t_ens, steps // args.epochs, tr.x.shape[1], stages)
            result["limit_target_met"] = lim["fraction_of_limit"] >= 0.7
            result.update({k: v for k, v in lim.items() if not k.startswith("_")})
            result["breakdown"] = report_breakdown(stages, lim["_lim"])
    print("RESULT " + json.dumps(result), flush=True)
    return 0


def run_gpu_target(args, device) -> int:
    """1,024 teacher/student pairs, 100 epochs, batch 32, 5,000 training points."""
    tr, va = paper_data(args.n_train, args.n_val)
    warm_up(args, device, tr, va)
    steps = -(-args.n_train // args.batch_size) * args.epochs
    print(f"device {device} ({torch.cuda.get_device_name() if device.type == 'cuda' else 'cpu'})")
    print(
        f"work: {args.members} teachers ({args.loss}) then {args.members} students (KL to their "
        f"own teacher's probabilities, T = 1), {args.epochs} epochs x {steps // args.epochs} "
        f"steps, batch {args.batch_size}, n_train {args.n_train}"
    )
    _reset_peak(device)
    t0 = time.perf_counter()
    teachers = train(
        tr.x,
        tr.y,
        members=args.members,
        loss=args.loss,
        **run_options(args, device, va),
    )
    _sync(device)
    t_teach = time.perf_counter() - t0
    soft = teachers.predict_proba(tr.x, as_tensor=True).float()
    soft = soft / soft.sum(-1, keepdim=True)
    students = train(
        tr.x,
        tr.y,
        members=list(range(args.members, 2 * args.members)),
        loss="soft",
        targets=soft.cpu().numpy(),
        **run_options(args, device, va),
    )
    _sync(device)
    t_all = time.perf_counter() - t0
    print(
        f"ensemble: teachers {t_teach:.1f} s, all teachers and students {t_all:.1f} s "
        f"({2 * args.members * steps / t_all:,.0f} model-steps/s, capture "
        f"{teachers.config['capture_used']}/{students.config['capture_used']}), peak memory "
        f"{_peak_memory(device)}"
    )
    per_t = time_reference(args, device, tr, va)[0]
    per_s = time_reference(args, device, tr, va, soft=soft[0].cpu().numpy())[0]
    t_ref = (per_t + per_s) * args.members
    print(
        f"reference loop: {per_t:.1f} s per teacher + {per_s:.1f} s per student measured on "
        f"{args.ref_members} of each, extrapolated x{args.members} = {t_ref:,.0f} s"
    )
    ratio = t_ref / t_all
    ok = t_all <= 30.0 and ratio >= 200.0
    print(f"speed-up: {ratio:.0f}x; target <= 30 s and >= 200x: {'met' if ok else 'NOT met'}")
    result = {"members": args.members, "epochs": args.epochs, "seconds": round(t_all, 2)}
    result.update(reference_seconds=round(t_ref, 1), speedup=round(ratio, 1), target_met=ok)
    print("RESULT " + json.dumps(result), flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--members", type=int, default=None, help="default 64 (1,024 with --gpu-target)")
    p.add_argument("--epochs", type=int, default=100)
    p.add_argument("--n-train", type=int, default=5000)
    p.add_argument("--n-val", type=int, default=5000)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--loss", default="ce", help="teacher loss (ensemble side; reference uses CE)")
    p.add_argument("--ref-members", type=int, default=2, help="reference members actually timed")
    p.add_argument("--device", default=None, help="auto (default), cpu or cuda")
    p.add_argument("--capture", default="auto", help="auto, eager or cuda_graph")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--target", type=float, default=None, help="speed-up target to report against")
    p.add_argument("--gpu-target", action="store_true", help="1,024 teacher/student pairs")
    p.add_argument(
        "--no-limit", action="store_true", help="CPU: skip the matmul limit and the breakdown"
    )
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.members is None:
        args.members = 1024 if args.gpu_target else 64
    if args.loss != "ce":
        print(f"note: ensemble loss {args.loss}, reference loop uses CE (same cost per step)")
    device = resolve_device(args.device)
    np.random.seed(0)
    return run_gpu_target(args, device) if args.gpu_target else run_cpu_style(args, device)


if __name__ == "__main__":
    sys.exit(main())
