"""Regime-map configuration: axes, the two mapped axes, data, teachers, students; presets.

Frozen dataclasses (lists are tuples), built from a preset, then a TOML file, then ``--set
key=value`` overrides; every field is validated at the boundary and an error names the dotted key,
the value and what is allowed.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import config as generic
from ..errors import ConfigError
from ..validation import check_choice, check_fraction, check_int, check_positive, check_seed

#: The axes a study may vary; each is a list in ``[axes]``. A map uses two of them.
AXES = (
    "family",
    "num_classes",
    "separation",
    "label_noise",
    "n_train",
    "width",
    "depth",
    "epochs",
)
FAMILIES = ("paper", "warped", "multimodal")
#: ``mlp``: points in R^d, MLP teachers and students trained as batched ensembles; ``cnn``:
#: CIFAR-shaped synthetic images with exact p* (:mod:`bcpd_sim.vision.synthetic`), CIFAR ResNet
#: teachers and a registered CNN student, each trained by the vision trainer.
MODELS = ("mlp", "cnn")
#: Teacher losses the CNN trainer knows (:mod:`bcpd_sim.vision.losses`; same names and meanings).
CNN_TEACHER_LOSSES = ("ce", "mse", "mse_logits", "ls")
#: Student losses by name: (ensemble loss, its options). ``kd_t4`` is the CIFAR recipe's KD loss.
STUDENT_LOSSES: dict[str, tuple[str, dict[str, Any]]] = {
    "soft_t1": ("soft", {"temperature": 1.0}),
    "kd_t4": ("kd", {"alpha": 0.1, "beta": 0.9, "temperature": 4.0}),
}
STUDENT_INPUTS = ("teacher_train", "fresh")
LR_RULES = ("tuned", "shared")
OPTIMIZERS = ("sgd", "adam", "adamw")
TEACHER_SELECT = ("last", "best_val_acc", "best_val_loss")


def teacher_losses() -> dict[str, tuple[str, dict[str, Any]]]:
    """Teacher loss names and their (ensemble loss, options): the ones Figure 1 already names."""
    from ..figure1.config import TEACHER_LOSSES

    return TEACHER_LOSSES


@dataclass(frozen=True)
class AxesConfig:
    """Values of every axis; the two mapped axes may hold several, the others exactly one."""

    family: tuple[str, ...] = ("paper",)  # paper (lattice Gaussians), warped, multimodal
    num_classes: tuple[int, ...] = (10,)
    separation: tuple[float, ...] = (1.0,)  # lattice delta (paper, warped); mode spread factor
    label_noise: tuple[float, ...] = (0.0,)  # symmetric LabelNoiseMixture rate
    n_train: tuple[int, ...] = (1000,)  # teacher training points (= fresh student inputs)
    width: tuple[int, ...] = (256,)  # teacher hidden units per layer
    depth: tuple[int, ...] = (1,)  # teacher hidden layers
    epochs: tuple[int, ...] = (100,)  # teacher epochs


@dataclass(frozen=True)
class MapConfig:
    x: str = "n_train"
    y: str = "width"


@dataclass(frozen=True)
class DataConfig:
    dim: int = 30
    noise_var: float = 6.0  # per-class isotropic variance (the paper's 6)
    n_val: int = 2000  # labelled validation split: lr and checkpoint selection
    n_test: int = 10000
    draws: int = 2  # independent draws of the data (and of the mixture, see redraw_mixture)
    redraw_mixture: bool = True  # each draw a new mixture (class means) too
    mixture_seed: int = 0
    sample_seed: int = 1


@dataclass(frozen=True)
class TeacherConfig:
    losses: tuple[str, ...] = ("ce", "mse", "mse_logits", "ls")
    lr_grid: tuple[float, ...] = (0.001, 0.003, 0.01, 0.03, 0.1)  # each loss's lr is chosen here
    shared_lr: float = 0.03  # the one lr every loss is also trained at
    seeds: int = 3  # teachers per loss and lr (replicates, paired across losses)
    batch_size: int = 64
    optimizer: str = "sgd"
    momentum: float = 0.9
    select: str = "last"  # teacher checkpoint: the final one, as KD uses a trained teacher
    seed: int = 0


@dataclass(frozen=True)
class StudentConfig:
    width: tuple[int, ...] = (64,)
    epochs: int = 40
    lr: float = 0.03
    batch_size: int = 64
    momentum: float = 0.9
    losses: tuple[str, ...] = ("soft_t1", "kd_t4")
    inputs: tuple[str, ...] = ("teacher_train", "fresh")
    per_teacher: int = 1
    seed: int = 0


@dataclass(frozen=True)
class CnnConfig:
    """The CNN variant (``model = "cnn"``). The axes then mean: ``width`` the teacher's stage-1
    channels (a CIFAR ResNet with stages w / 2w / 4w; 16 is the standard ResNet), ``depth`` its
    depth 6n + 2 (8, 14, 20, 32, 44, 56, 110), ``separation`` the latent lattice spacing,
    ``family`` must be ``paper``; ``data.dim`` is the latent dimension and ``data.noise_var`` the
    latent variance. ``student.width`` does not apply (the student is ``student_arch``)."""

    student_arch: str = "resnet8"
    signal: float = 0.6  # image-map settings of the synthetic world (vision.synthetic)
    pixel_noise: float = 0.3
    weight_decay: float = 5e-4
    lr_decay: bool = True  # lr x0.1 at 50% and 75% of the epochs (teachers and students)
    fast: bool = True  # bf16 autocast, channels_last and torch.compile on CUDA (CPU stays fp32)
    eval_batch_size: int = 500


@dataclass(frozen=True)
class RegimesConfig:
    preset: str = "quick"
    model: str = "mlp"  # mlp | cnn
    axes: AxesConfig = field(default_factory=AxesConfig)
    map: MapConfig = field(default_factory=MapConfig)
    data: DataConfig = field(default_factory=DataConfig)
    teacher: TeacherConfig = field(default_factory=TeacherConfig)
    student: StudentConfig = field(default_factory=StudentConfig)
    cnn: CnnConfig = field(default_factory=CnnConfig)
    bootstrap: int = 2000
    device: str = "auto"
    threads: int = 1  # torch CPU threads while training (0: torch's default); small models
    # train fastest on one thread, and far faster than on several when the CPU is shared

    def to_dict(self) -> dict[str, Any]:
        return generic.to_dict(self)

    def to_toml(self) -> str:
        return generic.to_toml(self)

    def validate(self) -> None:
        validate(self)

    def axis_values(self, name: str) -> tuple:
        return getattr(self.axes, name)


SECTIONS: dict[str, type] = {
    "axes": AxesConfig,
    "map": MapConfig,
    "data": DataConfig,
    "teacher": TeacherConfig,
    "student": StudentConfig,
    "cnn": CnnConfig,
}

PRESETS: dict[str, dict[str, Any]] = {
    # Tests: under a minute on a 2-core CPU; the wide teacher on 200 points memorises them.
    "smoke": {
        "axes": {"n_train": [200, 800], "width": [16, 256], "epochs": [60]},
        "data": {"n_val": 400, "n_test": 2000, "draws": 2},
        "teacher": {"lr_grid": [0.03, 0.1], "shared_lr": 0.03, "seeds": 2, "batch_size": 50},
        "student": {"epochs": 8, "width": [32], "batch_size": 50},
        "bootstrap": 200,
    },
    # The committed map: about 5 CPU-minutes on a quiet 2-core machine.
    "quick": {
        "axes": {"n_train": [200, 600, 1800], "width": [16, 128, 512], "epochs": [100]},
        "data": {"n_val": 1000, "n_test": 10000, "draws": 3},
        "teacher": {"lr_grid": [0.001, 0.003, 0.01, 0.03, 0.1], "seeds": 2, "batch_size": 64},
        "student": {"epochs": 40, "width": [64], "batch_size": 64},
    },
    # For a GPU (about an hour on one H100-class device by our estimate; not timed here): the
    # many-models-at-once trainer up to 8192 hidden units, 16,000 training points, 5 draws.
    "large": {
        "axes": {
            "n_train": [250, 1000, 4000, 16000],
            "width": [32, 256, 2048, 8192],
            "epochs": [200],
        },
        "data": {"n_val": 5000, "n_test": 50000, "draws": 5},
        "teacher": {
            "lr_grid": [0.0003, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3],
            "seeds": 4,
            "batch_size": 128,
        },
        "student": {"epochs": 60, "width": [128, 128], "batch_size": 128, "per_teacher": 2},
        "threads": 0,
    },
    # CNN variant for the tests: 4 classes of 32 x 32 images, ResNet-8 teachers at half width
    # (stage-1 channels 8) on 40 and 120 images; the teachers memorise their training images.
    "cnn_tiny": {
        "model": "cnn",
        "axes": {
            "n_train": [40, 120],
            "width": [8],
            "depth": [8],
            "epochs": [30],
            "num_classes": [4],
        },
        "data": {"dim": 16, "noise_var": 1.0, "n_val": 40, "n_test": 200, "draws": 2},
        "teacher": {
            "losses": ["ce", "mse"],
            "lr_grid": [0.05],
            "shared_lr": 0.05,
            "seeds": 1,
            "batch_size": 10,
        },
        "student": {"epochs": 6, "lr": 0.05, "batch_size": 20, "losses": ["soft_t1", "kd_t4"]},
        "cnn": {"student_arch": "resnet8", "eval_batch_size": 200},
        "bootstrap": 200,
        "threads": 0,
    },
    # CNN variant on a CPU (about 20-30 minutes on a quiet 2-core machine): 10 classes of the
    # synthetic 'hard' world (Bayes accuracy about 0.87), ResNet-8 teachers trained 30 epochs on 100
    # and 400 images (both memorise them), ResNet-8 students with the KD loss, 2 draws.
    "cnn_quick": {
        "model": "cnn",
        "axes": {
            "n_train": [100, 400],
            "width": [16],
            "depth": [8],
            "epochs": [30],
            "num_classes": [10],
            "separation": [0.6],
        },
        "data": {"dim": 32, "noise_var": 1.0, "n_val": 200, "n_test": 1000, "draws": 2},
        "teacher": {
            "losses": ["ce", "mse"],
            "lr_grid": [0.05],
            "shared_lr": 0.05,
            "seeds": 2,
            "batch_size": 20,
        },
        "student": {"epochs": 10, "lr": 0.05, "batch_size": 20, "losses": ["kd_t4"]},
        "cnn": {"student_arch": "resnet8", "eval_batch_size": 500},
        "threads": 0,
    },
    # CNN variant for one GPU (several GPU-hours by our estimate, not timed): the synthetic
    # 'hard' world with 100 classes (Bayes accuracy about 0.55), ResNet teachers of width 16 and
    # 64 on 5,000 to 45,000 images for 60 epochs (they reach 100% training accuracy), ResNet-8
    # students, 3 draws.
    "cnn_large": {
        "model": "cnn",
        "map": {"x": "n_train", "y": "width"},
        "axes": {
            "n_train": [5000, 15000, 45000],
            "width": [16, 64],
            "depth": [20],
            "epochs": [60],
            "num_classes": [100],
            "separation": [0.6],
        },
        "data": {"dim": 32, "noise_var": 1.0, "n_val": 5000, "n_test": 10000, "draws": 3},
        "teacher": {
            "losses": ["ce", "mse", "ls"],
            "lr_grid": [0.02, 0.05, 0.1],
            "shared_lr": 0.05,
            "seeds": 2,
            "batch_size": 128,
        },
        "student": {"epochs": 60, "lr": 0.05, "batch_size": 128},
        "cnn": {"student_arch": "resnet8", "eval_batch_size": 2000},
        "threads": 0,
    },
}


def list_presets() -> list[str]:
    return sorted(PRESETS)


def load_config(
    preset: str = "quick", *, file: str | Path | None = None, overrides: list[str] | None = None
) -> RegimesConfig:
    """The preset, then a TOML file, then ``key=value`` overrides; validated."""
    check_choice("preset", preset, list_presets())
    layers = [("preset", {"preset": preset, **copy.deepcopy(PRESETS[preset])})]
    if file is not None:
        data = generic.read_toml(file)
        data.pop("preset", None)  # the preset is chosen on the command line
        layers.append((str(file), data))
    return generic.load(RegimesConfig, layers=layers, overrides=overrides or [])


def _ints(key: str, values: tuple, minimum: int) -> None:
    if not values:
        raise ConfigError(f"{key} must not be empty")
    for v in values:
        check_int(f"{key} entries", v, minimum=minimum)


def _unique_choices(key: str, values: tuple, allowed) -> None:
    if not values:
        raise ConfigError(f"{key} must not be empty")
    for v in values:
        check_choice(f"{key} entry", v, allowed)
    if len(set(values)) != len(values):
        raise ConfigError(f"{key} must not repeat an entry, got {list(values)}")


def validate(cfg: RegimesConfig) -> None:
    """Check every field; raise ConfigError naming the key, the value and what is allowed."""
    a, m, d, t, s = cfg.axes, cfg.map, cfg.data, cfg.teacher, cfg.student
    check_choice("map.x", m.x, AXES)
    check_choice("map.y", m.y, AXES)
    if m.x == m.y:
        raise ConfigError(f"map.x and map.y must be different axes, both are {m.x!r}")
    for name in AXES:
        values = getattr(a, name)
        if not values:
            raise ConfigError(f"axes.{name} must not be empty")
        if name not in (m.x, m.y) and len(values) != 1:
            raise ConfigError(
                f"axes.{name} must hold one value unless it is mapped (map.x = {m.x!r}, "
                f"map.y = {m.y!r}), got {list(values)}"
            )
        if len(set(values)) != len(values):
            raise ConfigError(f"axes.{name} must not repeat a value, got {list(values)}")
    _unique_choices("axes.family", a.family, FAMILIES)
    _ints("axes.num_classes", a.num_classes, 2)
    for v in a.separation:
        check_positive("axes.separation entries", v)
    for v in a.label_noise:
        check_fraction("axes.label_noise entries", v, low=0.0, high=0.9)
    _ints("axes.n_train", a.n_train, 2)
    _ints("axes.width", a.width, 1)
    _ints("axes.depth", a.depth, 1)
    _ints("axes.epochs", a.epochs, 1)
    check_int("data.dim", d.dim, minimum=1)
    check_positive("data.noise_var", d.noise_var)
    check_int("data.n_val", d.n_val, minimum=2)
    check_int("data.n_test", d.n_test, minimum=2)
    check_int("data.draws", d.draws, minimum=1)
    check_seed("data.mixture_seed", d.mixture_seed)
    check_seed("data.sample_seed", d.sample_seed)
    check_seed("teacher.seed", t.seed)
    check_seed("student.seed", s.seed)
    check_int("bootstrap", cfg.bootstrap, minimum=10, maximum=100_000)
    check_choice("device", cfg.device, ("auto", "cpu", "cuda"))
    check_int("threads", cfg.threads, minimum=0)
    check_choice("preset", cfg.preset, list_presets())
    _unique_choices("teacher.losses", t.losses, teacher_losses())
    if "ce" not in t.losses or len(t.losses) < 2:
        raise ConfigError(
            f"teacher.losses must include 'ce' (the baseline) and another loss, got {list(t.losses)}"
        )
    if not t.lr_grid:
        raise ConfigError("teacher.lr_grid must not be empty")
    for v in t.lr_grid:
        check_positive("teacher.lr_grid entries", v)
    check_positive("teacher.shared_lr", t.shared_lr)
    check_int("teacher.seeds", t.seeds, minimum=1)
    check_int("teacher.batch_size", t.batch_size, minimum=1)
    check_choice("teacher.optimizer", t.optimizer, OPTIMIZERS)
    check_fraction("teacher.momentum", t.momentum, low=0.0, high=0.999)
    check_choice("teacher.select", t.select, TEACHER_SELECT)
    _ints("student.width", s.width, 1)
    check_int("student.epochs", s.epochs, minimum=1)
    check_positive("student.lr", s.lr)
    check_int("student.batch_size", s.batch_size, minimum=1)
    check_fraction("student.momentum", s.momentum, low=0.0, high=0.999)
    _unique_choices("student.losses", s.losses, STUDENT_LOSSES)
    _unique_choices("student.inputs", s.inputs, STUDENT_INPUTS)
    check_int("student.per_teacher", s.per_teacher, minimum=1)
    check_choice("model", cfg.model, MODELS)
    if cfg.model == "cnn":
        validate_cnn(cfg)
        check_image_budget(cfg)
    else:
        check_budget(cfg)


def validate_cnn(cfg: RegimesConfig) -> None:
    """The CNN variant's own rules (see :class:`CnnConfig` for what the axes mean there)."""
    from ..vision.models import list_models

    a, c, t = cfg.axes, cfg.cnn, cfg.teacher
    if a.family != ("paper",):
        raise ConfigError(
            f"axes.family must be ['paper'] when model = 'cnn' (the synthetic images have lattice "
            f"Gaussian latents), got {list(a.family)}"
        )
    for v in a.depth:
        if v < 8 or (v - 2) % 6:
            raise ConfigError(
                f"axes.depth entries are CIFAR ResNet depths 6n + 2 (8, 14, 20, 32, 44, 56, 110) "
                f"when model = 'cnn', got {v}"
            )
    for loss in t.losses:
        check_choice("teacher.losses entry (model = 'cnn')", loss, CNN_TEACHER_LOSSES)
    check_choice("teacher.optimizer (model = 'cnn')", t.optimizer, ("sgd",))
    check_choice("teacher.select (model = 'cnn')", t.select, ("last", "best_val_acc"))
    check_choice("cnn.student_arch", c.student_arch, list_models())
    check_int("data.dim (the latent dimension, model = 'cnn')", cfg.data.dim, maximum=192)
    check_positive("cnn.signal", c.signal)
    check_positive("cnn.pixel_noise", c.pixel_noise)
    check_positive("cnn.weight_decay", c.weight_decay, allow_zero=True)
    check_int("cnn.eval_batch_size", c.eval_batch_size, minimum=1)


