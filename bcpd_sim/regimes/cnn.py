"""The CNN variant of the regime map: CIFAR ResNet teachers and CNN students on synthetic images.

Every teacher and student is one run of the vision trainer (:class:`~bcpd_sim.vision.trainer.
Trainer`: bf16, channels_last and torch.compile on CUDA; plain fp32 on the CPU), in its own
resumable run directory under the cell's work directory, so an interrupted cell resumes inside
its teachers and students. Nothing is augmented: crops and flips would change p*.

Teachers answer like the MLP ensembles (:class:`ModelGroup`), so learning-rate selection, the
teacher metrics and the pairing of students are the MLP code's. Students learn from their
teacher's logits precomputed on their (fixed, unaugmented) training images, which equals running
the frozen teacher in eval mode on every batch, at a fraction of the cost.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..device import resolve_device
from .config import STUDENT_LOSSES, RegimesConfig
from .teachers import TeacherSet, lr_values, teacher_seed, teacher_set
from .world import World


class ModelGroup:
    """Trained models of one teacher loss, predicting like an ensemble: ``(members, n, K)``."""

    def __init__(
        self,
        models: list[nn.Module],
        selected_epoch: np.ndarray,
        *,
        device: torch.device,
        batch_size: int,
    ) -> None:
        self.models = models
        self.selected_epoch = selected_epoch
        self.device = device
        self.batch_size = batch_size

    def predict_logits(self, x: np.ndarray, members: list[int] | None = None) -> np.ndarray:
        """Logits ``(len(members), n, K)`` float64 of the images ``x``: normalised as in
        training (:class:`~bcpd_sim.vision.pipeline.DeviceLoader`), eval mode, fp32."""
        from ..vision.checkpoint_eval import predict
        from ..vision.data import ImageDataset
        from ..vision.pipeline import DeviceLoader

        k = self.models[0].num_classes
        loader = DeviceLoader(
            ImageDataset(x, np.zeros(len(x), dtype=np.int64), k), self.batch_size, self.device
        )
        chosen = range(len(self.models)) if members is None else members
        return np.stack([predict(self.models[int(m)], loader) for m in chosen])

    def predict_proba(self, x: np.ndarray, members: list[int] | None = None) -> np.ndarray:
        z = self.predict_logits(x, members)
        z = z - z.max(-1, keepdims=True)
        p = np.exp(z)
        return p / p.sum(-1, keepdims=True)


def teacher_arch(width: int, depth: int) -> str:
    """The teacher's name: ``resnet<depth>`` at the standard width 16, else ``-w<width>``."""
    return f"resnet{depth}" + ("" if width == 16 else f"-w{width}")


def make_teacher(width: int, depth: int, num_classes: int) -> nn.Module:
    """A CIFAR ResNet of ``depth`` with stages ``width`` / 2 ``width`` / 4 ``width``."""
    from ..vision.models.resnet import CifarResNet

    return CifarResNet(depth, (width, width, 2 * width, 4 * width), num_classes)


