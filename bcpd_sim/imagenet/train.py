"""ImageNet teachers, distillation and evaluation on the shared vision trainer (single GPU or DDP).

:class:`ImageNetTrainer` and :class:`ImageNetDistillTrainer` are the CIFAR trainers
(:class:`bcpd_sim.vision.trainer.Trainer`, :class:`~bcpd_sim.vision.distill.trainer.DistillTrainer`)
with one step replaced: their loaders read the ImageFolder tree with Pillow in worker processes
(:mod:`bcpd_sim.imagenet.bundle`). Likewise :class:`ImageNetTeacherRun` and
:class:`ImageNetDistillRun` are the CIFAR runs (:class:`~bcpd_sim.vision.train.TeacherRun`,
:class:`~bcpd_sim.vision.distill.trainer.DistillRun`) with their data, models, record, method
settings and result replaced. Everything else is shared: recipe and schedule, bf16 and
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
from ..validation import check_choice
from ..vision.configs import MAX_IMAGES, MAX_SEED, RunOptions, check_fields, option
from ..vision.distill.trainer import DistillOptions, DistillRun, DistillTrainer, freeze
from ..vision.evaluation import evaluate
from ..vision.recipes import Recipe
from ..vision.runs import load_checkpoint
from ..vision.train import TeacherOptions, TeacherRun
from ..vision.trainer import Trainer
from .bundle import ImageNetBundle, load_imagenet, make_imagenet_loaders
from .data import CROP_SIZE, IMAGENET_CLASSES, RESIZE_SIZE
from .models import create_imagenet_model, list_imagenet_models
from .recipes import METHOD_DEFAULTS, get_imagenet_recipe, list_imagenet_recipes
from .recipes import method_options as imagenet_method_options


class _ImageFolderLoaders:
    """Trainer step override: ImageNet loaders (Pillow workers, rank-sharded)."""

    def __init__(self, *args: Any, num_workers: int = 0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.num_workers = num_workers

    def make_loaders(self) -> tuple:
        return make_imagenet_loaders(
            self.data,
            self.recipe,
            self.device,
            num_workers=self.num_workers,
            **self.loader_options(),
        )


class ImageNetTrainer(_ImageFolderLoaders, Trainer):
    """The shared trainer on an ImageFolder tree."""


class ImageNetDistillTrainer(_ImageFolderLoaders, DistillTrainer):
    """The distillation trainer on an ImageFolder tree."""


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


class _ImageNetRun:
    """Run steps an ImageNet run replaces: its models, its record, its loaders' workers."""

    label = "imagenet "
    config: Any

    def create_model(self, arch: str, num_classes: int) -> nn.Module:
        return create_imagenet_model(arch, num_classes=num_classes)

    def record(self) -> dict[str, Any]:
        """The config as recorded in the run and compared on resume (without ``workers``)."""
        record = asdict(self.config)
        record.pop("workers", None)
        record["dataset"] = "imagenet"
        return record

    def make_trainer(self, *args: Any, **kwargs: Any) -> Trainer:
        """The run's trainer, its loaders with ``config.workers`` decoding processes."""
        return super().make_trainer(*args, num_workers=self.config.workers, **kwargs)


@dataclass(frozen=True, kw_only=True)
class ImageNetTeacherConfig(
    TeacherOptions, ImageNetRunOptions, ImageNetRecipeOptions, ImageNetDataOptions
):
    """Everything that defines an ImageNet teacher run."""

    arch: str = option("resnet34", "model name", choices=_model_names)


class ImageNetTeacherRun(_ImageNetRun, TeacherRun):
    """The teacher run on an ImageFolder tree."""

    trainer_class = ImageNetTrainer
    resolved_data: dict[str, Any]

    def load_data(self, recipe: Recipe) -> ImageNetBundle:
        """The ImageFolder splits of the config's data settings (kept as ``resolved_data``)."""
        self.resolved_data = self.config.data_settings()
        return load_bundle(self.config.data_dir, self.resolved_data)

    def record(self) -> dict[str, Any]:
        return {**super().record(), "kind": "teacher", "resolved_data": self.resolved_data}


