"""Training loop for CIFAR-shaped classifiers (teachers here; the distillation trainer reuses it).

Building blocks, each usable on its own:

- :func:`load_data` -> :class:`DataBundle`: CIFAR-100 or the synthetic exact-BCPD data, with a
  validation split carved from the training set (seeded by ``data_seed``, so every run on the same
  data shares it) and optional size limits.
- :func:`make_loaders`: device-resident train / val / test loaders for a bundle and a recipe.
- :func:`evaluate`: accuracy, NLL and Brier score, and on synthetic data the mean squared error
  and KL divergence KL(p* || p_model) of the model's probabilities to the exact BCPD.
- :func:`fit`: the epoch loop for any model and any criterion ``criterion(model, x, y, idx,
  epoch) -> (loss, logits)``: bf16 autocast and channels_last on CUDA, torch.compile on CUDA
  only (falls back to eager on failure), per-iteration lr schedule, progress bar with images/s and
  ETA, per-epoch ``metrics.csv``, checkpoints ``last.pt`` / ``best.pt`` (best validation accuracy;
  the test set is never used for selection) / ``epoch_NNNN.pt``, written atomically, and resume to
  the same result as an uninterrupted run (model, optimiser, scheduler, RNG states, epoch and
  history are all in ``last.pt``; the data order of epoch e depends only on (seed, e)).
- :func:`train_teacher`: the teacher run behind ``bcpd-sim cifar100 teacher``.
- :func:`load_model_from_checkpoint`: rebuild a trained model (e.g. a distillation teacher).

Run directory: ``config.json`` (config, recipe, seed, effective device settings, versions),
``metrics.csv``, ``summary.json`` (last-epoch and best-epoch test accuracy, labelled),
``checkpoints/``.
"""

from __future__ import annotations

import json
import math
import random
import time
import warnings
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..device import resolve_device
from ..errors import ConfigError
from ..io import save_torch, write_json, write_table
from ..progress import ProgressLog, progress
from ..provenance import environment
from ..validation import check_choice, check_int
from .data import ImageDataset, load_cifar100, split_validation
from .losses import list_losses, teacher_loss
from .pipeline import DeviceLoader
from .recipes import Recipe, get_recipe, list_recipes, make_optimizer, make_scheduler

CHECKPOINT_FORMAT = "bcpd_sim.vision/checkpoint-1"
DATA_SOURCES = ("cifar100", "synthetic")
#: Config keys that may change between a run and its resumption (they do not affect results).
RESUME_IGNORED = frozenset({"out", "device", "data_dir", "download", "progress"})

Criterion = Callable[[nn.Module, torch.Tensor, torch.Tensor, torch.Tensor, int], tuple]


# -------------------------------------------------------------------------------------- data


@dataclass
class DataBundle:
    """Train / validation / test splits of one data source, plus what the loop needs to know."""

    train: ImageDataset
    val: ImageDataset | None
    test: ImageDataset
    num_classes: int
    source: str
    augment_default: bool
    info: dict = field(default_factory=dict)

    @property
    def has_p_star(self) -> bool:
        return self.test.p_star is not None


