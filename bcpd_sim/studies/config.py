"""Study configs: a dataclass of settings with named presets, loaded by :mod:`bcpd_sim.config`.

A preset is a dict of field values; the layers are the class defaults, the preset, a TOML file and
``--set key=value`` overrides, every key and type checked, then the config's ``validate()``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

from .. import config as generic
from ..errors import ConfigError

C = TypeVar("C")


def load_study_config(
    cls: type[C],
    presets: dict[str, dict[str, Any]],
    preset: str,
    *,
    file: str | Path | None = None,
    overrides: list[str] | None = None,
    flags: dict[str, Any] | None = None,
) -> C:
    """``cls`` defaults, then ``presets[preset]``, ``file``, ``flags`` (values from command-line
    options), then ``overrides``; validated."""
    if preset not in presets:
        raise ConfigError(f"unknown preset {preset!r}; valid: {', '.join(sorted(presets))}")
    layer = {**presets[preset], "preset": preset}
    return generic.load(
        cls, layers=[("preset", layer)], file=file, flags=flags, overrides=overrides or []
    )


def to_toml(cfg: Any) -> str:
    """The config as TOML (what ``--print-config`` shows and runs record)."""
    return generic.to_toml(cfg)
