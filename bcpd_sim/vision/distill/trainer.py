"""The distillation loop: a frozen teacher and a student trained with a distillation method.

The teacher is loaded from a checkpoint written by the teacher trainer, frozen
(``requires_grad_(False)``) and kept in eval mode; in every training step it runs on the same
(augmented) batch as the student, under ``no_grad`` and, when the recipe uses bf16 on GPU, bf16
autocast. :class:`DistillTrainer` is the shared :class:`~bcpd_sim.vision.trainer.Trainer` with
three steps overridden (the criterion runs teacher, student and distiller; setup and compile
include the teacher); the method's connectors, if any, are trained and checkpointed with the
student. :func:`distill` runs a :class:`DistillConfig` as a :class:`DistillRun`, whose steps the
ImageNet distillation overrides.

A run directory holds what the trainer writes (``config.json``, ``metrics.csv``, ``summary.json``,
``checkpoints/``) plus ``teacher.json`` (the teacher's own test metrics, measured on the student's
test set; on synthetic data also its MSE and KL to p*) and, once finished, ``result.json``: the
flat record the table builder reads (:data:`bcpd_sim.vision.table.RESULT_FIELDS`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ... import distributed
from ...device import resolve_device
from ...distributed import DistContext
from ...errors import ConfigError
from ...io import write_json
from ..bundle import DATA_SOURCES, DataBundle, load_for_recipe
from ..configs import (
    MAX_SEED,
    DataOptions,
    RecipeOptions,
    RunOptions,
    check_fields,
    fields_of,
    model_names,
    option,
    synthetic_presets,
)
from ..evaluation import autocast, evaluate
from ..pipeline import DeviceLoader
from ..recipes import Recipe, get_recipe
from ..runs import load_checkpoint, model_from_checkpoint
from ..table import RESULT_FILE
from ..trainer import ConfigRun, Trainer, maybe_compile
from .base import Distiller, create_distiller, list_methods, method_class

#: Data settings a distillation run inherits from its teacher unless given explicitly.
INHERITED_DATA_KEYS = ("data", "synthetic_preset", "num_classes", "data_seed", "val_size")


@dataclass(frozen=True, kw_only=True)
class DistillOptions:
    """A distillation run's own fields and their checks; a config adds data, recipe and run
    options."""

    out: str = option("", "run directory (created; resumed if present)")
    teacher: str = option("", "teacher checkpoint (e.g. RUN/checkpoints/last.pt)")
    student: str = option(
        "resnet20", "student model name", choices=model_names, label="student architecture"
    )
    method: str = option(
        "kd", "distillation method", choices=list_methods, label="distillation method"
    )
    method_options: dict[str, Any] = option({}, "the method's hyper-parameters (--option K=V)")
    seed: int = option(0, "training seed (init, data order)", range=(0, MAX_SEED))

    def validate(self) -> Any:
        """Every check that needs neither data nor the checkpoint's contents."""
        if not self.out:
            raise ConfigError("out must name the run directory (--out DIR)")
        if not self.teacher:
            raise ConfigError("teacher must name a teacher checkpoint (--teacher PATH)")
        check_fields(self)
        self.check_method()
        self.make_recipe()  # the config's recipe options
        if not Path(self.teacher).is_file():
            raise FileNotFoundError(f"teacher checkpoint {self.teacher} does not exist")
        return self

    def check_method(self) -> None:
        """Checks made before the recipe's: here none (a config adds its own)."""


@dataclass(frozen=True, kw_only=True)
class DistillConfig(DistillOptions, RunOptions, RecipeOptions, DataOptions):
    """Everything that defines a distillation run: its own fields plus the shared data options,
    recipe overrides and run options (:mod:`bcpd_sim.vision.configs`).

    Data settings left at None (``data``, ``synthetic_preset``, ``num_classes``, ``data_seed``,
    ``val_size``, ``data_dir``) are taken from the teacher's run, so teacher and student share the
    data source, the synthetic world and the validation split.
    """

    data: str | None = option(
        None, "data source (default: the teacher's)", choices=lambda: DATA_SOURCES
    )
    synthetic_preset: str | None = option(
        None, "synthetic data preset (default: the teacher's)", choices=synthetic_presets
    )
    data_seed: int | None = option(
        None,
        "validation split / synthetic world seed (default: the teacher's)",
        range=(0, MAX_SEED),
    )

    def check_method(self) -> None:
        """The method's options and the device."""
        method_class(self.method).check_options(self.method_options)
        resolve_device(self.device)


def freeze(model: nn.Module) -> nn.Module:
    """Eval mode (BatchNorm uses its running statistics) and no gradients."""
    model.eval()
    model.requires_grad_(False)
    return model