def check_image_budget(cfg: RegimesConfig) -> None:
    """Refuse a CNN config whose images (float32, 3 x 32 x 32) of one cell cannot fit in memory."""
    from ..validation import check_memory

    d, a = cfg.data, cfg.axes
    per_image = 3 * 32 * 32 * 4 + 8 * max(a.num_classes)  # pixels + p*
    check_memory(
        [
            ("axes.n_train", "training and fresh images", 2 * max(a.n_train) * per_image),
            ("data.n_test", "test images", d.n_test * per_image),
            ("data.n_val", "validation images", d.n_val * per_image),
        ]
    )


def check_budget(cfg: RegimesConfig) -> None:
    """Refuse a config whose largest cell cannot fit in memory, or whose total teacher training
    work is absurd; the error names the axis or key that drives it."""
    from ..ensemble.budget import memory_parts, training_flops
    from ..validation import check_memory, check_work

    a, d, t = cfg.axes, cfg.data, cfg.teacher
    members = len({*t.lr_grid, t.shared_lr}) * t.seeds
    k, n = max(a.num_classes), max(a.n_train)
    width = [max(a.width)] * max(a.depth)
    keys = {"members": "teacher.seeds", "width": "axes.width", "batch_size": "teacher.batch_size"}
    parts = memory_parts(
        members=members,
        width=width,
        input_dim=d.dim,
        num_classes=k,
        batch_size=t.batch_size,
        n_train=n,
        n_val=d.n_val,
        keys={**keys, "n_train": "axes.n_train"},
    )
    # Teacher probabilities on the test split, evaluated for all members of a loss at once.
    parts.append(("data.n_test", "teacher outputs on the test split", members * d.n_test * k * 8.0))
    check_memory(parts)
    cells = d.draws * len(t.losses)
    for name in AXES:
        if name not in ("width", "depth", "n_train", "epochs", "num_classes"):
            cells *= len(getattr(a, name))
    flops = cells * sum(
        training_flops(
            members=members, width=[w] * depth, input_dim=d.dim, num_classes=kk, samples=nt * ep
        )
        for w in a.width
        for depth in a.depth
        for nt in a.n_train
        for ep in a.epochs
        for kk in a.num_classes
    )
    check_work(
        "axes.width x axes.n_train x axes.epochs", flops, what="training every teacher of the map"
    )


def read_config(path: str | Path) -> RegimesConfig:
    """A run directory's saved ``config.toml`` (keys added since take their defaults)."""
    data = generic.read_toml(path)
    data.pop("study", None)
    return generic.load(RegimesConfig, layers=[(str(path), data)])


__all__ = [
    "AXES",
    "CNN_TEACHER_LOSSES",
    "MODELS",
    "FAMILIES",
    "LR_RULES",
    "PRESETS",
    "STUDENT_INPUTS",
    "STUDENT_LOSSES",
    "RegimesConfig",
    "list_presets",
    "load_config",
    "read_config",
    "teacher_losses",
]