def load_data(
    data: str = "cifar100",
    *,
    data_dir: str | None = None,
    download: bool = False,
    synthetic_preset: str = "easy",
    num_classes: int | None = None,
    val_size: int = 5000,
    train_limit: int | None = None,
    test_limit: int | None = None,
    data_seed: int = 0,
) -> DataBundle:
    """Load ``data`` ("cifar100" or "synthetic"), limit it and carve the validation split.

    The limits apply before the split (``train_limit`` images are split into train and val).
    Synthetic data (default 100 classes, 50,000 / 10,000 images, or the limits) is drawn from the
    world seeded by ``data_seed``; it comes with exact p* and without augmentation by default.
    """
    check_choice("data", data, DATA_SOURCES)
    if data == "cifar100":
        if num_classes not in (None, 100):
            raise ConfigError("num_classes applies to synthetic data only (CIFAR-100 has 100)")
        train, test = load_cifar100(data_dir, download=download)
        train, test = train.head(train_limit), test.head(test_limit)
        info: dict[str, Any] = {"source": "cifar100"}
        augment_default = True
    else:
        from .synthetic import make_synthetic, spec_dict

        train, test, world = make_synthetic(
            synthetic_preset,
            n_train=train_limit or 50_000,
            n_test=test_limit or 10_000,
            seed=data_seed,
            num_classes=num_classes,
        )
        info = {"source": "synthetic", "preset": synthetic_preset, "spec": spec_dict(world.spec)}
        info["bayes_test_acc"] = float(np.mean(test.p_star.argmax(1) == test.labels))
        augment_default = False
    train, val = split_validation(train, val_size, seed=data_seed)
    info.update(n_train=len(train), n_val=0 if val is None else len(val), n_test=len(test))
    return DataBundle(train, val, test, test.num_classes, data, augment_default, info)


def make_loaders(
    data: DataBundle,
    recipe: Recipe,
    device: torch.device,
    *,
    seed: int,
    augment: bool | None = None,
    channels_last: bool = False,
) -> tuple[DeviceLoader, DeviceLoader | None, DeviceLoader]:
    """Device-resident loaders: shuffled (and augmented) train, in-order val and test."""
    augment = data.augment_default if augment is None else augment
    train = DeviceLoader(
        data.train,
        recipe.batch_size,
        device,
        shuffle=True,
        augment=augment,
        drop_last=len(data.train) >= 2 * recipe.batch_size,
        seed=seed,
        channels_last=channels_last,
        return_index=True,
    )

    def eval_loader(ds: ImageDataset | None) -> DeviceLoader | None:
        if ds is None:
            return None
        return DeviceLoader(
            ds, recipe.eval_batch_size, device, channels_last=channels_last, return_index=True
        )

    return train, eval_loader(data.val), eval_loader(data.test)


# -------------------------------------------------------------------------------- evaluation


def autocast(device: torch.device, enabled: bool):
    """bf16 autocast on CUDA when ``enabled``; a no-op context otherwise (CPU runs stay fp32)."""
    if enabled and device.type == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return nullcontext()


_autocast = autocast  # older private name, kept for callers that imported it


@torch.no_grad()
def evaluate(
    model: nn.Module,
    loader: DeviceLoader,
    *,
    p_star: np.ndarray | None = None,
    bf16: bool = False,
) -> dict[str, float]:
    """Accuracy, NLL and Brier score on a loader; with ``p_star`` (rows aligned with the loader's
    dataset) also ``mse_pstar`` = mean_n sum_k (p_nk - p*_nk)^2 and ``kl_pstar`` = mean_n
    KL(p*_n || p_n), computed in float64. The loader must not shuffle unless it yields indices."""
    was_training = model.training
    model.eval()
    device = loader.device
    ps = None if p_star is None else torch.as_tensor(p_star, dtype=torch.float64, device=device)
    sums = torch.zeros(5, dtype=torch.float64, device=device)
    offset = 0
    for batch in loader:
        x, y = batch[0], batch[1]
        # Rows of p_star: the loader's indices, or (in-order loaders) a running offset.
        idx = batch[2] if len(batch) > 2 else torch.arange(offset, offset + len(y), device=device)
        offset += len(y)
        with _autocast(device, bf16):
            logits = model(x)
        logp = torch.log_softmax(logits.double(), dim=1)
        p = logp.exp()
        onehot = F.one_hot(y, p.shape[1]).double()
        sums[0] += (logits.argmax(1) == y).sum()
        sums[1] += -(logp.gather(1, y[:, None])).sum()
        sums[2] += (p - onehot).pow(2).sum()
        if ps is not None:
            q = ps.index_select(0, idx)
            sums[3] += (p - q).pow(2).sum()
            sums[4] += (torch.xlogy(q, q) - q * logp).sum()
    model.train(was_training)
    n = loader.num_images
    s = (sums / n).tolist()
    out = {"acc": s[0], "nll": s[1], "brier": s[2]}
    if ps is not None:
        out.update(mse_pstar=s[3], kl_pstar=s[4])
    return out


