"""The training loop shared by teacher and distillation runs, as a class of named steps.

:class:`Trainer` drives one run through ``setup`` (device, memory format, optimiser, loaders,
scheduler), ``resume`` (from ``checkpoints/last.pt``, or a fresh seed), ``compile``, and per
epoch ``train_epoch`` -> ``evaluate`` -> ``save``. A run changes one step by overriding it, as
mdistiller's ``BaseTrainer`` does: the distillation trainer
(:class:`bcpd_sim.vision.distill.trainer.DistillTrainer`) overrides ``criterion``, ``setup`` and
``compile`` to run its frozen teacher beside the student. :class:`ConfigRun` builds a trainer from
a run config; the teacher and distillation runs (and their ImageNet versions) are its subclasses.

What every run gets: bf16 autocast and channels_last on CUDA (when the recipe asks), torch.compile
on CUDA only with a fallback to eager execution that covers the whole first step (forward,
criterion and backward), a per-iteration lr schedule, a progress bar with images/s and ETA,
per-epoch ``metrics.csv``, checkpoints ``last.pt`` / ``best.pt`` (best validation accuracy; the
test set is never used for selection) / ``epoch_NNNN.pt`` written atomically, and resumption to
the same result as an uninterrupted run (model, optimiser, scheduler, RNG states, epoch and
history are in ``last.pt``; the data order of epoch e depends only on (seed, e)).

Under ``torchrun`` (``dist``: a :class:`~bcpd_sim.distributed.DistContext` of several processes)
the student trains inside ``DistributedDataParallel``: the recipe's batch is the global batch,
each rank takes its slice of every global batch (:class:`~bcpd_sim.vision.pipeline.DeviceLoader`
with ``rank``/``world_size``), gradients are averaged over ranks (each rank's loss weighted by
its share of the global batch, so an uneven last batch still gives the global mean), connector
gradients are averaged by hand, BatchNorm buffers are taken from rank 0 before every evaluation,
training and evaluation sums are reduced over ranks, and only rank 0 writes files. Resuming reads
the same ``last.pt`` on every rank, so a run may resume on any number of processes. BatchNorm
normalises each rank's slice on its own (standard DDP; no SyncBatchNorm), so W processes match one
process exactly only for models without batch statistics.
"""

from __future__ import annotations

import abc
import dataclasses
import math
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .. import distributed
from ..device import resolve_device
from ..distributed import DistContext
from ..errors import ConfigError
from ..io import write_json, write_table
from ..progress import ProgressLog, progress
from ..provenance import environment
from .bundle import DataBundle, make_loaders
from .checkpoint import save_checkpoint
from .evaluation import autocast, evaluate
from .recipes import Recipe, make_optimizer, make_scheduler
from .runs import (
    CHECKPOINT_FORMAT,
    capture_rng_state,
    config_mismatch,
    load_checkpoint,
    restore_rng_state,
    seed_everything,
    summarise,
)

#: ``criterion(model_or_compiled, x, y, idx, epoch) -> (loss, logits)``.
Criterion = Callable[[nn.Module, torch.Tensor, torch.Tensor, torch.Tensor, int], tuple]
#: Devices on which the recipes' torch.compile applies (CPU runs are eager: tests, demos).
COMPILE_DEVICES = ("cuda",)


def supervised_criterion(
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
) -> Criterion:
    """A criterion ``(model, x, y, idx, epoch) -> (loss_fn(model(x), y), logits)``."""

    def criterion(model, x, y, idx, epoch):
        del idx, epoch
        logits = model(x)
        return loss_fn(logits, y), logits

    return criterion


def maybe_compile(model: nn.Module, enabled: bool, device: torch.device, mode: str | None = None):
    """``torch.compile(model)`` on CUDA when enabled; the eager model otherwise or on failure."""
    if not enabled or device.type not in COMPILE_DEVICES or not hasattr(torch, "compile"):
        return model, False
    try:
        return torch.compile(model, mode=mode), True
    except Exception as exc:  # pragma: no cover - depends on the installation
        warnings.warn(f"torch.compile failed ({exc}); training eagerly", stacklevel=2)
        return model, False


