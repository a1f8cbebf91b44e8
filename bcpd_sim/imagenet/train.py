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

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .. import distributed
from ..errors import ConfigError
from ..io import write_json
from ..validation import check_choice
from ..vision.configs import MAX_IMAGES, MAX_SEED, RunOptions, check_fields, option
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


def _model_names() -> list[str]:
    return list_imagenet_models()


#: Data settings a distillation run takes from its teacher's run unless given, and their defaults.
DATA_DEFAULTS: dict[str, Any] = {
    "num_classes": IMAGENET_CLASSES,
    "val_per_class": 10,
    "train_limit_per_class": None,
    "test_limit_per_class": None,
    "data_seed": 0,
    "crop_size": CROP_SIZE,
    "resize_size": RESIZE_SIZE,
}


@dataclass(frozen=True, kw_only=True)
class ImageNetDataOptions:
    """Which images are used and how they are cut. None: the default in :data:`DATA_DEFAULTS`
    (for a distillation run: the teacher run's value)."""

    data_dir: str | None = option(None, "folder with train/ and val/ (default: $BCPD_SIM_IMAGENET)")
    num_classes: int | None = option(None, "class folders expected (1000)", range=(2, 100_000))
    val_per_class: int | None = option(
        None, "images per class held out of train/ to pick the best epoch (10)", range=(0, 10_000)
    )
    train_limit_per_class: int | None = option(
        None, "use the first N train images of each class", range=(1, MAX_IMAGES)
    )
    test_limit_per_class: int | None = option(
        None, "use the first N val/ images of each class", range=(1, MAX_IMAGES)
    )
    data_seed: int | None = option(None, "seed of the held-out split (0)", range=(0, MAX_SEED))
    crop_size: int | None = option(None, "crop side in pixels (224)", range=(1, 4096))
    resize_size: int | None = option(
        None, "evaluation resize of the shorter side (256)", range=(1, 8192)
    )

    def data_settings(self, fallback: dict[str, Any] | None = None) -> dict[str, Any]:
        """The effective data settings: given, else ``fallback``'s, else the defaults."""
        out = dict(DATA_DEFAULTS)
        out.update({k: v for k, v in (fallback or {}).items() if k in DATA_DEFAULTS})
        out.update({k: getattr(self, k) for k in DATA_DEFAULTS if getattr(self, k) is not None})
        return out


def load_bundle(data_dir: str | None, settings: dict[str, Any]) -> ImageNetBundle:
    """The data bundle for effective ``settings`` (:meth:`ImageNetDataOptions.data_settings`)."""
    return load_imagenet(
        data_dir, strict_wnids=settings["num_classes"] == IMAGENET_CLASSES, **settings
    )


@dataclass(frozen=True, kw_only=True)
class ImageNetRecipeOptions:
    """A named ImageNet recipe and overrides of its fields (None: the recipe's value)."""

    recipe: str = option("imagenet", "training recipe", choices=list_imagenet_recipes)
    epochs: int | None = option(None, "override the recipe's epochs", range=(1, 100_000))
    batch_size: int | None = option(
        None, "override the global batch (split over the processes)", range=(1, 65_536)
    )
    lr: float | None = option(None, "override the base learning rate", range=(0.0, 100.0))
    checkpoint_every: int | None = option(
        None, "periodic checkpoint interval in epochs (0: none)", range=(0, 100_000)
    )

    def make_recipe(self) -> Recipe:
        return get_imagenet_recipe(
            self.recipe,
            epochs=self.epochs,
            batch_size=self.batch_size,
            lr=self.lr,
            checkpoint_every=self.checkpoint_every,
        )


@dataclass(frozen=True, kw_only=True)
class ImageNetRunOptions(RunOptions):
    """How one run executes; ``workers`` does not change results (each image's randomness is
    seeded by itself), so it is not compared on resume."""

    workers: int = option(8, "Pillow decoding processes per training process", range=(0, 1024))


def _record(config: Any) -> dict[str, Any]:
    """The config as recorded in the run and compared on resume (without ``workers``)."""
    record = asdict(config)
    record.pop("workers", None)
    return record


@dataclass(frozen=True, kw_only=True)
class ImageNetTeacherConfig(ImageNetRunOptions, ImageNetRecipeOptions, ImageNetDataOptions):
    """Everything that defines an ImageNet teacher run."""

    out: str = option("", "run directory (created; resumed if present)")
    arch: str = option("resnet34", "model name", choices=_model_names)
    loss: str = option("ce", f"teacher loss: {', '.join(list_losses())}", choices=list_losses)
    mse_scale: float = option(1.0, "multiplier of the mse losses", range=(0.0, 1e6))
    seed: int = option(0, "training seed (init, data order)", range=(0, MAX_SEED))

    def validate(self) -> ImageNetTeacherConfig:
        if not self.out:
            raise ConfigError("out must name the run directory (--out DIR)")
        check_fields(self)
        teacher_loss(self.loss, mse_scale=self.mse_scale)
        self.make_recipe()
        return self


