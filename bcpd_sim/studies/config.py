"""Flat study configs: a dataclass of settings, named presets, a TOML file and ``--set`` overrides.

A thin layer over :mod:`bcpd_sim.config` (the loader every command shares): every key and value
type is checked, and every error names the key or the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

from .. import config as generic

C = TypeVar("C")


def load_study_config(
    cls: type[C],
    presets: dict[str, dict[str, Any]],
    preset: str,
    *,
    file: str | Path | None = None,
    overrides: list[str] | None = None,
) -> C:
    """``cls()`` updated by ``presets[preset]``, then a TOML file, then ``key=value`` items.

    The result's ``validate()`` (if it has one) is called before it is returned.
    """
    return generic.load_preset(cls, presets, preset, file=file, overrides=overrides or [])


def to_toml(cfg: Any) -> str:
    """The config as TOML (what ``--print-config`` shows and runs record)."""
    return generic.to_toml(cfg)
