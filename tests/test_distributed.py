"""DDP plumbing on CPU with gloo: two spawned processes against one process doing the same work."""

from __future__ import annotations

import os
import socket

import pytest
import torch
import torch.multiprocessing as mp
from torch import nn

from bcpd_sim import distributed
from bcpd_sim.errors import ConfigError


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, out: str) -> None:
    os.environ.update(
        RANK=str(rank),
        WORLD_SIZE=str(world),
        LOCAL_RANK=str(rank),
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
    )
    torch.set_num_threads(1)
    ctx, device = distributed.setup("cpu")
    assert ctx.backend == "gloo" and ctx.world_size == world and ctx.rank == rank
    total = distributed.all_reduce_sum(torch.tensor([float(rank + 1)]), ctx)
    seed = distributed.broadcast_object(1234 if rank == 0 else None, ctx)
    torch.manual_seed(seed + rank)  # different inits: DDP must start every rank from rank 0's
    model = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.Tanh(), nn.Linear(8, 3))
    ddp = distributed.wrap(model, ctx, device)
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(8, 4, generator=gen), torch.randint(0, 3, (8,), generator=gen)
    part = slice(rank * 8 // world, (rank + 1) * 8 // world)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    # Rank-varying extra parameters (a connector outside DDP) averaged by hand.
    extra = nn.Linear(2, 2)
    with torch.no_grad():
        extra.weight.fill_(0.0)
    extra(torch.full((1, 2), float(rank + 1))).sum().backward()
    distributed.average_gradients(extra, ctx)
    nn.functional.cross_entropy(ddp(x[part]), y[part]).backward()
    opt.step()
    distributed.broadcast_buffers(model, ctx)
    if rank == 0:
        torch.save(
            {
                "total": total,
                "state": model.state_dict(),
                "extra_grad": extra.weight.grad,
                "x": x,
                "y": y,
                "seed": seed,
            },
            out,
        )
    distributed.teardown(ctx)


def test_two_gloo_processes_match_one(tmp_path):
    out = str(tmp_path / "rank0.pt")
    mp.start_processes(
        _worker, args=(2, free_port(), out), nprocs=2, join=True, start_method="fork"
    )
    res = torch.load(out, weights_only=False)
    assert float(res["total"]) == 3.0 and res["seed"] == 1234
    # Extra gradients: mean over ranks of (rank + 1) * ones = 1.5.
    torch.testing.assert_close(res["extra_grad"], torch.full((2, 2), 1.5))
    # One process, full batch, rank 0's initialisation. Without BatchNorm the DDP step would be
    # the full-batch step exactly; with it each rank normalises its own half, so compare against
    # that (the standard DDP semantics).
    torch.manual_seed(1234)
    model = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.Tanh(), nn.Linear(8, 3))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = res["x"], res["y"]
    loss = sum(nn.functional.cross_entropy(model(x[s]), y[s]) for s in (slice(0, 4), slice(4, 8)))
    (loss / 2).backward()
    opt.step()
    for key, value in model.state_dict().items():
        if "running" in key or "num_batches" in key:
            continue  # rank 0's statistics of its half, broadcast
        torch.testing.assert_close(res["state"][key], value, rtol=1e-5, atol=1e-6)


def test_one_process_is_a_no_op(monkeypatch):
    for var in distributed.ENV_VARS:
        monkeypatch.delenv(var, raising=False)
    ctx, device = distributed.setup("cpu")
    assert ctx == distributed.SINGLE and not ctx.enabled and ctx.is_main
    t = torch.ones(2)
    assert distributed.all_reduce_sum(t, ctx) is t and float(t.sum()) == 2
    model = nn.Linear(2, 2)
    assert distributed.wrap(model, ctx, device) is model
    assert distributed.broadcast_object("x", ctx) == "x"


def test_batch_split_and_bad_environment(monkeypatch):
    assert distributed.per_rank_batch(512, 8) == 64
    with pytest.raises(ConfigError, match="multiple of 3"):
        distributed.per_rank_batch(512, 3)
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "5")
    with pytest.raises(ConfigError, match="RANK=5"):
        distributed.environment_world()


def test_only_rank_zero_holds_the_run_dir_lock(tmp_path, monkeypatch):
    from bcpd_sim.rundir import RunDirBusy, open_run_dir

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    with distributed.main_process_lock(tmp_path) as run:
        assert run is not None and distributed.is_main_process()
        with pytest.raises(RunDirBusy):  # a second launch into the same folder is refused
            with open_run_dir(tmp_path):
                pass
        monkeypatch.setenv("RANK", "1")  # the other ranks of this launch take no lock
        with distributed.main_process_lock(tmp_path) as other:
            assert other is None and not distributed.is_main_process()