def distill_criterion(
    teacher: nn.Module, distiller: Distiller, device: torch.device, bf16: bool = True
) -> Callable:
    """A trainer criterion ``(student, x, y, idx, epoch) -> (loss, student_logits)``.

    The teacher runs first on the same batch, under ``no_grad`` (and bf16 autocast on CUDA when
    ``bf16``, as the recipe says); features are requested from both models only when the method
    needs them.
    """
    needs = distiller.needs_features

    def criterion(student, x, y, idx, epoch):
        with torch.no_grad(), autocast(device, bf16):
            t_out = teacher(x, return_features=True) if needs else teacher(x)
        t_logits, t_feats = t_out if needs else (t_out, None)
        s_out = student(x, return_features=True) if needs else student(x)
        s_logits, s_feats = s_out if needs else (s_out, None)
        loss, _ = distiller(s_logits, t_logits, y, s_feats, t_feats, epoch, index=idx)
        return loss, s_logits

    return criterion


def teacher_summary(ckpt: dict[str, Any], path: str | Path) -> dict[str, Any]:
    """What the run records about its teacher (from the checkpoint)."""
    cfg = ckpt.get("config") or {}
    return {
        "checkpoint": str(Path(path).resolve()),
        "arch": ckpt["arch"],
        "num_classes": ckpt["num_classes"],
        "loss": cfg.get("loss"),
        "seed": ckpt.get("seed", cfg.get("seed")),
        "epoch": ckpt.get("epoch"),
        "data": cfg.get("data"),
    }


def _teacher_val_size(t_cfg: dict[str, Any]) -> int | None:
    """The validation-split size the teacher's run used (so the student's split is the same)."""
    try:
        return get_recipe(t_cfg["recipe"], val_size=t_cfg.get("val_size")).val_size
    except (KeyError, ValueError):
        return t_cfg.get("val_size")


class DistillTrainer(Trainer):
    """The shared trainer with a frozen teacher beside the student.

    Overrides three steps: :meth:`criterion` (teacher, student and the distiller on one batch),
    :meth:`setup` (the teacher onto the device and memory format) and :meth:`compile` /
    :meth:`uncompile` (the teacher's forward is compiled with the student's and falls back with
    it).
    """

    def __init__(
        self,
        run_dir: str | Path,
        student: nn.Module,
        teacher: nn.Module,
        distiller: Distiller,
        data: DataBundle,
        recipe: Recipe,
        **kwargs: Any,
    ) -> None:
        extra = distiller if distiller.extra_parameters() else None
        super().__init__(run_dir, student, data, recipe, extra_modules=extra, **kwargs)
        self.teacher = teacher
        self.distiller = distiller
        self.teacher_forward: nn.Module = teacher
        self.step_criterion: Callable | None = None

    def setup(self) -> None:
        super().setup()
        self.teacher = self.teacher.to(self.device)
        if self.channels_last:
            self.teacher = self.teacher.to(memory_format=torch.channels_last)
        self.teacher_forward = self.teacher

    def compile(self) -> None:
        super().compile()
        self.teacher_forward, _ = maybe_compile(
            self.teacher, self.want_compile, self.device, self.recipe.compile_mode
        )
        self._build_criterion()

    def uncompile(self) -> None:
        super().uncompile()
        self.teacher_forward = self.teacher
        self._build_criterion()

    def _build_criterion(self) -> None:
        self.step_criterion = distill_criterion(
            self.teacher_forward, self.distiller, self.device, self.recipe.bf16
        )

    def criterion(self, forward: nn.Module, x, y, idx, epoch: int) -> tuple:
        return self.step_criterion(forward, x, y, idx, epoch)


def resolve_data(config: DistillConfig, t_cfg: dict[str, Any]) -> dict[str, Any]:
    """The run's data settings: those given explicitly, else the teacher run's."""
    inherited = {k: getattr(config, k) for k in INHERITED_DATA_KEYS}
    for key in INHERITED_DATA_KEYS:
        if inherited[key] is None and key != "val_size":
            inherited[key] = t_cfg.get(key)
    inherited["data"] = inherited["data"] or "cifar100"
    return inherited


def teacher_metrics(
    run_dir: Path,
    teacher: nn.Module,
    tinfo: dict[str, Any],
    data: DataBundle,
    recipe: Recipe,
    device: torch.device,
    dist: DistContext = distributed.SINGLE,
    loader: Any = None,
) -> dict[str, float]:
    """The teacher's test metrics on the student's test set (``teacher.json``, measured once;
    under DDP every rank evaluates its share and rank 0 writes). ``loader``: the test loader
    (default: a device loader of ``data.test``)."""
    teacher_json = run_dir / "teacher.json"
    if distributed.broadcast_object(teacher_json.is_file(), dist):
        return json.loads(teacher_json.read_text())["test"]
    if loader is None:
        loader = DeviceLoader(
            data.test,
            recipe.eval_batch_size,
            device,
            return_index=True,
            rank=dist.rank,
            world_size=dist.world_size,
        )
    bf16 = recipe.bf16 and device.type == "cuda"
    t_metrics = evaluate(teacher, loader, p_star=data.test.p_star, bf16=bf16, dist=dist)
    if dist.is_main:
        write_json(teacher_json, {"teacher": tinfo, "test": t_metrics})
    return t_metrics


