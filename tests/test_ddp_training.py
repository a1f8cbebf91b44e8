"""DDP training on CPU (gloo): two processes with half the batch each against one process.

The model has no batch statistics (BatchNorm normalises each rank's slice on its own under DDP, so
a BN model matches only approximately); with it, two processes must reproduce one process's run
up to the order of floating-point sums: every weight within 1e-6 after two epochs, the same
accuracies. A run killed after its first epoch under two processes and resumed under two
processes ends with exactly the weights of an uninterrupted two-process run; resumed under one
process, with the same weights within the same tolerance.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp
from torch import nn

from bcpd_sim import distributed
from bcpd_sim.vision.bundle import DataBundle
from bcpd_sim.vision.data import ImageDataset
from bcpd_sim.vision.distill import create_distiller
from bcpd_sim.vision.distill.trainer import DistillTrainer, freeze
from bcpd_sim.vision.losses import teacher_loss
from bcpd_sim.vision.recipes import get_recipe
from bcpd_sim.vision.trainer import Trainer, supervised_criterion

pytestmark = pytest.mark.slow
TOL = 1e-6  # max |weight difference| one vs two processes (measured 1.5e-8; weights move ~0.1)


class Stop(Exception):
    pass


def tiny_net(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(3, 6, 3, stride=2),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(2),
        nn.Flatten(),
        nn.Linear(24, 5),
    )


def bundle() -> DataBundle:
    rng = np.random.default_rng(0)

    def ds(n):
        labels = rng.integers(0, 5, n)
        images = rng.integers(0, 256, (n, 3, 32, 32)).astype(np.uint8)
        images[:, labels % 3] //= 2  # something to learn
        return ImageDataset(images, labels, 5)

    return DataBundle(ds(64), ds(20), ds(22), 5, "synthetic", True, {})


RECIPE = get_recipe("tiny", epochs=2, batch_size=16, lr=0.1, eval_batch_size=8, milestones=(1,))


def teacher_run(out: Path, dist=distributed.SINGLE, stop_after: int | None = None) -> dict:
    def stop(epoch, row):
        if epoch == stop_after:
            raise Stop

    trainer = Trainer(
        out,
        tiny_net(1),
        bundle(),
        RECIPE,
        criterion=supervised_criterion(teacher_loss("ce")),
        seed=3,
        config={"arch": "tiny", "loss": "ce"},
        arch="tiny",
        device="cpu",
        dist=dist,
    )
    return trainer.fit(on_epoch_end=stop if stop_after else None)


def distill_run(out: Path, dist=distributed.SINGLE) -> dict:
    teacher = freeze(tiny_net(7))
    student = tiny_net(2)
    kd = create_distiller("kd", teacher, student, temperature=2.0)
    trainer = DistillTrainer(
        out,
        student,
        teacher,
        kd,
        bundle(),
        RECIPE,
        seed=4,
        config={"arch": "tiny", "method": "kd"},
        arch="tiny",
        device="cpu",
        dist=dist,
    )
    return trainer.fit()


def _worker(rank: int, world: int, port: int, root: str) -> None:
    os.environ.update(
        RANK=str(rank),
        WORLD_SIZE=str(world),
        LOCAL_RANK=str(rank),
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
    )
    torch.set_num_threads(1)
    ctx, _ = distributed.setup("cpu")
    root = Path(root)
    teacher_run(root / "teacher2", ctx)
    distill_run(root / "distill2", ctx)
    try:
        teacher_run(root / "killed2", ctx, stop_after=1)
    except Stop:
        pass
    if ctx.is_main:
        shutil.copytree(root / "killed2", root / "killed2_for_1")
    distributed.barrier(ctx)
    teacher_run(root / "killed2", ctx)  # resumed under two processes
    distributed.teardown(ctx)


def weights(run: Path) -> dict[str, torch.Tensor]:
    return torch.load(run / "checkpoints" / "last.pt", weights_only=False)["model"]


def max_diff(a: dict, b: dict) -> float:
    return max(float((a[k].double() - b[k].double()).abs().max()) for k in a)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("ddp")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.start_processes(_worker, args=(2, port, str(root)), nprocs=2, join=True, start_method="fork")
    teacher_run(root / "teacher1")
    distill_run(root / "distill1")
    teacher_run(root / "killed2_for_1")  # a two-process checkpoint resumed by one process
    return root


@pytest.mark.parametrize("kind", ["teacher", "distill"])
def test_two_processes_match_one(runs, kind):
    one, two = runs / f"{kind}1", runs / f"{kind}2"
    diff = max_diff(weights(one), weights(two))
    assert diff < TOL, f"{kind}: max weight difference {diff:.2e}"
    h1 = json.loads((one / "summary.json").read_text())
    h2 = json.loads((two / "summary.json").read_text())
    assert h1["last_epoch_test_acc"] == h2["last_epoch_test_acc"]
    assert h1["best_epoch"] == h2["best_epoch"]
    assert abs(h1["last_epoch_test_nll"] - h2["last_epoch_test_nll"]) < 1e-4
    assert (h1["world_size"], h1["per_rank_batch_size"]) == (1, 16)
    assert (h2["world_size"], h2["per_rank_batch_size"]) == (2, 8)
    eff = json.loads((two / "config.json").read_text())["effective"]
    assert (eff["world_size"], eff["per_rank_batch_size"], eff["global_batch_size"]) == (2, 8, 16)


def test_kill_and_resume_under_two_processes_is_exact(runs):
    resumed, straight = weights(runs / "killed2"), weights(runs / "teacher2")
    for key in straight:
        assert torch.equal(resumed[key], straight[key]), key
    assert max_diff(weights(runs / "killed2_for_1"), straight) < TOL
