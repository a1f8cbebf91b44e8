"""The distillation loop: a frozen teacher and a student trained with a distillation method.

The teacher is loaded from a checkpoint written by the teacher trainer, frozen
(``requires_grad_(False)``) and kept in eval mode; in every training step it runs on the same
(augmented) batch as the student, under ``no_grad`` and, on GPU, bf16 autocast. The student is
trained by :func:`bcpd_sim.vision.train.fit` (recipe, device pipeline, checkpoints, resume, run
record); the method's connectors, if any, are trained and checkpointed with it.

A run directory holds what ``fit`` writes (``config.json``, ``metrics.csv``, ``summary.json``,
``checkpoints/``) plus ``teacher.json`` (the teacher's own test metrics, measured on the student's
test set; on synthetic data also its MSE and KL to p*) and, once finished, ``result.json``: the
flat record the table builder reads (:data:`bcpd_sim.vision.table.RESULT_FIELDS`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ...device import resolve_device
from ...errors import ConfigError
from ...io import write_json
from ...validation import check_choice, check_int
from ..pipeline import DeviceLoader
from ..recipes import Recipe, get_recipe, list_recipes
from ..table import RESULT_FILE
from ..train import (
    DATA_SOURCES,
    evaluate,
    fit,
    load_checkpoint,
    load_data,
    load_model_from_checkpoint,
    maybe_compile,
)
from .base import Distiller, create_distiller, list_methods, method_class

#: Data settings a distillation run inherits from its teacher unless given explicitly.
INHERITED_DATA_KEYS = ("data", "synthetic_preset", "num_classes", "data_seed", "val_size")


@dataclass
class DistillConfig:
    """Everything that defines a distillation run (the CLI's options).

    Data settings left at None (``data``, ``synthetic_preset``, ``num_classes``, ``data_seed``,
    ``val_size``, ``data_dir``) are taken from the teacher's run, so teacher and student share the
    data source, the synthetic world and the validation split.
    """

    out: str
    teacher: str
    student: str = "resnet20"
    method: str = "kd"
    method_options: dict[str, Any] = field(default_factory=dict)
    recipe: str = "standard"
    data: str | None = None
    data_dir: str | None = None
    download: bool = False
    synthetic_preset: str | None = None
    num_classes: int | None = None
    seed: int = 0
    data_seed: int | None = None
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

    def validate(self) -> DistillConfig:
        """Cheap checks that run before any data or checkpoint is loaded."""
        from ..models import list_models

        check_choice("student architecture", self.student, list_models())
        check_choice("distillation method", self.method, list_methods())
        check_choice("recipe", self.recipe, list_recipes())
        if self.data is not None:
            check_choice("data", self.data, DATA_SOURCES)
        check_int("seed", self.seed, minimum=0)
        if not isinstance(self.method_options, dict):
            raise ConfigError("method_options must be a mapping of option name to value")
        resolve_device(self.device)
        self.make_recipe()
        if not Path(self.teacher).is_file():
            raise FileNotFoundError(f"teacher checkpoint {self.teacher} does not exist")
        return self

    def make_recipe(self, val_size: int | None = None) -> Recipe:
        return get_recipe(
            self.recipe,
            epochs=self.epochs,
            batch_size=self.batch_size,
            lr=self.lr,
            val_size=self.val_size if self.val_size is not None else val_size,
            train_limit=self.train_limit,
            test_limit=self.test_limit,
            checkpoint_every=self.checkpoint_every,
        )


def teacher_autocast(device: torch.device):
    """bf16 autocast on CUDA (the teacher's forward), nothing on CPU."""
    if device.type == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return nullcontext()


def freeze(model: nn.Module) -> nn.Module:
    """Eval mode (BatchNorm uses its running statistics) and no gradients."""
    model.eval()
    model.requires_grad_(False)
    return model


def distill_criterion(teacher: nn.Module, distiller: Distiller, device: torch.device) -> Callable:
    """A :func:`fit` criterion ``(student, x, y, idx, epoch) -> (loss, student_logits)``.

    The teacher runs first on the same batch, under ``no_grad`` (and bf16 autocast on CUDA);
    features are requested from both models only when the method needs them.
    """
    needs = distiller.needs_features

    def criterion(student, x, y, idx, epoch):
        with torch.no_grad(), teacher_autocast(device):
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


def distill(
    config: DistillConfig,
    *,
    resume: bool = True,
    on_epoch_end: Callable[[int, dict[str, float]], None] | None = None,
) -> dict[str, Any]:
    """Run one distillation (teacher checkpoint, student arch, method, recipe, seed) into
    ``config.out``; return the flat result record (also written as ``result.json``)."""
    from ..models import create_model

    config.validate()
    device = resolve_device(config.device)
    t_ckpt = load_checkpoint(config.teacher, "cpu")
    t_cfg = t_ckpt.get("config") or {}
    inherited = {k: getattr(config, k) for k in INHERITED_DATA_KEYS}
    for key in INHERITED_DATA_KEYS:
        if inherited[key] is None and key != "val_size":
            inherited[key] = t_cfg.get(key)
    inherited["data"] = inherited["data"] or "cifar100"
    recipe = config.make_recipe(val_size=_teacher_val_size(t_cfg))
    data = load_data(
        inherited["data"],
        data_dir=config.data_dir or t_cfg.get("data_dir"),
        download=config.download,
        synthetic_preset=inherited["synthetic_preset"] or "easy",
        num_classes=inherited["num_classes"],
        val_size=recipe.val_size,
        train_limit=recipe.train_limit,
        test_limit=recipe.test_limit,
        data_seed=inherited["data_seed"] or 0,
    )
    teacher, t_ckpt = load_model_from_checkpoint(
        config.teacher, device, num_classes=data.num_classes
    )
    del t_ckpt["model"]
    freeze(teacher)
    tinfo = teacher_summary(t_ckpt, config.teacher)

    torch.manual_seed(config.seed)
    student = create_model(config.student, num_classes=data.num_classes)
    options = dict(config.method_options)
    if config.method == "dkd":
        options.setdefault("teacher_arch", tinfo["arch"])
    if method_class(config.method).needs_index:  # e.g. CRD's memory bank: one row per image
        options.setdefault("n_data", len(data.train))
        options.setdefault("labels", data.train.labels)
    distiller = create_distiller(config.method, teacher, student, **options)

    run_dir = Path(config.out)
    teacher_json = run_dir / "teacher.json"
    if teacher_json.is_file():
        t_metrics = json.loads(teacher_json.read_text())["test"]
    else:
        loader = DeviceLoader(data.test, recipe.eval_batch_size, device, return_index=True)
        t_metrics = evaluate(teacher, loader, p_star=data.test.p_star, bf16=device.type == "cuda")
        write_json(teacher_json, {"teacher": tinfo, "test": t_metrics})

    cuda = device.type == "cuda"
    if recipe.channels_last and cuda:
        teacher = teacher.to(memory_format=torch.channels_last)
    want_compile = recipe.compile if config.compile is None else config.compile
    teacher_fwd, _ = maybe_compile(teacher, bool(want_compile), device, recipe.compile_mode)

    record = asdict(config)
    record.update(
        kind="distill",
        arch=config.student,
        teacher_arch=tinfo["arch"],
        teacher_loss=tinfo["loss"],
        resolved_data={k: inherited[k] for k in INHERITED_DATA_KEYS if k != "val_size"},
        method_hparams=distiller.hparams,
    )
    summary = fit(
        run_dir,
        student,
        distill_criterion(teacher_fwd, distiller, device),
        data,
        recipe,
        seed=config.seed,
        config=record,
        arch=config.student,
        device=device,
        extra_modules=distiller if distiller.extra_parameters() else None,
        augment=config.augment,
        compile=config.compile,
        resume=resume,
        on_epoch_end=on_epoch_end,
        desc=f"{config.method} {tinfo['arch']}({tinfo['loss']})->{config.student}",
    )
    dataset = data.source
    if data.source == "synthetic":
        dataset = f"synthetic-{inherited['synthetic_preset'] or 'easy'}"
    result = {
        "kind": "distill",
        "dataset": dataset,
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
        "teacher_mse_to_pstar": t_metrics.get("mse_pstar"),
        "teacher_kl_to_pstar": t_metrics.get("kl_pstar"),
        "student_mse_to_pstar": summary.get("last_epoch_test_mse_pstar"),
        "student_kl_to_pstar": summary.get("last_epoch_test_kl_pstar"),
    }
    write_json(run_dir / RESULT_FILE, result)
    return result


def is_finished(run_dir: str | Path) -> bool:
    """Whether ``run_dir`` holds a finished distillation run (its ``result.json``)."""
    return (Path(run_dir) / RESULT_FILE).is_file()