class DistillRun(ConfigRun):
    """A distillation run, as steps: :meth:`load` (frozen teacher, data, recipe),
    :meth:`method_options`, :meth:`teacher_loader` and :meth:`result`, plus those of
    :class:`~bcpd_sim.vision.trainer.ConfigRun`; the ImageNet run overrides them."""

    trainer_class = DistillTrainer

    def __init__(self, config: DistillOptions) -> None:
        super().__init__(config)
        self.resolved_data: dict[str, Any] = {}
        self.dataset = ""

    def load(self) -> tuple[nn.Module, dict[str, Any], Any, Recipe]:
        """The frozen teacher on the device, its checkpoint (without weights), the data and the
        recipe; sets :attr:`resolved_data` and :attr:`dataset`."""
        config = self.config
        t_ckpt = load_checkpoint(config.teacher, "cpu")
        t_cfg = t_ckpt.get("config") or {}
        inherited = resolve_data(config, t_cfg)
        recipe = config.make_recipe(val_size=_teacher_val_size(t_cfg))
        resolved = replace(
            config,
            data=inherited["data"],
            data_dir=config.data_dir or t_cfg.get("data_dir"),
            synthetic_preset=inherited["synthetic_preset"] or "easy",
            num_classes=inherited["num_classes"],
            data_seed=inherited["data_seed"] or 0,
        )
        data = load_for_recipe(recipe, **fields_of(resolved, DataOptions))
        teacher = model_from_checkpoint(
            t_ckpt, self.device, num_classes=data.num_classes, source=config.teacher
        )
        del t_ckpt["model"]
        self.resolved_data = {k: inherited[k] for k in INHERITED_DATA_KEYS if k != "val_size"}
        self.dataset = data.source
        if data.source == "synthetic":
            self.dataset = f"synthetic-{resolved.synthetic_preset}"
        return freeze(teacher), t_ckpt, data, recipe

    def method_options(self, tinfo: dict[str, Any], data: Any) -> dict[str, Any]:
        """The distiller's options: the config's, plus what the method needs from the data."""
        options = dict(self.config.method_options)
        # e.g. CRD's memory bank: one row per image
        if method_class(self.config.method).needs_index:
            options.setdefault("n_data", len(data.train))
            options.setdefault("labels", data.train.labels)
        return options

    def teacher_loader(self, data: Any, recipe: Recipe) -> Any:
        """The loader of the teacher's test metrics (None: a device loader of ``data.test``)."""
        return None

    def result(
        self, common: dict[str, Any], summary: dict[str, Any], t_metrics: dict[str, float]
    ) -> dict[str, Any]:
        """The ``result.json`` record: the fields every run has (``common``) and the data's."""
        return {
            **common,
            "protocol": summary["protocol"],
            "test_top5_last": summary.get("last_epoch_test_top5"),
            "test_top5_best": summary.get("best_epoch_test_top5"),
            "teacher_mse_to_pstar": t_metrics.get("mse_pstar"),
            "teacher_kl_to_pstar": t_metrics.get("kl_pstar"),
            "student_mse_to_pstar": summary.get("last_epoch_test_mse_pstar"),
            "student_kl_to_pstar": summary.get("last_epoch_test_kl_pstar"),
        }

    def train(self, **fit_kwargs: Any) -> dict[str, Any]:
        """Load, build and fit; the result record (rank 0 writes ``result.json``)."""
        config = self.config
        teacher, t_ckpt, data, recipe = self.load()
        tinfo = teacher_summary(t_ckpt, config.teacher)
        options = self.method_options(tinfo, data)
        torch.manual_seed(config.seed)
        student = self.create_model(config.student, data.num_classes)
        distiller = create_distiller(config.method, teacher, student, **options)
        run_dir = Path(config.out)
        loader = self.teacher_loader(data, recipe)
        t_metrics = teacher_metrics(
            run_dir, teacher, tinfo, data, recipe, self.device, self.dist, loader
        )
        record = self.record()
        record.update(
            kind="distill",
            arch=config.student,
            teacher_arch=tinfo["arch"],
            teacher_loss=tinfo["loss"],
            resolved_data=self.resolved_data,
            method_hparams=distiller.hparams,
        )
        trainer = self.make_trainer(
            student,
            teacher,
            distiller,
            data,
            recipe,
            config=record,
            arch=config.student,
            desc=f"{config.method} {tinfo['arch']}({tinfo['loss']})->{config.student}",
        )
        summary = trainer.fit(**fit_kwargs)
        common = {
            "kind": "distill",
            "dataset": self.dataset,
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
        }
        result = self.result(common, summary, t_metrics)
        if self.dist.is_main:
            write_json(run_dir / RESULT_FILE, result)
        return result


def distill(
    config: DistillConfig,
    *,
    resume: bool = True,
    on_epoch_end: Callable[[int, dict[str, float]], None] | None = None,
) -> dict[str, Any]:
    """Run one distillation (teacher checkpoint, student arch, method, recipe, seed) into
    ``config.out``; return the flat result record (also written as ``result.json``)."""
    return DistillRun(config).run(resume=resume, on_epoch_end=on_epoch_end)


def is_finished(run_dir: str | Path) -> bool:
    """Whether ``run_dir`` holds a finished distillation run (its ``result.json``)."""
    return (Path(run_dir) / RESULT_FILE).is_file()