# -------------------------------------------------------------------------------- checkpoints


def capture_rng_state() -> dict[str, Any]:
    """Python, numpy, torch CPU (and CUDA when present) RNG states."""
    state = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by :func:`fit`; a clear error if it is missing or foreign."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        ckpt = torch.load(path, map_location=device, weights_only=False)
    except Exception as exc:
        raise ConfigError(f"checkpoint {path} is unreadable ({exc})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise ConfigError(f"{path} is not a bcpd-sim vision checkpoint")
    return ckpt


def load_model_from_checkpoint(
    path: str | Path, device: str | torch.device = "cpu", *, num_classes: int | None = None
) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the model saved in ``path`` (``best.pt``, ``last.pt`` or ``epoch_NNNN.pt``).

    Returns ``(model, checkpoint)`` with the model on ``device`` in eval mode. ``num_classes``,
    when given, must match the checkpoint (ConfigError otherwise).
    """
    from .models import create_model

    ckpt = load_checkpoint(path, device)
    if num_classes is not None and ckpt["num_classes"] != num_classes:
        raise ConfigError(
            f"checkpoint {path} has {ckpt['num_classes']} classes, expected {num_classes}"
        )
    model = create_model(ckpt["arch"], num_classes=ckpt["num_classes"])
    model.load_state_dict(ckpt["model"])
    return model.to(device).eval(), ckpt


def _config_mismatch(saved: dict, current: dict) -> list[str]:
    keys = (set(saved) | set(current)) - RESUME_IGNORED
    return sorted(k for k in keys if saved.get(k) != current.get(k))


# ------------------------------------------------------------------------------------ the loop


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
    if not enabled or device.type != "cuda" or not hasattr(torch, "compile"):
        return model, False
    try:
        return torch.compile(model, mode=mode), True
    except Exception as exc:  # pragma: no cover - depends on the installation
        warnings.warn(f"torch.compile failed ({exc}); training eagerly", stacklevel=2)
        return model, False


def fit(
    run_dir: str | Path,
    model: nn.Module,
    criterion: Criterion,
    data: DataBundle,
    recipe: Recipe,
    *,
    seed: int,
    config: dict[str, Any],
    arch: str | None = None,
    device: str | torch.device | None = None,
    extra_modules: nn.Module | None = None,
    augment: bool | None = None,
    compile: bool | None = None,
    resume: bool = True,
    on_epoch_end: Callable[[int, dict[str, float]], None] | None = None,
    desc: str = "train",
) -> dict[str, Any]:
    """Train ``model`` with ``criterion`` under ``recipe``; write the run into ``run_dir``.

    ``criterion(model_or_compiled, x, y, idx, epoch) -> (loss, logits)`` is called inside the
    autocast region (``idx``: rows of ``data.train``; ``epoch``: 0-based); ``extra_modules`` are
    trained too (e.g. distillation connectors) and checkpointed. A frozen distillation teacher
    belongs in the criterion's closure (eval mode, no_grad), not in ``extra_modules``. ``config`` (JSON-able) is written to ``config.json`` and must match on resume
    (except the keys in RESUME_IGNORED). A finished run returns its summary without training.
    ``on_epoch_end(epoch, row)`` runs after each epoch's checkpoint (raising there interrupts
    the run cleanly, which the tests use). Returns the summary dict (also ``summary.json``).
    """
    run_dir = Path(run_dir)
    ckpt_dir = run_dir / "checkpoints"
    device = resolve_device(device)
    cuda = device.type == "cuda"
    bf16 = recipe.bf16 and cuda
    channels_last = recipe.channels_last and cuda
    want_compile = recipe.compile if compile is None else compile
    arch = arch or config.get("arch") or type(model).__name__

    if cuda:
        torch.backends.cudnn.benchmark = True
    model = model.to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    if extra_modules is not None:
        extra_modules = extra_modules.to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    if extra_modules is not None:  # frozen parameters (e.g. a teacher inside) are left out
        params += [p for p in extra_modules.parameters() if p.requires_grad]
    optimizer = make_optimizer(params, recipe, arch)
    train_loader, val_loader, test_loader = make_loaders(
        data, recipe, device, seed=seed, augment=augment, channels_last=channels_last
    )
    steps_per_epoch = len(train_loader)
    scheduler = make_scheduler(optimizer, recipe, steps_per_epoch)

    history: list[dict[str, float]] = []
    best: dict[str, Any] = {"epoch": None, "val_acc": -math.inf}
    start_epoch = 0
    last_path = ckpt_dir / "last.pt"
    if last_path.exists():
        if not resume:
            raise FileExistsError(
                f"{run_dir} already holds a run; resume it or choose another --out"
            )
        ckpt = load_checkpoint(last_path, "cpu")  # RNG states must stay on the CPU
        diff = _config_mismatch(ckpt["config"], config)
        if ckpt.get("recipe") != recipe.to_dict():
            diff.append("recipe")
        if ckpt.get("seed") != seed:
            diff.append("seed")
        if diff:
            raise ConfigError(
                f"{run_dir} holds a run with a different config (fields {', '.join(diff)}); "
                "use another --out"
            )
        model.load_state_dict(ckpt["model"])
        if extra_modules is not None:
            extra_modules.load_state_dict(ckpt["extra"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        restore_rng_state(ckpt["rng"])
        history, best, start_epoch = ckpt["history"], ckpt["best"], ckpt["epoch"]
    else:
        torch.manual_seed(seed)
        np.random.seed(seed % 2**32)
        random.seed(seed)

    effective = {
        "device": str(device),
        "bf16": bf16,
        "channels_last": channels_last,
        "compile_requested": bool(want_compile),
        "augment": train_loader.augment,
        "steps_per_epoch": steps_per_epoch,
    }
    record = {
        "config": config,
        "seed": seed,
        "recipe": recipe.to_dict(),
        "data": data.info,
        "effective": effective,
        "environment": environment(),
    }
    forward, compiled = maybe_compile(model, bool(want_compile), device, recipe.compile_mode)
    effective["compiled"] = compiled
    run_dir.mkdir(parents=True, exist_ok=True)
    if start_epoch == 0 or not (run_dir / "config.json").exists():
        write_json(run_dir / "config.json", record)
    p_val = None if data.val is None else data.val.p_star
    p_test = data.test.p_star

    remaining = recipe.epochs - start_epoch
    bar = progress(
        total=remaining * train_loader.images_per_epoch, unit="img", unit_scale=True, desc=desc
    )
    log = ProgressLog(f"{desc} {run_dir}", recipe.epochs, unit="epoch", done=start_epoch)
    try:
        for epoch in range(start_epoch, recipe.epochs):
            model.train()
            if extra_modules is not None:
                extra_modules.train()
            train_loader.set_epoch(epoch)
            loss_sum = torch.zeros((), dtype=torch.float64, device=device)
            correct = torch.zeros((), dtype=torch.int64, device=device)
            seen = 0
            lr_start = optimizer.param_groups[0]["lr"]
            if cuda:
                torch.cuda.synchronize(device)
            t0 = time.perf_counter()
            for x, y, idx in train_loader:
                if (
                    compiled
                    and hasattr(torch, "compiler")
                    and hasattr(torch.compiler, "cudagraph_mark_step_begin")
                ):
                    torch.compiler.cudagraph_mark_step_begin()
                try:
                    with _autocast(device, bf16):
                        loss, logits = criterion(forward, x, y, idx, epoch)
                except Exception as exc:
                    if not compiled:
                        raise
                    warnings.warn(f"compiled model failed ({exc}); training eagerly", stacklevel=2)
                    forward, compiled = model, False
                    effective["compiled"] = False
                    write_json(run_dir / "config.json", record)
                    with _autocast(device, bf16):
                        loss, logits = criterion(forward, x, y, idx, epoch)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                scheduler.step()
                loss_sum += loss.detach().double() * len(y)
                correct += (logits.detach().argmax(1) == y).sum()
                seen += len(y)
                bar.update(len(y))
            if cuda:
                torch.cuda.synchronize(device)
            seconds = time.perf_counter() - t0
            train_loss = float(loss_sum) / seen
            if not math.isfinite(train_loss):
                raise RuntimeError(f"training diverged at epoch {epoch + 1} (loss {train_loss})")
            row: dict[str, float] = {
                "epoch": epoch + 1,
                "lr": lr_start,
                "train_loss": train_loss,
                "train_acc": float(correct) / seen,
                "epoch_seconds": seconds,
                "images_per_s": seen / seconds if seconds > 0 else float("nan"),
            }
            if val_loader is not None:
                row.update(
                    {
                        f"val_{k}": v
                        for k, v in evaluate(model, val_loader, p_star=p_val, bf16=bf16).items()
                    }
                )
            row.update(
                {
                    f"test_{k}": v
                    for k, v in evaluate(model, test_loader, p_star=p_test, bf16=bf16).items()
                }
            )
            history.append(row)
            improved = val_loader is not None and row["val_acc"] > best["val_acc"]
            if improved:
                best = {"epoch": epoch + 1, "val_acc": row["val_acc"]}
            state = {
                "format": CHECKPOINT_FORMAT,
                "kind": "full",
                "arch": arch,
                "num_classes": data.num_classes,
                "epoch": epoch + 1,
                "model": model.state_dict(),
                "extra": None if extra_modules is None else extra_modules.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "rng": capture_rng_state(),
                "history": history,
                "best": best,
                "config": config,
                "recipe": recipe.to_dict(),
                "seed": seed,
            }
            if improved:
                save_torch(
                    ckpt_dir / "best.pt",
                    {**state, "kind": "best", "optimizer": None, "scheduler": None},
                )
            if recipe.checkpoint_every and (epoch + 1) % recipe.checkpoint_every == 0:
                save_torch(ckpt_dir / f"epoch_{epoch + 1:04d}.pt", state)
            write_table(run_dir / "metrics.csv", _frame(history))
            save_torch(last_path, state)
            bar.set_postfix(
                epoch=epoch + 1,
                loss=f"{train_loss:.3f}",
                val=f"{row.get('val_acc', float('nan')):.3f}",
            )
            log.finished("", f"train loss {train_loss:.4f}, test acc {row['test_acc']:.4f}")
            if on_epoch_end is not None:
                on_epoch_end(epoch + 1, row)
    finally:
        bar.close()
    summary = summarise(history, best, config=config, seed=seed, data=data)
    write_json(run_dir / "summary.json", summary)
    return summary


def _frame(history: list[dict[str, float]]):
    import pandas as pd

    return pd.DataFrame(history)


def summarise(
    history: list[dict[str, float]],
    best: dict[str, Any],
    *,
    config: dict[str, Any],
    seed: int,
    data: DataBundle | None = None,
) -> dict[str, Any]:
    """The run's headline numbers, labelled: last epoch and best-on-validation epoch."""
    if not history:
        raise ConfigError("no epochs were trained")
    last = history[-1]
    out: dict[str, Any] = {
        "arch": config.get("arch"),
        "loss": config.get("loss"),
        "seed": seed,
        "epochs_trained": int(last["epoch"]),
        "selection": "best_epoch = highest validation accuracy (the test set is never used to select)",
        "last_epoch": int(last["epoch"]),
        "last_epoch_test_acc": last["test_acc"],
        "best_epoch": best["epoch"],
        "best_epoch_val_acc": None if best["epoch"] is None else best["val_acc"],
        "best_epoch_test_acc": None,
    }
    for key in ("mse_pstar", "kl_pstar", "nll", "brier"):
        if f"test_{key}" in last:
            out[f"last_epoch_test_{key}"] = last[f"test_{key}"]
    if best["epoch"] is not None:
        row = history[best["epoch"] - 1]
        out["best_epoch_test_acc"] = row["test_acc"]
        for key in ("mse_pstar", "kl_pstar", "nll", "brier"):
            if f"test_{key}" in row:
                out[f"best_epoch_test_{key}"] = row[f"test_{key}"]
    if data is not None and "bayes_test_acc" in data.info:
        out["bayes_test_acc"] = data.info["bayes_test_acc"]
    return out


