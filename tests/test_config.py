"""The generic config machinery: layers, type checks at the boundary, TOML files and flags."""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest

from bcpd_sim import config as C
from bcpd_sim.errors import ConfigError


@dataclass(frozen=True)
class Inner:
    n: int = field(default=5, metadata={"help": "how many"})
    widths: list[list[int]] = field(default_factory=lambda: [[8, 8]])
    rate: float = 0.5
    name: Literal["a", "b"] = "a"
    betas: tuple[float, ...] = (0.9, 0.99)
    limit: int | None = None
    options: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Outer:
    inner: Inner = field(default_factory=Inner)
    seed: int = 0
    enabled: bool = True

    def validate(self) -> None:
        if self.seed < 0:
            raise ConfigError(f"seed must be >= 0, got {self.seed}")


def test_layers_apply_in_order_and_values_are_coerced():
    cfg = C.load(
        Outer,
        layers=[("preset", {"seed": 3, "inner": {"n": 7}})],
        flags={"inner": {"rate": 2}},
        overrides=["inner.n=9", "inner.betas=[0.5, 1]", "inner.options={t = 2}"],
    )
    assert cfg.seed == 3 and cfg.inner.n == 9
    assert cfg.inner.rate == 2.0 and isinstance(cfg.inner.rate, float)
    assert cfg.inner.betas == (0.5, 1.0) and cfg.inner.options == {"t": 2.0}
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.seed = 1  # type: ignore[misc]


def test_toml_round_trip(tmp_path):
    cfg = C.load(Outer, overrides=["inner.limit=4", "inner.name='b'", "inner.options={x = 1.5}"])
    path = tmp_path / "c.toml"
    path.write_text(C.to_toml(cfg))
    assert C.load(Outer, file=path) == cfg
    # None is left out and reads back as the default
    assert "limit" not in C.to_toml(Outer())


@pytest.mark.parametrize(
    "override, fragment",
    [
        ("inner.widths=[32]", "inner.widths[0] must be a list of integers, got 32"),
        ("inner.n=2.5", "inner.n must be an integer, got 2.5"),
        ("inner.n=true", "inner.n must be an integer, got True"),
        ("inner.rate='fast'", "inner.rate must be a number, got 'fast'"),
        ("enabled=1", "enabled must be true or false, got 1"),
        ("inner.name='c'", "unknown inner.name 'c'; valid: a, b"),
        ("inner.limit='x'", "inner.limit must be an integer or none"),
        ("inner.options={t = 'x'}", "inner.options.t must be a number"),
        ("inner.bogus=1", "unknown config key 'inner.bogus' (from --set); valid: inner.n,"),
        ("inner=1", "config key 'inner' is a section"),
        ("seed=-1", "seed must be >= 0, got -1"),
        ("noequals", "--set expects key=value"),
    ],
)
def test_bad_values_name_the_key(override, fragment):
    with pytest.raises(ConfigError) as err:
        C.load(Outer, overrides=[override])
    assert fragment in str(err.value)


def _unreadable(tmp_path: Path, monkeypatch) -> Path:
    path = tmp_path / "locked.toml"
    path.write_text("seed = 1\n")

    def deny(self):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "read_bytes", deny)
    return path


@pytest.mark.parametrize(
    "make, fragment",
    [
        (lambda tmp, mp: tmp / "missing.toml", "does not exist"),
        (lambda tmp, mp: tmp, "is a directory"),
        (lambda tmp, mp: Path("/dev/null"), "is empty"),
        (lambda tmp, mp: _write(tmp / "e.toml", b"  \n"), "is empty"),
        (lambda tmp, mp: _write(tmp / "b.toml", b"\xff\xfe\x00x"), "is not UTF-8 text"),
        (lambda tmp, mp: _write(tmp / "m.toml", b"[inner\n"), "is not valid TOML"),
        (_unreadable, "cannot be read: permission denied"),
    ],
)
def test_config_file_errors_are_one_line_naming_the_path(tmp_path, monkeypatch, make, fragment):
    path = make(tmp_path, monkeypatch)
    with pytest.raises(ConfigError) as err:
        C.load(Outer, file=path)
    message = str(err.value)
    assert str(path) in message and fragment in message
    assert "\n" not in message


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_unknown_key_in_file_names_the_file(tmp_path):
    path = _write(tmp_path / "c.toml", b"[inner]\nwidth = 3\n")
    with pytest.raises(ConfigError, match=r"unknown config key 'inner.width' \(from .*c.toml\)"):
        C.load(Outer, file=path)


def test_flags_are_derived_from_fields():
    parser = argparse.ArgumentParser()
    C.add_config_arguments(parser, presets=["x", "y"], default_preset="x")
    C.add_field_arguments(parser, Outer, exclude=["inner.rate"])
    args = parser.parse_args(
        ["--inner-n", "4", "--inner-widths", "3", "--no-enabled", "--inner-name", "b"]
    )
    assert args.preset == "x" and args.overrides == [] and not args.print_config
    flags = C.flag_values(args, Outer)
    assert flags == {"inner": {"n": 4, "widths": [3], "name": "b"}, "enabled": False}
    # a list of lists given as a flat list is refused by the same type check as --set
    with pytest.raises(ConfigError, match=r"inner.widths\[0\] must be a list"):
        C.load(Outer, flags=flags)
    assert "--inner-rate" not in parser.format_help()
    assert "how many" in parser.format_help()


@dataclass(frozen=True)
class WithPreset:
    preset: str = "a"
    inner: Inner = field(default_factory=Inner)


def test_load_preset_records_the_preset_and_ignores_the_files(tmp_path):
    presets = {"a": {}, "b": {"inner": {"n": 2}}}
    path = _write(tmp_path / "c.toml", b'preset = "a"\n[inner]\nrate = 1.5\n')
    cfg = C.load_preset(WithPreset, presets, "b", file=path, overrides=["inner.name='b'"])
    assert (cfg.preset, cfg.inner.n, cfg.inner.rate, cfg.inner.name) == ("b", 2, 1.5, "b")
    assert C.load_preset(Outer, {"x": {"seed": 4}}, "x").seed == 4  # no preset field: fine
    with pytest.raises(ConfigError, match="unknown preset 'c'; valid: a, b"):
        C.load_preset(WithPreset, presets, "c")
