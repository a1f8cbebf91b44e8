"""Flat study configs: a dataclass of settings, named presets, a TOML file and ``--set`` overrides.

Reuses the Figure-1 config's TOML parsing, merging and type checks; every error names the key.
"""

from __future__ import annotations

import copy
import sys
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any, TypeVar

from ..errors import ConfigError
from ..figure1.config import _coerce, dict_to_toml, merge, nest, parse_override

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

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
    if preset not in presets:
        raise ConfigError(f"unknown preset {preset!r}; valid: {', '.join(sorted(presets))}")
    defaults = cls()
    raw = asdict(defaults)  # type: ignore[call-overload]
    merge(raw, copy.deepcopy(presets[preset]), where="preset")
    if file is not None:
        path = Path(file)
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist")
        try:
            data = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
        merge(raw, data, where=str(path))
    for item in overrides or []:
        key, value = parse_override(item)
        merge(raw, nest(key, value), where="--set")
    raw["preset"] = preset
    values = {
        f.name: _coerce(f.name, raw[f.name], getattr(defaults, f.name))
        for f in fields(cls)  # type: ignore[arg-type]
    }
    cfg = cls(**values)
    if hasattr(cfg, "validate"):
        cfg.validate()
    return cfg


def to_toml(cfg: Any) -> str:
    """The config as TOML (what ``--print-config`` shows and runs record)."""
    return dict_to_toml(asdict(cfg))