def train_imagenet_teacher(config: ImageNetTeacherConfig, **fit_kwargs: Any) -> dict[str, Any]:
    """Train one ImageNet teacher into ``config.out``; every torchrun process runs this."""
    config.validate()
    recipe = config.make_recipe()
    ctx, device = distributed.setup(config.device)
    settings = config.data_settings()
    data = load_bundle(config.data_dir, settings)
    torch.manual_seed(config.seed)
    model = create_imagenet_model(config.arch, num_classes=data.num_classes)
    loss = teacher_loss(config.loss, mse_scale=config.mse_scale)
    record = _record(config)
    record.update(kind="teacher", dataset="imagenet", resolved_data=settings)
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


@dataclass(frozen=True, kw_only=True)
class ImageNetDistillConfig(ImageNetRunOptions, ImageNetRecipeOptions, ImageNetDataOptions):
    """Everything that defines an ImageNet distillation run; data settings left at None are the
    teacher run's (same folder, classes, held-out split and crop)."""

    out: str = option("", "run directory (created; resumed if present)")
    teacher: str = option("", "teacher checkpoint (e.g. RUN/checkpoints/last.pt)")
    student: str = option(
        "resnet18", "student model name", choices=_model_names, label="student architecture"
    )
    method: str = option(
        "kd",
        "distillation method: kd or dkd",
        choices=lambda: list(METHOD_DEFAULTS),
        label="ImageNet distillation method",
    )
    method_options: dict[str, Any] = option({}, "the method's hyper-parameters (--option K=V)")
    seed: int = option(0, "training seed (init, data order)", range=(0, MAX_SEED))

    def validate(self) -> ImageNetDistillConfig:
        if not self.out:
            raise ConfigError("out must name the run directory (--out DIR)")
        if not self.teacher:
            raise ConfigError("teacher must name a teacher checkpoint (--teacher PATH)")
        check_fields(self)
        self.make_recipe()
        if not Path(self.teacher).is_file():
            raise FileNotFoundError(f"teacher checkpoint {self.teacher} does not exist")
        return self


def distill_imagenet(config: ImageNetDistillConfig, **fit_kwargs: Any) -> dict[str, Any]:
    """Distil an ImageNet teacher checkpoint into a student; returns the ``result.json`` record."""
    config.validate()
    recipe = config.make_recipe()
    ctx, device = distributed.setup(config.device)
    teacher, t_ckpt = load_imagenet_teacher(config.teacher, device)
    t_cfg = t_ckpt.get("config") or {}
    settings = config.data_settings(t_cfg.get("resolved_data"))
    data = load_bundle(config.data_dir or t_cfg.get("data_dir"), settings)
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
        resolved_data=settings,
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


@dataclass(frozen=True, kw_only=True)
class ImageNetEvalConfig(ImageNetDataOptions):
    """What ``bcpd-sim imagenet eval`` evaluates, and how."""

    checkpoint: str = option("", "our checkpoint, or a state dict (torchvision, mdistiller)")
    arch: str | None = option(None, "architecture of a foreign state dict", choices=_model_names)
    batch_size: int = option(1024, "global evaluation batch", range=(1, 65_536))
    workers: int = option(8, "Pillow decoding processes", range=(0, 1024))
    device: str = option("auto", "auto, cpu or cuda[:N]")
    out: str | None = option(None, "also write the metrics to this JSON file")

    def validate(self) -> ImageNetEvalConfig:
        if not self.checkpoint:
            raise ConfigError("checkpoint must name a file (--checkpoint PATH)")
        check_fields(self)
        if not Path(self.checkpoint).is_file():
            raise FileNotFoundError(f"checkpoint {self.checkpoint} does not exist")
        return self


def evaluate_checkpoint(config: ImageNetEvalConfig) -> dict[str, Any]:
    """Top-1 accuracy, NLL and Brier score of a checkpoint on the test set (official ``val/``).

    The checkpoint is one of ours (its architecture is read from it), or, with ``arch`` given, a
    plain state dict (a torchvision ``.pth``) or mdistiller's ``{"model": state_dict}``, read with
    ``weights_only=True`` (tensors only, no code from the file runs).
    """
    config.validate()
    checkpoint, arch = config.checkpoint, config.arch
    ctx, dev = distributed.setup(config.device)
    if arch is None:
        try:
            raw = load_checkpoint(checkpoint, "cpu")
        except ConfigError:
            raise ConfigError(
                f"{checkpoint} is not a bcpd-sim checkpoint; say its --arch"
            ) from None
        arch, state, num_classes = raw["arch"], raw["model"], raw["num_classes"]
    else:
        try:
            raw = torch.load(checkpoint, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise ConfigError(f"{checkpoint} is not a plain state dict ({exc})") from None
        state = raw.get("model", raw) if isinstance(raw, dict) else None
        if not isinstance(state, dict) or "fc.weight" not in state:
            raise ConfigError(f"{checkpoint} holds no state dict with an 'fc.weight'")
        num_classes = int(state["fc.weight"].shape[0])
    check_choice("arch", arch, list_imagenet_models())
    model = create_imagenet_model(arch, num_classes=num_classes)
    model.load_state_dict(state)
    model = model.to(dev).eval()
    bundle = load_bundle(config.data_dir, config.data_settings())
    recipe = get_imagenet_recipe("imagenet", eval_batch_size=config.batch_size)
    channels_last = dev.type == "cuda"
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    _, _, loader = make_imagenet_loaders(
        bundle,
        recipe,
        dev,
        seed=0,
        channels_last=channels_last,
        num_workers=config.workers,
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