# ------------------------------------------------------------------------------------ teacher


@dataclass
class TeacherConfig:
    """Everything that defines a teacher run (the CLI's options)."""

    out: str
    arch: str = "resnet56"
    loss: str = "ce"
    mse_scale: float = 1.0
    recipe: str = "standard"
    data: str = "cifar100"
    data_dir: str | None = None
    download: bool = False
    synthetic_preset: str = "easy"
    num_classes: int | None = None
    seed: int = 0
    data_seed: int = 0
    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    val_size: int | None = None
    train_limit: int | None = None
    test_limit: int | None = None
    checkpoint_every: int | None = None
    augment: bool | None = None
    compile: bool | None = None
    device: str = "auto"

    def validate(self) -> TeacherConfig:
        """Cheap checks that run before any data is loaded."""
        from .models import list_models
        from .synthetic import list_presets

        check_choice("arch", self.arch, list_models())
        check_choice("loss", self.loss, list_losses())
        check_choice("recipe", self.recipe, list_recipes())
        check_choice("data", self.data, DATA_SOURCES)
        check_choice("synthetic preset", self.synthetic_preset, list_presets())
        check_int("seed", self.seed, minimum=0)
        check_int("data_seed", self.data_seed, minimum=0)
        teacher_loss(self.loss, mse_scale=self.mse_scale)
        self.make_recipe()
        resolve_device(self.device)
        return self

    def make_recipe(self) -> Recipe:
        return get_recipe(
            self.recipe,
            epochs=self.epochs,
            batch_size=self.batch_size,
            lr=self.lr,
            val_size=self.val_size,
            train_limit=self.train_limit,
            test_limit=self.test_limit,
            checkpoint_every=self.checkpoint_every,
        )


