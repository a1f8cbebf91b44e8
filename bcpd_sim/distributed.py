"""PyTorch DistributedDataParallel plumbing for single training runs launched by ``torchrun``.

``torchrun --nproc_per_node=N -m bcpd_sim ...`` starts N processes with ``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK`` and ``MASTER_ADDR``/``MASTER_PORT`` in their environment;
:func:`setup` reads them, joins the process group (NCCL on GPUs, one GPU per process chosen by
``LOCAL_RANK``; gloo on CPU) and returns a :class:`DistContext`. Without those variables (a plain
``bcpd-sim ...``) it returns the one-process context and nothing here communicates.

The helpers are no-ops for one process: :func:`all_reduce_sum`, :func:`broadcast_buffers`,
:func:`barrier`, :func:`broadcast_object` and :func:`wrap` (``DistributedDataParallel`` around a
model, gradients averaged over ranks in the backward pass).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from .device import resolve_device
from .errors import ConfigError

ENV_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK")


@dataclass(frozen=True)
class DistContext:
    """Where this process stands: ``rank`` of ``world_size`` (``local_rank`` on its node)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def as_dict(self) -> dict[str, Any]:
        return {"world_size": self.world_size, "backend": self.backend}


SINGLE = DistContext()


def environment_world() -> tuple[int, int, int]:
    """``(rank, world_size, local_rank)`` from torchrun's variables; (0, 1, 0) without them."""
    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", str(rank)))
    except ValueError:
        raise ConfigError(
            "RANK, WORLD_SIZE and LOCAL_RANK must be integers (set by torchrun)"
        ) from None
    if world < 1 or not 0 <= rank < world:
        raise ConfigError(f"bad torchrun environment: RANK={rank}, WORLD_SIZE={world}")
    return rank, world, local


def is_main_process() -> bool:
    """Whether this process is rank 0 (or the only one); needs no process group."""
    return environment_world()[0] == 0


def setup(device: str | torch.device | None = None) -> tuple[DistContext, torch.device]:
    """Join the process group torchrun prepared (if any); return the context and this rank's
    device (``cuda:LOCAL_RANK`` under NCCL; the requested device otherwise)."""
    rank, world, local = environment_world()
    dev = resolve_device(device)
    if world == 1:
        return SINGLE, dev
    if dev.type == "cuda":
        if local >= torch.cuda.device_count():
            raise ConfigError(
                f"LOCAL_RANK {local} but only {torch.cuda.device_count()} GPUs are visible"
            )
        dev = torch.device("cuda", local)
        torch.cuda.set_device(dev)
        backend = "nccl"
    else:
        backend = "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    return DistContext(rank, world, local, backend), dev


def teardown(ctx: DistContext) -> None:
    """Leave the process group (after a final barrier) if this run joined one."""
    if ctx.enabled and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def per_rank_batch(global_batch: int, world_size: int) -> int:
    """The per-process batch; the global batch must split evenly over the processes."""
    if global_batch % world_size:
        raise ConfigError(
            f"batch_size {global_batch} does not split over {world_size} processes; "
            f"choose a multiple of {world_size}"
        )
    return global_batch // world_size


def all_reduce_sum(tensor: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    """Sum ``tensor`` over ranks in place (returned for chaining); unchanged for one process."""
    if ctx.enabled:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def barrier(ctx: DistContext) -> None:
    if ctx.enabled:
        dist.barrier()


def broadcast_object(obj: Any, ctx: DistContext, src: int = 0) -> Any:
    """Rank ``src``'s ``obj`` on every rank (picklable objects)."""
    if not ctx.enabled:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


@torch.no_grad()
def broadcast_buffers(module: nn.Module, ctx: DistContext, src: int = 0) -> None:
    """Copy rank ``src``'s buffers (BatchNorm running statistics) to every rank."""
    if not ctx.enabled:
        return
    for buf in module.buffers():
        dist.broadcast(buf, src=src)


def wrap(model: nn.Module, ctx: DistContext, device: torch.device) -> nn.Module:
    """``DistributedDataParallel(model)`` for several processes; ``model`` itself for one.

    Parameters and buffers start from rank 0's (DDP broadcasts them at construction); gradients
    are averaged over ranks in the backward pass, so each rank's loss must be the mean over its
    slice of the global batch.
    """
    if not ctx.enabled:
        return model
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(
        model, device_ids=ids, output_device=device.index if ids else None
    )


def average_gradients(module: nn.Module, ctx: DistContext) -> None:
    """Average the ``.grad`` of ``module``'s parameters over ranks (for parameters outside DDP,
    e.g. distillation connectors); call after ``backward``, before the optimiser step."""
    if not ctx.enabled:
        return
    for p in module.parameters():
        if p.requires_grad:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
            dist.all_reduce(p.grad, op=dist.ReduceOp.SUM)
            p.grad.div_(ctx.world_size)


@contextmanager
def main_process_lock(path: str | os.PathLike) -> Iterator[Any]:
    """The run directory's lock (:func:`bcpd_sim.rundir.open_run_dir`), held by rank 0 only.

    Under torchrun every process runs the command; only the one that writes files (rank 0) takes
    the lock, so a second launch into the same folder is refused while the others cooperate.
    Reads ``RANK`` from the environment, so it can run before the process group exists.
    """
    if not is_main_process():
        yield None
        return
    from .rundir import open_run_dir

    with open_run_dir(path) as run:
        yield run