def train_imagenet_teacher(config: ImageNetTeacherConfig, **fit_kwargs: Any) -> dict[str, Any]:
    """Train one ImageNet teacher into ``config.out``; every torchrun process runs this."""
    return ImageNetTeacherRun(config).run(**fit_kwargs)


def load_imagenet_teacher(path: str | Path, device: torch.device) -> tuple[nn.Module, dict]:
    """A frozen ImageNet model from one of our checkpoints, and the checkpoint (without weights)."""
    ckpt = load_checkpoint(path, "cpu")
    check_choice("teacher architecture", ckpt["arch"], list_imagenet_models())
    model = create_imagenet_model(ckpt["arch"], num_classes=ckpt["num_classes"])
    model.load_state_dict(ckpt.pop("model"))
    return freeze(model.to(device)), ckpt


@dataclass(frozen=True, kw_only=True)
class ImageNetDistillConfig(
    DistillOptions, ImageNetRunOptions, ImageNetRecipeOptions, ImageNetDataOptions
):
    """Everything that defines an ImageNet distillation run; data settings left at None are the
    teacher run's (same folder, classes, held-out split and crop)."""

    student: str = option(
        "resnet18", "student model name", choices=_model_names, label="student architecture"
    )
    method: str = option(
        "kd",
        "distillation method: kd or dkd",
        choices=lambda: list(METHOD_DEFAULTS),
        label="ImageNet distillation method",
    )


class ImageNetDistillRun(_ImageNetRun, DistillRun):
    """The distillation run on an ImageFolder tree: mdistiller's method settings, top-1 result."""

    trainer_class = ImageNetDistillTrainer

    def load(self) -> tuple[nn.Module, dict[str, Any], ImageNetBundle, Recipe]:
        """The frozen teacher, its checkpoint, and the data settings given or the teacher run's."""
        config = self.config
        recipe = config.make_recipe()
        teacher, t_ckpt = load_imagenet_teacher(config.teacher, self.device)
        t_cfg = t_ckpt.get("config") or {}
        self.resolved_data = config.data_settings(t_cfg.get("resolved_data"))
        data = load_bundle(config.data_dir or t_cfg.get("data_dir"), self.resolved_data)
        if t_ckpt["num_classes"] != data.num_classes:
            raise ConfigError(
                f"teacher {config.teacher} has {t_ckpt['num_classes']} classes, "
                f"data {data.num_classes}"
            )
        self.dataset = data.source
        return teacher, t_ckpt, data, recipe

    def method_options(self, tinfo: dict[str, Any], data: Any) -> dict[str, Any]:
        """mdistiller's settings for the pair, then the config's (DKD: also the teacher's arch)."""
        config = self.config
        options = imagenet_method_options(
            config.method, tinfo["arch"], config.student, config.method_options
        )
        if config.method == "dkd":
            options["teacher_arch"] = tinfo["arch"]
        return options

    def teacher_loader(self, data: Any, recipe: Recipe) -> Any:
        """The test loader (ImageFolder ``val/``, rank-sharded)."""
        _, _, test_loader = make_imagenet_loaders(
            data,
            recipe,
            self.device,
            seed=0,
            rank=self.dist.rank,
            world_size=self.dist.world_size,
            num_workers=self.config.workers,
        )
        return test_loader

    def result(
        self, common: dict[str, Any], summary: dict[str, Any], t_metrics: dict[str, float]
    ) -> dict[str, Any]:
        """The common fields and the process layout (no top-5 or p* fields)."""
        return {
            **common,
            "world_size": self.dist.world_size,
            "per_rank_batch_size": summary["per_rank_batch_size"],
        }


def distill_imagenet(config: ImageNetDistillConfig, **fit_kwargs: Any) -> dict[str, Any]:
    """Distil an ImageNet teacher checkpoint into a student; returns the ``result.json`` record."""
    return ImageNetDistillRun(config).run(**fit_kwargs)


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