def train_teacher(
    config: TeacherConfig,
    *,
    resume: bool = True,
    on_epoch_end: Callable[[int, dict[str, float]], None] | None = None,
) -> dict[str, Any]:
    """Train one teacher (arch, loss, recipe, data, seed) into ``config.out``; return the summary."""
    from .models import create_model

    config.validate()
    recipe = config.make_recipe()
    data = load_data(
        config.data,
        data_dir=config.data_dir,
        download=config.download,
        synthetic_preset=config.synthetic_preset,
        num_classes=config.num_classes,
        val_size=recipe.val_size,
        train_limit=recipe.train_limit,
        test_limit=recipe.test_limit,
        data_seed=config.data_seed,
    )
    torch.manual_seed(config.seed)
    model = create_model(config.arch, num_classes=data.num_classes)
    loss = teacher_loss(config.loss, mse_scale=config.mse_scale)
    record = asdict(config)
    record["loss_function"] = f"{loss.fn.__module__}.{loss.fn.__name__}"
    return fit(
        config.out,
        model,
        supervised_criterion(loss),
        data,
        recipe,
        seed=config.seed,
        config=record,
        arch=config.arch,
        device=config.device,
        augment=config.augment,
        compile=config.compile,
        resume=resume,
        on_epoch_end=on_epoch_end,
        desc=f"{config.arch} {config.loss}",
    )


def read_summary(run_dir: str | Path) -> dict[str, Any]:
    """The ``summary.json`` of a finished run."""
    path = Path(run_dir) / "summary.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist (run not finished?)")
    return json.loads(path.read_text())
