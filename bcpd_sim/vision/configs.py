"""Shared pieces of the CIFAR run configs, and the command-line plumbing they derive.

A run's config (:class:`~bcpd_sim.vision.train.TeacherConfig`,
:class:`~bcpd_sim.vision.distill.trainer.DistillConfig`, :class:`~bcpd_sim.vision.sweep.SweepSpec`)
is a frozen dataclass composed of the pieces here (data options, recipe overrides, run options)
plus its own fields. Each field is written once: its type, default, help text, its allowed range
(``metadata["range"]``) or choices (``metadata["choices"]``, a callable returning the valid
names). From the fields come the command-line flags (``--train-limit``), the ``--config
FILE.toml`` / ``--set key=value`` / ``--print-config`` handling of :mod:`bcpd_sim.config`, and
the checks :func:`check_fields` runs before any work.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from .. import config as generic
from ..errors import ConfigError
from ..validation import check_choice
from .bundle import DATA_SOURCES
from .recipes import Recipe, get_recipe, list_recipes

T = TypeVar("T")
R = TypeVar("R")

MAX_SEED = 2**32 - 1
MAX_IMAGES = 10_000_000
#: RecipeOptions fields that are not overrides of a Recipe field.
NOT_RECIPE_FIELDS = ("recipe", "full_train")
#: The run's selection protocol, by ``full_train``.
PROTOCOLS = {False: "val_split", True: "full_train_last_epoch"}


def option(
    default: Any,
    help: str,
    *,
    range: tuple | None = None,
    choices=None,
    label: str | None = None,
    flag: bool = True,
):
    """A config field: its default, help text, and allowed ``range`` (inclusive for integers;
    ``(low, high]`` for numbers) or ``choices`` (a callable returning the valid names; ``label``
    names them in errors). ``flag=False``: no command-line flag is derived from it."""
    meta: dict[str, Any] = {"help": help}
    if label is not None:
        meta["label"] = label
    if range is not None:
        meta["range"] = range
    if choices is not None:
        meta["choices"] = choices
    if not flag:
        meta["flag"] = False
    if isinstance(default, (list, dict)):
        value = default
        return field(default_factory=lambda: type(value)(value), metadata=meta)
    return field(default=default, metadata=meta)


def _flag_name(name: str) -> str:
    return "--" + name.replace("_", "-")


def check_fields(cfg: Any) -> None:
    """Check every field of ``cfg`` that declares a ``range`` or ``choices`` (None is allowed:
    it means "the default"). Errors name the key, its flag, the value and what is allowed."""
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if value is None:
            continue
        values = value if isinstance(value, (list, tuple)) else [value]
        choices = f.metadata.get("choices")
        if choices is not None:
            label = f.metadata.get("label", f.name)
            for v in values:
                check_choice(label, v, choices())
        bounds = f.metadata.get("range")
        if bounds is not None:
            for v in values:
                _check_range(f.name, v, *bounds)


def _check_range(name: str, value: Any, low: float, high: float) -> None:
    """Integers: ``low <= value <= high``. Numbers (float bounds): ``low < value <= high``."""
    integral = isinstance(low, int) and isinstance(high, int)
    if integral:
        ok = isinstance(value, int) and low <= value <= high
        allowed = f"an integer in [{low}, {high}]"
    else:
        ok = isinstance(value, (int, float)) and low < value <= high
        allowed = f"a number in ({low}, {high}]"
    if isinstance(value, bool) or not ok:
        raise ConfigError(f"{name} must be {allowed}, got {value!r} ({_flag_name(name)})")


# ----------------------------------------------------------------------------------- pieces


def model_names() -> list[str]:
    """The registered architectures (the choices of ``arch``, ``student``, ``pairs``)."""
    from .models import list_models

    return list_models()


def method_names() -> list[str]:
    """The registered distillation methods."""
    from .distill import list_methods

    return list_methods()


def synthetic_presets() -> list[str]:
    from .synthetic import list_presets

    return list_presets()


@dataclass(frozen=True, kw_only=True)
class DataOptions:
    """Where the images come from."""

    data: str = option("cifar100", "data source", choices=lambda: DATA_SOURCES)
    data_dir: str | None = option(None, "CIFAR-100 folder (default: $BCPD_SIM_CIFAR100)")
    download: bool = option(False, "download CIFAR-100 if missing (needs internet)")
    synthetic_preset: str = option("easy", "synthetic data preset", choices=synthetic_presets)
    num_classes: int | None = option(None, "synthetic data: classes (default 100)", range=(2, 1000))
    data_seed: int = option(
        0, "seed of the validation split / synthetic world", range=(0, MAX_SEED)
    )


@dataclass(frozen=True, kw_only=True)
class RecipeOptions:
    """A named recipe and overrides of its fields (None: the recipe's value)."""

    recipe: str = option("standard", "training recipe", choices=list_recipes)
    epochs: int | None = option(None, "override the recipe's epochs", range=(1, 100_000))
    batch_size: int | None = option(None, "override the batch size", range=(1, 65_536))
    lr: float | None = option(None, "override the base learning rate", range=(0.0, 100.0))
    val_size: int | None = option(
        None, "validation images carved from train", range=(0, MAX_IMAGES)
    )
    train_limit: int | None = option(None, "use the first N train images", range=(1, MAX_IMAGES))
    test_limit: int | None = option(None, "use the first N test images", range=(1, MAX_IMAGES))
    checkpoint_every: int | None = option(
        None, "periodic checkpoint interval in epochs (0: none)", range=(0, 100_000)
    )
    full_train: bool = option(
        False,
        "train on every training image, no validation split, and report the last epoch (the "
        "protocol of the CRD / DKD anchor tables); results are labelled full_train_last_epoch",
    )

    def make_recipe(self, **fallback: Any) -> Recipe:
        """The recipe with these overrides; ``fallback`` fills overrides left at None."""
        names = [
            f.name for f in dataclasses.fields(RecipeOptions) if f.name not in NOT_RECIPE_FIELDS
        ]
        overrides = {n: getattr(self, n) for n in names}
        for key, value in fallback.items():
            if overrides.get(key) is None:
                overrides[key] = value
        if self.full_train:
            if self.val_size:
                raise ConfigError(
                    f"full_train uses no validation split; val_size must be 0 or unset, got "
                    f"{self.val_size} (--val-size)"
                )
            overrides["val_size"] = 0
        return get_recipe(self.recipe, **overrides)


@dataclass(frozen=True, kw_only=True)
class RunOptions:
    """How one run executes (no effect on its results except through ``augment``)."""

    augment: bool | None = option(None, "crop + flip augmentation (default: the data's)")
    compile: bool | None = option(None, "torch.compile on CUDA (default: the recipe's)")
    device: str = option("auto", "auto, cpu or cuda[:N]")
    tensorboard: bool = option(
        False,
        "also write TensorBoard event files beside metrics.csv "
        "(needs the optional tensorboard package: pip install 'bcpd-sim[tensorboard]')",
    )


# ------------------------------------------------------------------------------ command line


def add_config_flags(
    parser: argparse.ArgumentParser, cls: type, *, exclude: Iterable[str] = ()
) -> None:
    """``--config``, ``--set``, ``--print-config`` and one flag per field of ``cls``."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    skip = set(exclude) | {n for n, f in fields.items() if not f.metadata.get("flag", True)}
    generic.add_config_arguments(parser)
    before = len(parser._actions)
    generic.add_field_arguments(parser, cls, exclude=skip)
    for action in parser._actions[before:]:  # readable help: NAME, the config's own default
        f = fields[action.dest.removeprefix("cfg__")]
        if action.nargs != 0:
            action.metavar = f.name.upper()
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        shown = f"; default {default}" if default not in (None, "", [], {}) else ""
        action.help = f"{action.help}{shown}".replace("%", "%%")
        action.default = argparse.SUPPRESS  # not given: absent (the config's default applies)


def config_from_args(
    cls: type[T], args: argparse.Namespace, extra: Mapping[str, Any] | None = None
) -> T:
    """The validated config: defaults, then ``--config`` file, then flags (``extra`` for flags
    not derived from fields), then ``--set`` overrides."""
    flags = generic.flag_values(args, cls)
    flags.update({k: v for k, v in (extra or {}).items() if v is not None})
    return generic.load(cls, file=args.config, flags=flags, overrides=args.overrides)


def print_config(cfg: Any) -> None:
    """Print ``cfg`` as TOML (what ``--print-config`` shows)."""
    print(generic.to_toml(cfg), end="")


def run_command(
    cls: type[T],
    args: argparse.Namespace,
    run: Callable[[T], R],
    report: Callable[[T, R], None],
    *,
    extra: Mapping[str, Any] | None = None,
    lock: bool = True,
) -> int:
    """A config command's ``run``: the config from ``args`` (only printed with
    ``--print-config``), ``run(config)`` holding the lock of ``config.out`` (with ``lock``), and
    ``report(config, result)`` on the main process; exit code 0."""
    from .. import distributed

    config = config_from_args(cls, args, extra)
    if args.print_config:
        print_config(config)
        return 0
    # One writer at a time; under torchrun rank 0 holds the lock and reports.
    with distributed.main_process_lock(config.out) if lock else contextlib.nullcontext():
        result = run(config)
    if distributed.is_main_process():
        report(config, result)
    return 0


def fields_of(cfg: Any, piece: type) -> dict[str, Any]:
    """The values of the fields ``cfg`` shares with ``piece`` (a piece class or a config)."""
    return {f.name: getattr(cfg, f.name) for f in dataclasses.fields(piece)}