def reset_compiler() -> None:
    """Drop dynamo's compiled code and guards, so this run's models get fresh cache entries.

    Every architecture shares ``CifarModel.forward``, and dynamo keeps at most
    ``torch._dynamo.config.recompile_limit`` (8) compiled versions of one function: without a
    reset, a process that trains a 9th architecture runs it eagerly.
    """
    import torch._dynamo

    torch._dynamo.reset()


def compiled_graph_count() -> int:
    """How many graphs dynamo has compiled in this process since its last reset."""
    from torch._dynamo.utils import counters

    return int(counters["stats"]["unique_graphs"])


class Trainer:
    """One training run of ``model`` under ``recipe`` on ``data``, written into ``run_dir``.

    ``criterion(model_or_compiled, x, y, idx, epoch) -> (loss, logits)`` (or an override of
    :meth:`criterion`) is called inside the autocast region (``idx``: rows of ``data.train``;
    ``epoch``: 0-based). ``extra_modules`` are trained too (e.g. distillation connectors) and
    checkpointed; frozen parameters inside them are left out of the optimiser. ``config``
    (JSON-able) is written to ``config.json`` and must match on resume (except the keys in
    :data:`~bcpd_sim.vision.runs.RESUME_IGNORED`).
    """

    def __init__(
        self,
        run_dir: str | Path,
        model: nn.Module,
        data: DataBundle,
        recipe: Recipe,
        *,
        seed: int,
        config: dict[str, Any],
        criterion: Criterion | None = None,
        arch: str | None = None,
        device: str | torch.device | None = None,
        extra_modules: nn.Module | None = None,
        augment: bool | None = None,
        compile: bool | None = None,
        desc: str = "train",
        dist: DistContext = distributed.SINGLE,
    ) -> None:
        self.run_dir = Path(run_dir)
        self.dist = dist
        self.per_rank_batch = distributed.per_rank_batch(recipe.batch_size, dist.world_size)
        self._batch_weight = 1.0
        self.model = model
        self.data = data
        self.recipe = recipe
        self.seed = seed
        self.config = config
        self._criterion = criterion
        self.arch = arch or config.get("arch") or type(model).__name__
        self.device = resolve_device(device)
        self.extra_modules = extra_modules
        self.augment = augment
        self.want_compile = bool(recipe.compile if compile is None else compile)
        self.desc = desc
        cuda = self.device.type == "cuda"
        self.bf16 = recipe.bf16 and cuda
        self.channels_last = recipe.channels_last and cuda
        self.history: list[dict[str, float]] = []
        self.best: dict[str, Any] = {"epoch": None, "val_acc": -math.inf}
        self.start_epoch = 0
        self.forward: nn.Module = model
        self.compiled = False
        self._first_step_checked = False
        self.effective: dict[str, Any] = {}
        self.record: dict[str, Any] = {}

    @property
    def ckpt_dir(self) -> Path:
        return self.run_dir / "checkpoints"

    @property
    def last_path(self) -> Path:
        return self.ckpt_dir / "last.pt"

    # ------------------------------------------------------------------------------ the steps

    def criterion(self, forward: nn.Module, x, y, idx, epoch: int) -> tuple:
        """The training loss and the logits of one batch (override, or pass ``criterion``)."""
        if self._criterion is None:  # pragma: no cover - a subclass forgot to override
            raise NotImplementedError("pass a criterion or override Trainer.criterion")
        return self._criterion(forward, x, y, idx, epoch)

    def trainable_parameters(self) -> list[nn.Parameter]:
        params = [p for p in self.model.parameters() if p.requires_grad]
        if self.extra_modules is not None:  # frozen parameters (e.g. a teacher inside) are left out
            params += [p for p in self.extra_modules.parameters() if p.requires_grad]
        return params

    def lr_arch(self) -> Any:
        """What the recipe's lr family is read from: the model's ``arch_cfg``, else the name."""
        from .models import settings_of

        return settings_of(self.model) or self.arch

    def setup(self) -> None:
        """Models onto the device (channels_last on CUDA), optimiser, loaders and scheduler."""
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True
        self.model = self.model.to(self.device)
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        if self.extra_modules is not None:
            self.extra_modules = self.extra_modules.to(self.device)
        self.train_module = distributed.wrap(self.model, self.dist, self.device)
        self.forward = self.train_module
        self.optimizer = make_optimizer(self.trainable_parameters(), self.recipe, self.lr_arch())
        self.train_loader, self.val_loader, self.test_loader = self.make_loaders()
        self.scheduler = make_scheduler(self.optimizer, self.recipe, len(self.train_loader))

    def make_loaders(self) -> tuple:
        """Train, validation (or None) and test loaders, sharded over the ranks."""
        return make_loaders(self.data, self.recipe, self.device, **self.loader_options())

    def loader_options(self) -> dict[str, Any]:
        """What every run's loaders take from it: seed, augmentation, memory format, rank."""
        return {
            "seed": self.seed,
            "augment": self.augment,
            "channels_last": self.channels_last,
            "rank": self.dist.rank,
            "world_size": self.dist.world_size,
        }

    def resume(self, allowed: bool = True) -> None:
        """Continue from ``last.pt`` when the run directory holds one; else seed a fresh run."""
        if not self.last_path.exists():
            seed_everything(self.seed)
            return
        if not allowed:
            raise FileExistsError(
                f"{self.run_dir} already holds a run; resume it or choose another --out"
            )
        ckpt = load_checkpoint(self.last_path, "cpu")  # RNG states must stay on the CPU
        diff = config_mismatch(ckpt["config"], self.config)
        if ckpt.get("recipe") != self.recipe.to_dict():
            diff.append("recipe")
        if ckpt.get("seed") != self.seed:
            diff.append("seed")
        if diff:
            raise ConfigError(
                f"{self.run_dir} holds a run with a different config (fields {', '.join(diff)}); "
                "use another --out"
            )
        self.model.load_state_dict(ckpt["model"])
        if self.extra_modules is not None:
            self.extra_modules.load_state_dict(ckpt["extra"])
        fused = [group.get("fused") for group in self.optimizer.param_groups]
        self.optimizer.load_state_dict(ckpt["optimizer"])
        # load_state_dict keeps the saved run's kernel choice; use the one made for this device.
        for group, flag in zip(self.optimizer.param_groups, fused):
            group["fused"] = flag
        self.scheduler.load_state_dict(ckpt["scheduler"])
        restore_rng_state(ckpt["rng"])
        self.history, self.best, self.start_epoch = ckpt["history"], ckpt["best"], ckpt["epoch"]

    def compile(self) -> None:
        """Compile the student's forward (CUDA and recipe permitting), with fresh dynamo caches."""
        if self.want_compile and self.device.type in COMPILE_DEVICES:
            reset_compiler()
        self.forward, self.compiled = maybe_compile(
            self.train_module, self.want_compile, self.device, self.recipe.compile_mode
        )

    def uncompile(self) -> None:
        """Replace every compiled part by its eager model (subclasses add theirs)."""
        self.forward, self.compiled = self.train_module, False

    def write_record(self) -> None:
        """``config.json``: config, seed, recipe, data, effective device settings, environment."""
        self.effective = {
            "device": str(self.device),
            "bf16": self.bf16,
            "channels_last": self.channels_last,
            "compile_requested": self.want_compile,
            "augment": self.train_loader.augment,
            "steps_per_epoch": len(self.train_loader),
            "compiled": self.compiled,
            "world_size": self.dist.world_size,
            "per_rank_batch_size": self.per_rank_batch,
            "global_batch_size": self.recipe.batch_size,
        }
        self.record = {
            "config": self.config,
            "seed": self.seed,
            "recipe": self.recipe.to_dict(),
            "data": self.data.info,
            "effective": self.effective,
            "environment": environment(),
        }
        if not self.dist.is_main:
            return
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if self.start_epoch == 0 or not (self.run_dir / "config.json").exists():
            write_json(self.run_dir / "config.json", self.record)

    def forward_backward(self, x, y, idx, epoch: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Loss and logits of one batch, gradients accumulated into cleared ``.grad``."""
        with autocast(self.device, self.bf16):
            loss, logits = self.criterion(self.forward, x, y, idx, epoch)
        self.optimizer.zero_grad(set_to_none=True)
        (loss * self._batch_weight if self._batch_weight != 1.0 else loss).backward()
        if self.extra_modules is not None:
            distributed.average_gradients(self.extra_modules, self.dist)
        return loss, logits

    def train_step(self, x, y, idx, epoch: int) -> tuple[torch.Tensor, torch.Tensor]:
        """One optimiser step; the first compiled step is guarded (see :meth:`_first_step`)."""
        if self.compiled and hasattr(torch.compiler, "cudagraph_mark_step_begin"):
            torch.compiler.cudagraph_mark_step_begin()
        if self.compiled and not self._first_step_checked:
            loss, logits = self._first_step(x, y, idx, epoch)
        else:
            loss, logits = self.forward_backward(x, y, idx, epoch)
        self.optimizer.step()
        self.scheduler.step()
        return loss, logits

    def _first_step(self, x, y, idx, epoch: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The first compiled step, with everything that compiles lazily inside the guard.

        If compilation fails anywhere in it (a teacher compiled inside the criterion, the
        student, the backward compiled at ``loss.backward()``), the buffers (BatchNorm statistics)
        and the torch RNG are put back, every compiled part is replaced by its eager model, the
        record says so, and the step runs eagerly. If dynamo compiled nothing (it skipped the
        frame), the run is recorded as eager too.
        """
        self._first_step_checked = True
        saved = self._snapshot()
        graphs = compiled_graph_count()
        try:
            loss, logits = self.forward_backward(x, y, idx, epoch)
        except Exception as exc:
            warnings.warn(f"compiled step failed ({exc}); training eagerly", stacklevel=3)
            self._restore(saved)
            self._fall_back("failed: " + f"{type(exc).__name__}: {exc}"[:300])
            return self.forward_backward(x, y, idx, epoch)
        if compiled_graph_count() == graphs:
            warnings.warn("dynamo compiled nothing for this run; it runs eagerly", stacklevel=3)
            self._fall_back("dynamo compiled no graph")
        return loss, logits

    def _fall_back(self, reason: str) -> None:
        self.uncompile()
        self.effective["compiled"] = False
        self.effective["compile_fallback"] = reason
        if self.dist.is_main:
            write_json(self.run_dir / "config.json", self.record)

    def _modules(self) -> list[nn.Module]:
        return [m for m in (self.model, self.extra_modules) if m is not None]

    def _snapshot(self) -> dict[str, Any]:
        buffers = [{k: b.clone() for k, b in m.named_buffers()} for m in self._modules()]
        return {"buffers": buffers, "rng": torch.get_rng_state()}

    def _restore(self, saved: dict[str, Any]) -> None:
        with torch.no_grad():
            for module, buffers in zip(self._modules(), saved["buffers"]):
                for name, value in module.named_buffers():
                    value.copy_(buffers[name])
        torch.set_rng_state(saved["rng"])

    def train_mode(self) -> None:
        self.model.train()
        if self.extra_modules is not None:
            self.extra_modules.train()

    def train_epoch(self, epoch: int, bar) -> dict[str, float]:
        """One pass over the training set; the epoch's row of ``metrics.csv`` (training part)."""
        self.train_mode()
        loader = self.train_loader
        loader.set_epoch(epoch)
        loss_sum = torch.zeros((), dtype=torch.float64, device=self.device)
        correct = torch.zeros((), dtype=torch.int64, device=self.device)
        seen = 0
        lr_start = self.optimizer.param_groups[0]["lr"]
        world = self.dist.world_size
        self._synchronize()
        t0 = time.perf_counter()
        for step, (x, y, idx) in enumerate(loader):
            if world > 1:  # this rank's share of the global batch (1 unless the batch is uneven)
                self._batch_weight = len(y) * world / loader.global_batch_len(step)
            loss, logits = self.train_step(x, y, idx, epoch)
            loss_sum += loss.detach().double() * len(y)
            correct += (logits.detach().argmax(1) == y).sum()
            seen += len(y)
            bar.update(len(y) * world)
        self._batch_weight = 1.0
        self._synchronize()
        seconds = time.perf_counter() - t0
        totals = torch.stack([loss_sum, correct.double(), loss_sum.new_tensor(float(seen))])
        loss_sum, correct, seen = distributed.all_reduce_sum(totals, self.dist).tolist()
        train_loss = float(loss_sum) / seen
        if not math.isfinite(train_loss):
            raise RuntimeError(f"training diverged at epoch {epoch + 1} (loss {train_loss})")
        return {
            "epoch": epoch + 1,
            "lr": lr_start,
            "train_loss": train_loss,
            "train_acc": float(correct) / seen,
            "epoch_seconds": seconds,
            "images_per_s": seen / seconds if seconds > 0 else float("nan"),
        }

    def _synchronize(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def evaluate(self, row: dict[str, float]) -> None:
        """Add validation (when there is a split) and test metrics to the epoch's row."""
        for module in self._modules():  # every rank evaluates (and rank 0 saves) rank 0's model
            distributed.broadcast_buffers(module, self.dist)
        splits = [
            ("val", self.val_loader, self.data.val),
            ("test", self.test_loader, self.data.test),
        ]
        for prefix, loader, dataset in splits:
            if loader is None:
                continue
            metrics = evaluate(
                self.model, loader, p_star=dataset.p_star, bf16=self.bf16, dist=self.dist
            )
            row.update({f"{prefix}_{k}": v for k, v in metrics.items()})

    def checkpoint_state(self, epoch: int) -> dict[str, Any]:
        """Everything ``last.pt`` holds after ``epoch`` (1-based) epochs."""
        return {
            "format": CHECKPOINT_FORMAT,
            "kind": "full",
            "arch": self.arch,
            "num_classes": self.data.num_classes,
            "epoch": epoch,
            "model": self.model.state_dict(),
            "extra": None if self.extra_modules is None else self.extra_modules.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "rng": capture_rng_state(),
            "history": self.history,
            "best": self.best,
            "config": self.config,
            "recipe": self.recipe.to_dict(),
            "seed": self.seed,
            # the teacher loss, or the distillation method that trained a student
            "loss": self.config.get("loss") or self.config.get("method"),
        }

    def save(self, row: dict[str, float]) -> None:
        """Record the epoch: history, best epoch, checkpoints and ``metrics.csv``."""
        epoch = int(row["epoch"])
        self.history.append(row)
        improved = self.val_loader is not None and row["val_acc"] > self.best["val_acc"]
        if improved:
            self.best = {"epoch": epoch, "val_acc": row["val_acc"]}
        if not self.dist.is_main:
            distributed.barrier(self.dist)  # rank 0 has written the checkpoint when this returns
            return
        state = self.checkpoint_state(epoch)
        if improved:
            best = {**state, "kind": "best", "optimizer": None, "scheduler": None}
            save_checkpoint(self.ckpt_dir / "best.pt", best)
        every = self.recipe.checkpoint_every
        if every and epoch % every == 0:
            save_checkpoint(self.ckpt_dir / f"epoch_{epoch:04d}.pt", state)
        write_table(self.run_dir / "metrics.csv", _frame(self.history))
        save_checkpoint(self.last_path, state)
        distributed.barrier(self.dist)

    def summary(self) -> dict[str, Any]:
        """The run's headline numbers (also ``summary.json``)."""
        out = summarise(
            self.history, self.best, config=self.config, seed=self.seed, info=self.data.info
        )
        out.update(world_size=self.dist.world_size, per_rank_batch_size=self.per_rank_batch)
        return out

    # ------------------------------------------------------------------------------ the run

    def fit(
        self,
        *,
        resume: bool = True,
        on_epoch_end: Callable[[int, dict[str, float]], None] | None = None,
    ) -> dict[str, Any]:
        """Run the remaining epochs and return the summary (a finished run is not retrained).

        ``on_epoch_end(epoch, row)`` runs after each epoch's checkpoint (raising there interrupts
        the run cleanly, which the tests use).
        """
        tensorboard = None  # --tensorboard: event files beside metrics.csv (rank 0)
        if self.config.get("tensorboard") and self.dist.is_main:
            from .tb_log import EpochLogger

            tensorboard = EpochLogger(self.run_dir)
        self.setup()
        self.resume(resume)
        self.compile()
        self.write_record()
        remaining = self.recipe.epochs - self.start_epoch
        bar = progress(
            total=remaining * self.train_loader.images_per_epoch * self.dist.world_size,
            unit="img",
            unit_scale=True,
            desc=self.desc,
            **({} if self.dist.is_main else {"disable": True}),
        )
        log = ProgressLog(
            f"{self.desc} {self.run_dir}", self.recipe.epochs, unit="epoch", done=self.start_epoch
        )
        try:
            for epoch in range(self.start_epoch, self.recipe.epochs):
                row = self.train_epoch(epoch, bar)
                self.evaluate(row)
                self.save(row)
                test_acc = row.get("test_acc", float("nan"))
                log.finished("", f"train loss {row['train_loss']:.4f}, test acc {test_acc:.4f}")
                bar.set_postfix(
                    epoch=epoch + 1,
                    loss=f"{row['train_loss']:.3f}",
                    val=f"{row.get('val_acc', float('nan')):.3f}",
                )
                if tensorboard is not None:
                    tensorboard(epoch + 1, row)
                if on_epoch_end is not None:
                    on_epoch_end(epoch + 1, row)
        finally:
            bar.close()
            if tensorboard is not None:
                tensorboard.close()
        summary = self.summary()
        if self.dist.is_main:
            write_json(self.run_dir / "summary.json", summary)
        return summary


class ConfigRun(abc.ABC):
    """A run made from its config (``out``, ``seed``, ``device``, ``augment``, ``compile``): the
    steps a teacher or distillation run shares, which a data set may override (the ImageNet runs
    replace the model, the record and the trainer's options). :meth:`run` validates the config,
    joins the process group and calls :meth:`train`."""

    trainer_class: type[Trainer] = Trainer
    #: Prefix of the progress description.
    label = ""

    def __init__(self, config: Any) -> None:
        self.config = config
        self.dist: DistContext = distributed.SINGLE
        self.device = torch.device("cpu")

    def run(
        self,
        *,
        resume: bool = True,
        on_epoch_end: Callable[[int, dict[str, float]], None] | None = None,
    ) -> dict[str, Any]:
        """Train into ``config.out`` (every torchrun process runs this); :meth:`train`'s result."""
        self.config.validate()
        self.dist, self.device = distributed.setup(self.config.device)
        return self.train(resume=resume, on_epoch_end=on_epoch_end)

    @abc.abstractmethod
    def train(self, **fit_kwargs: Any) -> dict[str, Any]:
        """Load, build and fit (``fit_kwargs`` go to :meth:`Trainer.fit`); the run's result."""

    def create_model(self, arch: str, num_classes: int) -> nn.Module:
        from .models import create_model

        return create_model(arch, num_classes=num_classes)

    def record(self) -> dict[str, Any]:
        """The config as written to ``config.json`` and compared on resume."""
        return dataclasses.asdict(self.config)

    def make_trainer(self, *args: Any, desc: str, **kwargs: Any) -> Trainer:
        """``trainer_class(out, *args, ...)`` with the config's seed and run options."""
        config = self.config
        return self.trainer_class(
            config.out,
            *args,
            seed=config.seed,
            device=self.device,
            augment=config.augment,
            compile=config.compile,
            desc=self.label + desc,
            dist=self.dist,
            **kwargs,
        )


def _frame(history: list[dict[str, float]]):
    import pandas as pd

    return pd.DataFrame(history)


def fit(
    run_dir: str | Path,
    model: nn.Module,
    criterion: Criterion,
    data: DataBundle,
    recipe: Recipe,
    *,
    resume: bool = True,
    on_epoch_end: Callable[[int, dict[str, float]], None] | None = None,
    **kwargs: Any,
) -> dict[str, Any]:
    """Train ``model`` with ``criterion``: ``Trainer(run_dir, model, data, recipe,
    criterion=criterion, **kwargs).fit(...)``; returns the summary."""
    trainer = Trainer(run_dir, model, data, recipe, criterion=criterion, **kwargs)
    return trainer.fit(resume=resume, on_epoch_end=on_epoch_end)