def _recipe(cfg: RegimesConfig, *, epochs: int, lr: float, batch_size: int, momentum: float):
    from ..vision.recipes import Recipe

    c = cfg.cnn
    return Recipe(
        name="regimes",
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        low_lr=None,
        momentum=momentum,
        weight_decay=c.weight_decay,
        milestones=(epochs // 2, (3 * epochs) // 4) if c.lr_decay and epochs >= 4 else (),
        bf16=c.fast,
        channels_last=c.fast,
        compile=c.fast,
        augment=False,
        eval_batch_size=c.eval_batch_size,
        val_size=cfg.data.n_val,
        checkpoint_every=0,
    )


def _dataset(sample, num_classes: int, name: str, labels: np.ndarray | None = None):
    from ..vision.data import ImageDataset

    return ImageDataset(
        sample.x,
        sample.y if labels is None else labels,
        num_classes,
        p_star=sample.p_star,
        name=name,
    )


def _bundle(world: World, train, name: str):
    from ..vision.bundle import DataBundle

    k = world.num_classes
    val = _dataset(world.val, k, "val")
    test = _dataset(world.test, k, "test")
    bayes = float(np.mean(world.test.p_star.argmax(1) == world.test.y))
    return DataBundle(train, val, test, k, name, False, {"bayes_test_acc": bayes})


def _load(model: nn.Module, run_dir: Path, which: str) -> nn.Module:
    from ..vision.runs import load_checkpoint

    ckpt = load_checkpoint(run_dir / "checkpoints" / f"{which}.pt")
    model.load_state_dict(ckpt["model"])
    return model


def train_cnn_teachers(
    cfg: RegimesConfig, point: dict[str, Any], draw: int, world: World, work_dir: Path
) -> dict[str, TeacherSet]:
    """Every teacher loss over the lr grid (and the shared lr) x replicates, as vision runs;
    each loss's lr chosen on the validation split only (:func:`select_lr`)."""
    from ..vision.losses import teacher_loss
    from ..vision.trainer import fit, supervised_criterion

    t = cfg.teacher
    device = resolve_device(None if cfg.device == "auto" else cfg.device)
    width, depth, epochs = int(point["width"]), int(point["depth"]), int(point["epochs"])
    arch = teacher_arch(width, depth)
    data = _bundle(world, _dataset(world.train, world.num_classes, "train"), "synthetic")
    grid = sorted(set(map(float, t.lr_grid)))
    which = "last" if t.select == "last" else "best"
    out = {}
    for loss in t.losses:
        models, rows, epochs_used = [], [], []
        for lr in lr_values(cfg):
            for r in range(t.seeds):
                seed = teacher_seed(cfg, draw, r)
                run_dir = work_dir / "teachers" / f"{loss}-lr{lr:g}-r{r}"
                torch.manual_seed(seed)  # the same initial weights for every loss and lr
                model = make_teacher(width, depth, world.num_classes)
                summary = fit(
                    run_dir,
                    model,
                    supervised_criterion(teacher_loss(loss)),
                    data,
                    _recipe(
                        cfg, epochs=epochs, lr=lr, batch_size=t.batch_size, momentum=t.momentum
                    ),
                    seed=seed,
                    config={"kind": "teacher", "arch": arch, "loss": loss, "lr": lr},
                    arch=arch,
                    device=device,
                    desc=f"{arch} {loss} lr {lr:g}",
                )
                teacher = make_teacher(width, depth, world.num_classes)
                models.append(_load(teacher, run_dir, which).to(device).eval())
                epochs_used.append(
                    summary["last_epoch"] if which == "last" else summary["best_epoch"]
                )
                rows.append({"teacher_lr": lr, "replicate": r, "teacher_seed": seed})
        group = ModelGroup(
            models,
            np.asarray(epochs_used),
            device=device,
            batch_size=cfg.cnn.eval_batch_size,
        )
        out[loss] = teacher_set(loss, group, rows, world, grid, teacher_arch=arch)
    return out


def fit_cnn_students(
    cfg: RegimesConfig,
    world: World,
    inputs: str,
    student_loss: str,
    teacher_logits: np.ndarray,
    seeds: list[int],
    names: list[str],
    work_dir: Path,
) -> dict[str, np.ndarray]:
    """Distil each teacher's logits (``teacher_logits[i]`` on the student inputs) into a fresh
    ``cnn.student_arch`` with the named student loss; the best-validation epoch is the student's
    result and the last epoch is reported beside it."""
    from ..vision.distill import create_distiller
    from ..vision.models import create_model
    from ..vision.trainer import fit

    s = cfg.student
    device = resolve_device(None if cfg.device == "auto" else cfg.device)
    sample = world.student_sample(inputs)
    loss_name, options = STUDENT_LOSSES[student_loss]
    hparams = {
        "ce_weight": options.get("alpha", 0.0) if loss_name == "kd" else 0.0,
        "kd_weight": options.get("beta", 1.0) if loss_name == "kd" else 1.0,
        "temperature": options["temperature"],
    }
    measured: dict[str, list] = {
        "student_acc": [],
        "student_acc_last": [],
        "student_selected_epoch": [],
        "student_mse_to_bcpd": [],
    }
    for logits, seed, name in zip(teacher_logits, seeds, names):
        # Fresh inputs carry no label: the CE term (kd_t4) uses the teacher's argmax there.
        labels = None if inputs == "teacher_train" else logits.argmax(-1)
        data = _bundle(world, _dataset(sample, world.num_classes, inputs, labels), "synthetic")
        torch.manual_seed(seed)  # paired across teacher losses
        student = create_model(cfg.cnn.student_arch, num_classes=world.num_classes)
        # KD needs only the logits: no teacher module (its logits are the table below).
        distiller = create_distiller("kd", nn.Identity(), student, **hparams)
        table = torch.as_tensor(logits, dtype=torch.float32, device=device)

        def criterion(model, x, y, idx, epoch, table=table, distiller=distiller):
            out = model(x)
            loss, _ = distiller(out, table.index_select(0, idx), y)
            return loss, out

        summary = fit(
            work_dir / "students" / name,
            student,
            criterion,
            data,
            _recipe(cfg, epochs=s.epochs, lr=s.lr, batch_size=s.batch_size, momentum=s.momentum),
            seed=seed,
            config={"kind": "distill", "arch": cfg.cnn.student_arch, "student_loss": student_loss},
            arch=cfg.cnn.student_arch,
            device=device,
            desc=f"student {name}",
        )
        measured["student_acc"].append(summary["best_epoch_test_acc"])
        measured["student_acc_last"].append(summary["last_epoch_test_acc"])
        measured["student_selected_epoch"].append(summary["best_epoch"])
        measured["student_mse_to_bcpd"].append(summary.get("best_epoch_test_mse_pstar", np.nan))
    return {k: np.asarray(v, dtype=float) for k, v in measured.items()}
