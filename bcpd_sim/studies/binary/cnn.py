"""Binary students from merged classes with CNNs: synthetic CIFAR-shaped images (exact p*) or
CIFAR-2x5 (CIFAR-10's classes 0-4 against 5-9).

Teachers are trained on the merged labels with CE and with MSE by the vision trainer; each is
distilled (from its last-epoch checkpoint, as the paper's code does) into a student with every
method of :mod:`bcpd_sim.vision.distill` asked for, e.g. ``kd`` and the feature method ``at``
(attention transfer), which the paper reports as harmful to binary students. Every run writes its
own directory and resumes; the results table has the same columns as the MLP study's.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from ... import io
from ...errors import ConfigError
from ...provenance import environment
from ...validation import check_choice, check_int
from ..config import load_study_config, to_toml

DATA = ("synthetic", "cifar2x5")


@dataclass
class BinaryCNNConfig:
    """Settings of the binary study on CNNs."""

    preset: str = "cnn_tiny"
    data: str = "synthetic"  # synthetic (10 latent classes merged 0-4 vs 5-9) or cifar2x5
    data_dir: str = ""  # CIFAR-10 folder for cifar2x5 (else $BCPD_SIM_CIFAR10)
    synthetic_preset: str = "hard"
    data_seed: int = 0
    n_train: int = 700  # training images, the validation split included
    n_val: int = 100
    n_test: int = 1000
    teacher_arch: str = "resnet8"
    student_arch: str = "resnet8"
    recipe: str = "tiny"
    teacher_epochs: int = 5
    student_epochs: int = 3
    teacher_losses: list[str] = field(default_factory=lambda: ["ce", "mse"])
    methods: list[str] = field(default_factory=lambda: ["kd", "at"])
    seeds: int = 2
    device: str = "auto"

    def validate(self) -> None:
        from ...vision.distill import list_methods
        from ...vision.losses import list_losses
        from ...vision.models import list_models
        from ...vision.recipes import list_recipes
        from ...vision.synthetic import list_presets

        check_choice("data", self.data, DATA)
        check_choice("synthetic_preset", self.synthetic_preset, list_presets())
        for key in ("teacher_arch", "student_arch"):
            check_choice(key, getattr(self, key), list_models())
        check_choice("recipe", self.recipe, list_recipes())
        for key in ("n_train", "n_test", "teacher_epochs", "student_epochs", "seeds"):
            check_int(key, getattr(self, key), minimum=1)
        check_int("n_val", self.n_val, minimum=1)
        if self.n_val >= self.n_train:
            raise ConfigError(
                f"n_val must be smaller than n_train={self.n_train}, got {self.n_val}"
            )
        if not self.teacher_losses:
            raise ConfigError("teacher_losses must not be empty")
        for t in self.teacher_losses:
            check_choice("teacher_losses", t, list_losses())
        if not self.methods:
            raise ConfigError(f"methods must not be empty; valid: {', '.join(list_methods())}")
        for m in self.methods:
            check_choice("methods", m, list_methods())
        check_choice("device", self.device, ("auto", "cpu", "cuda"))


CNN_PRESETS: dict[str, dict[str, Any]] = {
    # CPU: a few minutes on two cores.
    "cnn_tiny": {},
    # Tests: seconds.
    "cnn_smoke": {
        "n_train": 160,
        "n_val": 32,
        "n_test": 64,
        "teacher_epochs": 1,
        "student_epochs": 1,
        "seeds": 1,
    },
    # A GPU: CIFAR-sized data, ResNet-56 teachers and ResNet-20 students, the fast recipe.
    "cnn_gpu": {
        "n_train": 50_000,
        "n_val": 5_000,
        "n_test": 10_000,
        "teacher_arch": "resnet56",
        "student_arch": "resnet20",
        "recipe": "fast",
        "teacher_epochs": 60,
        "student_epochs": 60,
        "methods": ["kd", "at", "fitnet"],
        "seeds": 3,
    },
}


def load_cnn_config(
    preset: str = "cnn_tiny", *, file=None, overrides=None, flags=None
) -> BinaryCNNConfig:
    return load_study_config(
        BinaryCNNConfig, CNN_PRESETS, preset, file=file, overrides=overrides, flags=flags
    )


def load_binary_data(cfg: BinaryCNNConfig):
    """The merged-label DataBundle (2 classes; exact merged p* on synthetic data)."""
    from ...vision.cifar10 import load_cifar2x5, merge_classes
    from ...vision.data import split_validation
    from ...vision.train import DataBundle

    if cfg.data == "synthetic":
        from ...vision.synthetic import make_synthetic

        train, test, _ = make_synthetic(
            cfg.synthetic_preset,
            n_train=cfg.n_train,
            n_test=cfg.n_test,
            seed=cfg.data_seed,
            num_classes=10,
        )
        train, test = merge_classes(train), merge_classes(test)
        augment = False  # crops and flips would change p*
    else:
        train, test = load_cifar2x5(cfg.data_dir or None)
        train, test = train.head(cfg.n_train), test.head(cfg.n_test)
        augment = True
    train, val = split_validation(train, cfg.n_val, seed=cfg.data_seed)
    info: dict[str, Any] = {"source": cfg.data, "n_train": len(train), "n_val": len(val)}
    if test.p_star is not None:
        info["bayes_test_acc"] = float(np.mean(test.p_star.argmax(1) == test.labels))
    return DataBundle(train, val, test, 2, cfg.data, augment, info)


def _recipe(cfg: BinaryCNNConfig, epochs: int):
    from ...vision.recipes import get_recipe

    return get_recipe(cfg.recipe, epochs=epochs, val_size=cfg.n_val)


def _last_weights(model: torch.nn.Module, run_dir: Path) -> torch.nn.Module:
    ckpt = torch.load(run_dir / "checkpoints" / "last.pt", map_location="cpu", weights_only=False)
    model.load_state_dict(ckpt["model"])
    return model


def run_binary_cnn(cfg: BinaryCNNConfig, out: str | Path) -> pd.DataFrame:
    """Train (or resume) every teacher and student; write results.parquet, summary.json."""
    from ...device import resolve_device
    from ...vision.distill import create_distiller
    from ...vision.distill.trainer import distill_criterion, freeze
    from ...vision.losses import teacher_loss
    from ...vision.models import create_model
    from ...vision.train import fit, supervised_criterion
    from .mlp import summarize

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    data = load_binary_data(cfg)
    device = resolve_device(None if cfg.device == "auto" else cfg.device)
    base = {k: v for k, v in asdict(cfg).items() if k not in ("preset",)}
    rows = []
    for loss in cfg.teacher_losses:
        for seed in range(cfg.seeds):
            t_dir = out / "teachers" / f"{loss}-s{seed}"
            torch.manual_seed(seed)
            model = create_model(cfg.teacher_arch, num_classes=2)
            t_sum = fit(
                t_dir, model, supervised_criterion(teacher_loss(loss)), data,
                _recipe(cfg, cfg.teacher_epochs), seed=seed,
                config={**base, "kind": "teacher", "arch": cfg.teacher_arch, "loss": loss},
                arch=cfg.teacher_arch, device=device, desc=f"{cfg.teacher_arch} {loss}",
            )  # fmt: skip
            teacher = create_model(cfg.teacher_arch, num_classes=2)
            teacher = freeze(_last_weights(teacher, t_dir).to(device))
            for method in cfg.methods:
                s_dir = out / "students" / f"{loss}-s{seed}-{method}"
                torch.manual_seed(10_000 + seed)
                student = create_model(cfg.student_arch, num_classes=2)
                distiller = create_distiller(method, teacher, student)
                s_sum = fit(
                    s_dir, student, distill_criterion(teacher, distiller, device), data,
                    _recipe(cfg, cfg.student_epochs), seed=10_000 + seed,
                    config={**base, "kind": "distill", "arch": cfg.student_arch,
                            "teacher_loss": loss, "method": method, "teacher_seed": seed},
                    arch=cfg.student_arch, device=device,
                    extra_modules=distiller if distiller.extra_parameters() else None,
                    desc=f"{method} {loss}",
                )  # fmt: skip
                rows.append(
                    {
                        "teacher_loss": loss,
                        "teacher_seed": seed,
                        "teacher_acc": t_sum["last_epoch_test_acc"],
                        "teacher_acc_best": t_sum["best_epoch_test_acc"],
                        "teacher_mse_to_bcpd": t_sum.get("last_epoch_test_mse_pstar", np.nan),
                        "teacher_kl_to_bcpd": t_sum.get("last_epoch_test_kl_pstar", np.nan),
                        "method": method,
                        "student_seed": 10_000 + seed,
                        "student_acc": s_sum["best_epoch_test_acc"],
                        "student_acc_last": s_sum["last_epoch_test_acc"],
                        "student_mse_to_bcpd": s_sum.get("last_epoch_test_mse_pstar", np.nan),
                        "student_kl_to_bcpd": s_sum.get("last_epoch_test_kl_pstar", np.nan),
                        "student_best_epoch": s_sum["best_epoch"],
                    }
                )
    frame = pd.DataFrame(rows)
    frame["bayes_acc"] = data.info.get("bayes_test_acc", np.nan)
    frame["groups"] = str([[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]])
    for key, value in asdict(cfg).items():
        if not isinstance(value, list):
            frame[f"cfg_{key}"] = value
    io.write_table(out / "results.parquet", frame)
    io.write_text(out / "config.toml", to_toml(cfg))
    summary = summarize(frame)
    summary["seconds"] = time.perf_counter() - t0
    summary["environment"] = environment()
    io.write_json(out / "summary.json", summary)
    return frame


__all__ = ["BinaryCNNConfig", "CNN_PRESETS", "load_cnn_config", "run_binary_cnn"]
