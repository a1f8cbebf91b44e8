"""ImageNet teachers, distillation and evaluation on the shared vision trainer (single GPU or DDP).

:class:`ImageNetTrainer` and :class:`ImageNetDistillTrainer` are the CIFAR trainers
(:class:`bcpd_sim.vision.trainer.Trainer`, :class:`~bcpd_sim.vision.distill.trainer.DistillTrainer`)
with one step replaced: their loaders read the ImageFolder tree with Pillow in worker processes
(:mod:`bcpd_sim.imagenet.bundle`). Everything else is shared: recipe and schedule, bf16 and
channels_last on GPU, checkpoints (``last.pt``, ``best.pt``, ``epoch_NNNN.pt``), resume, DDP under
``torchrun``, ``config.json`` / ``metrics.csv`` / ``summary.json`` and, for distillation,
``teacher.json`` and the ``result.json`` the CE-vs-MSE table reads.

Test set = the official validation set (``val/``); the best epoch is chosen on images held out
of ``train/`` (see :mod:`bcpd_sim.imagenet.bundle`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .. import distributed
from ..errors import ConfigError
from ..io import write_json
from ..validation import check_choice, check_int
from ..vision.distill import create_distiller
from ..vision.distill.trainer import DistillTrainer, freeze, teacher_metrics, teacher_summary
from ..vision.evaluation import evaluate
from ..vision.losses import list_losses, teacher_loss
from ..vision.recipes import Recipe
from ..vision.runs import load_checkpoint
from ..vision.table import RESULT_FILE
from ..vision.trainer import Trainer, supervised_criterion
from .bundle import ImageNetBundle, load_imagenet, make_imagenet_loaders
from .data import CROP_SIZE, IMAGENET_CLASSES, RESIZE_SIZE
from .models import create_imagenet_model, list_imagenet_models
from .recipes import METHOD_DEFAULTS, get_imagenet_recipe, list_imagenet_recipes, method_options

#: Data settings a distillation run takes from its teacher's run unless given.
DATA_KEYS = (
    "num_classes",
    "val_per_class",
    "train_limit_per_class",
    "test_limit_per_class",
    "data_seed",
    "crop_size",
    "resize_size",
)


class _ImageFolderLoaders:
    """Trainer step override: ImageNet loaders (Pillow workers, rank-sharded)."""

    num_workers: int = 0

    def make_loaders(self) -> tuple:
        return make_imagenet_loaders(
            self.data,
            self.recipe,
            self.device,
            seed=self.seed,
            augment=self.augment,
            channels_last=self.channels_last,
            num_workers=self.num_workers,
            rank=self.dist.rank,
            world_size=self.dist.world_size,
        )


class ImageNetTrainer(_ImageFolderLoaders, Trainer):
    """The shared trainer on an ImageFolder tree."""

    def __init__(self, *args: Any, num_workers: int = 0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.num_workers = num_workers


class ImageNetDistillTrainer(_ImageFolderLoaders, DistillTrainer):
    """The distillation trainer on an ImageFolder tree."""

    def __init__(self, *args: Any, num_workers: int = 0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.num_workers = num_workers


@dataclass
class ImageNetData:
    """Which images are used and how they are cut (shared by teacher, distill and eval)."""

    num_classes: int | None = IMAGENET_CLASSES
    val_per_class: int = 10
    train_limit_per_class: int | None = None
    test_limit_per_class: int | None = None
    data_seed: int = 0
    crop_size: int = CROP_SIZE
    resize_size: int = RESIZE_SIZE

    def load(self, data_dir: str | None) -> ImageNetBundle:
        """The bundle from ``data_dir`` (or ``$BCPD_SIM_IMAGENET``)."""
        return load_imagenet(
            data_dir,
            num_classes=self.num_classes,
            val_per_class=self.val_per_class,
            train_limit_per_class=self.train_limit_per_class,
            test_limit_per_class=self.test_limit_per_class,
            data_seed=self.data_seed,
            strict_wnids=self.num_classes == IMAGENET_CLASSES,
            crop_size=self.crop_size,
            resize_size=self.resize_size,
        )


@dataclass
class RunOptions:
    """Recipe overrides and run settings shared by teacher and distillation runs."""

    out: str = ""
    data_dir: str | None = None
    recipe: str = "imagenet"
    seed: int = 0
    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    checkpoint_every: int | None = None
    augment: bool | None = None
    compile: bool | None = None
    device: str = "auto"
    workers: int = 8

    def make_recipe(self) -> Recipe:
        check_choice("recipe", self.recipe, list_imagenet_recipes())
        return get_imagenet_recipe(
            self.recipe,
            epochs=self.epochs,
            batch_size=self.batch_size,
            lr=self.lr,
            checkpoint_every=self.checkpoint_every,
        )


def _record(obj: Any) -> dict[str, Any]:
    """The config as recorded and compared on resume (``workers`` does not change results)."""
    record = asdict(obj)
    record.pop("workers", None)
    return record


@dataclass
class ImageNetTeacherConfig(RunOptions):
    arch: str = "resnet34"
    loss: str = "ce"
    mse_scale: float = 1.0
    data: ImageNetData = field(default_factory=ImageNetData)

    def validate(self) -> ImageNetTeacherConfig:
        check_choice("arch", self.arch, list_imagenet_models())
        check_choice("loss", self.loss, list_losses())
        teacher_loss(self.loss, mse_scale=self.mse_scale)
        check_int("seed", self.seed, minimum=0)
        check_int("workers", self.workers, minimum=0)
        self.make_recipe()
        return self


def train_imagenet_teacher(config: ImageNetTeacherConfig, **fit_kwargs: Any) -> dict[str, Any]:
    """Train one ImageNet teacher into ``config.out``; every torchrun process runs this."""
    config.validate()
    recipe = config.make_recipe()
    ctx, device = distributed.setup(config.device)
    data = config.data.load(config.data_dir)
    torch.manual_seed(config.seed)
    model = create_imagenet_model(config.arch, num_classes=data.num_classes)
    loss = teacher_loss(config.loss, mse_scale=config.mse_scale)
    record = _record(config)
    record.update(kind="teacher", dataset="imagenet")
    record["loss_function"] = f"{loss.fn.__module__}.{loss.fn.__name__}"
    trainer = ImageNetTrainer(
        config.out,
        model,
        data,
        recipe,
        criterion=supervised_criterion(loss),
        seed=config.seed,
        config=record,
        arch=config.arch,
        device=device,
        augment=config.augment,
        compile=config.compile,
        desc=f"imagenet {config.arch} {config.loss}",
        dist=ctx,
        num_workers=config.workers,
    )
    return trainer.fit(**fit_kwargs)


def load_imagenet_teacher(path: str | Path, device: torch.device) -> tuple[nn.Module, dict]:
    """A frozen ImageNet model from one of our checkpoints, and the checkpoint (without weights)."""
    ckpt = load_checkpoint(path, "cpu")
    check_choice("teacher architecture", ckpt["arch"], list_imagenet_models())
    model = create_imagenet_model(ckpt["arch"], num_classes=ckpt["num_classes"])
    model.load_state_dict(ckpt.pop("model"))
    return freeze(model.to(device)), ckpt


@dataclass
class ImageNetDistillConfig(RunOptions):
    teacher: str = ""
    student: str = "resnet18"
    method: str = "kd"
    method_options: dict[str, Any] = field(default_factory=dict)
    data: ImageNetData | None = None  # None: the teacher run's data settings

    def validate(self) -> ImageNetDistillConfig:
        check_choice("student architecture", self.student, list_imagenet_models())
        check_choice("ImageNet distillation method", self.method, METHOD_DEFAULTS)
        check_int("seed", self.seed, minimum=0)
        check_int("workers", self.workers, minimum=0)
        self.make_recipe()
        if not Path(self.teacher).is_file():
            raise FileNotFoundError(f"teacher checkpoint {self.teacher} does not exist")
        return self


def teacher_data(t_cfg: dict[str, Any]) -> ImageNetData:
    """The data settings of a teacher run (defaults for keys it did not record)."""
    saved = t_cfg.get("data") or {}
    return ImageNetData(
        **{k: v for k, v in saved.items() if k in ImageNetData.__dataclass_fields__}
    )


def distill_imagenet(config: ImageNetDistillConfig, **fit_kwargs: Any) -> dict[str, Any]:
    """Distil an ImageNet teacher checkpoint into a student; returns the ``result.json`` record."""
    config.validate()
    recipe = config.make_recipe()
    ctx, device = distributed.setup(config.device)
    teacher, t_ckpt = load_imagenet_teacher(config.teacher, device)
    t_cfg = t_ckpt.get("config") or {}
    data_settings = config.data or teacher_data(t_cfg)
    data = data_settings.load(config.data_dir or t_cfg.get("data_dir"))
    if t_ckpt["num_classes"] != data.num_classes:
        raise ConfigError(
            f"teacher {config.teacher} has {t_ckpt['num_classes']} classes, data {data.num_classes}"
        )
    tinfo = teacher_summary(t_ckpt, config.teacher)
    options = method_options(config.method, tinfo["arch"], config.student, config.method_options)
    if config.method == "dkd":
        options["teacher_arch"] = tinfo["arch"]
    torch.manual_seed(config.seed)
    student = create_imagenet_model(config.student, num_classes=data.num_classes)
    distiller = create_distiller(config.method, teacher, student, **options)
    run_dir = Path(config.out)
    record = _record(config)
    record.update(
        kind="distill",
        dataset="imagenet",
        arch=config.student,
        data=asdict(data_settings),
        teacher_arch=tinfo["arch"],
        teacher_loss=tinfo["loss"],
        method_hparams=distiller.hparams,
    )
    trainer = ImageNetDistillTrainer(
        run_dir,
        student,
        teacher,
        distiller,
        data,
        recipe,
        seed=config.seed,
        config=record,
        arch=config.student,
        device=device,
        augment=config.augment,
        compile=config.compile,
        desc=f"imagenet {config.method} {tinfo['arch']}({tinfo['loss']})->{config.student}",
        dist=ctx,
        num_workers=config.workers,
    )
    _, _, test_loader = make_imagenet_loaders(
        data,
        recipe,
        device,
        seed=0,
        rank=ctx.rank,
        world_size=ctx.world_size,
        num_workers=config.workers,
    )
    run_dir.mkdir(parents=True, exist_ok=True)
    t_metrics = teacher_metrics(run_dir, teacher, tinfo, data, recipe, device, ctx, test_loader)
    summary = trainer.fit(**fit_kwargs)
    result = {
        "kind": "distill",
        "dataset": "imagenet",
        "teacher_arch": tinfo["arch"],
        "student_arch": config.student,
        "method": config.method,
        "method_hparams": distiller.hparams,
        "teacher_loss": tinfo["loss"],
        "teacher_checkpoint": tinfo["checkpoint"],
        "teacher_seed": tinfo["seed"],
        "seed": config.seed,
        "recipe": recipe.name,
        "epochs": summary["last_epoch"],
        "best_epoch": summary["best_epoch"],
        "test_acc_last": summary["last_epoch_test_acc"],
        "test_acc_best": summary["best_epoch_test_acc"],
        "val_acc_best": summary["best_epoch_val_acc"],
        "teacher_test_acc": t_metrics["acc"],
        "world_size": ctx.world_size,
        "per_rank_batch_size": summary["per_rank_batch_size"],
    }
    if ctx.is_main:
        write_json(run_dir / RESULT_FILE, result)
    return result


def evaluate_checkpoint(
    checkpoint: str | Path,
    data: ImageNetData,
    *,
    data_dir: str | None = None,
    arch: str | None = None,
    device: str = "auto",
    batch_size: int = 1024,
    workers: int = 8,
) -> dict[str, Any]:
    """Top-1 accuracy, NLL and Brier score of a checkpoint on the test set (official ``val/``).

    ``checkpoint``: one of ours (the architecture is read from it), or a plain state dict (a
    torchvision ``.pth``) or mdistiller's ``{"model": state_dict}``, with ``arch`` given.
    """
    ctx, dev = distributed.setup(device)
    raw = torch.load(checkpoint, map_location="cpu", weights_only=False)
    if isinstance(raw, dict) and raw.get("format") == "bcpd_sim.vision/checkpoint-1":
        arch, state, num_classes = raw["arch"], raw["model"], raw["num_classes"]
    else:
        if arch is None:
            raise ConfigError(f"{checkpoint} is not a bcpd-sim checkpoint; say its --arch")
        state = raw.get("model", raw) if isinstance(raw, dict) else None
        if not isinstance(state, dict) or "fc.weight" not in state:
            raise ConfigError(f"{checkpoint} holds no state dict with an 'fc.weight'")
        num_classes = int(state["fc.weight"].shape[0])
    check_choice("arch", arch, list_imagenet_models())
    model = create_imagenet_model(arch, num_classes=num_classes)
    model.load_state_dict(state)
    model = model.to(dev).eval()
    bundle = data.load(data_dir)
    recipe = get_imagenet_recipe("imagenet", eval_batch_size=batch_size)
    channels_last = dev.type == "cuda"
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    _, _, loader = make_imagenet_loaders(
        bundle,
        recipe,
        dev,
        seed=0,
        channels_last=channels_last,
        num_workers=workers,
        rank=ctx.rank,
        world_size=ctx.world_size,
    )
    metrics = evaluate(model, loader, bf16=dev.type == "cuda", dist=ctx)
    return {
        "checkpoint": str(Path(checkpoint).resolve()),
        "arch": arch,
        "split": "val/ (the official validation set)",
        "n_images": len(bundle.test),
        "world_size": ctx.world_size,
        **{f"test_{k}": v for k, v in metrics.items()},
    }
