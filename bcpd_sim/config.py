"""Run configs as nested frozen dataclasses, read from presets, TOML files and ``--set`` overrides.

A command's config is a frozen dataclass whose fields are plain values (``bool``, ``int``,
``float``, ``str``, ``Literal[...]``, ``list[...]`` / ``tuple[..., ...]`` of those, ``dict[str,
...]``, ``X | None``) or further dataclasses (sections, written as TOML tables). This module turns
such a class into a loader with one set of error messages for every command:

- :func:`load` (or :func:`load_preset` for a command with named presets) builds a config from the class defaults, then layers (a preset dict, a TOML file,
  values from command-line flags, ``--set key=value`` overrides with TOML-literal values), checks
  every key and the type of every value (naming the dotted key), and finally calls the config's
  ``validate()`` method if it has one. Nothing is run before a config is fully valid, so a
  ``--print-config`` that succeeds means the run accepts the config.
- :func:`to_toml` writes a config; :func:`read_toml` reads a file with one-line errors naming the
  path and the cause (missing, a directory, empty, not UTF-8, unreadable, malformed).
- :func:`add_config_arguments` adds ``--config``, ``--set`` and ``--print-config`` (and
  ``--preset``) to a parser; :func:`add_field_arguments` derives flags from a dataclass's fields
  and :func:`flag_values` collects the ones given, so a new field is written once.

Example::

    @dataclass(frozen=True)
    class Data:
        n_train: int = field(default=5000, metadata={"help": "training points"})
        widths: list[int] = field(default_factory=lambda: [128, 128])

    @dataclass(frozen=True)
    class Run:
        data: Data = field(default_factory=Data)
        seed: int = 0

        def validate(self) -> None:
            check_int("seed", self.seed, minimum=0)

    cfg = load(Run, layers=[("preset", {"seed": 3})], overrides=["data.n_train=100"])
    print(to_toml(cfg))  # seed = 3 / [data] / n_train = 100 / widths = [128, 128]
    load(Run, overrides=["data.widths=4"])  # ConfigError: data.widths must be a list, got 4
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import sys
import types
import typing
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from .errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

T = TypeVar("T")

__all__ = [
    "add_config_arguments",
    "add_field_arguments",
    "flag_values",
    "from_dict",
    "load",
    "load_preset",
    "merge",
    "nest",
    "parse_override",
    "read_toml",
    "to_dict",
    "to_toml",
    "tomllib",
]


# --------------------------------------------------------------------------- reading files
def read_toml(path: str | Path, *, what: str = "config file") -> dict[str, Any]:
    """Parse a TOML file; every failure is a one-line ConfigError naming the path and the cause."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{what} {path} does not exist")
    if path.is_dir():
        raise ConfigError(f"{what} {path} is a directory, not a TOML file")
    try:
        data = path.read_bytes()
    except PermissionError:
        raise ConfigError(f"{what} {path} cannot be read: permission denied") from None
    except OSError as exc:
        raise ConfigError(f"{what} {path} cannot be read: {exc.strerror or exc}") from None
    if not data.strip():
        raise ConfigError(f"{what} {path} is empty; expected TOML keys such as `[section]`")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{what} {path} is not UTF-8 text (byte {data[exc.start]:#04x} at offset {exc.start}); "
            "expected a TOML file"
        ) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{what} {path} is not valid TOML: {exc}") from None


# --------------------------------------------------------------------------- merging layers
def parse_override(item: str) -> tuple[str, Any]:
    """``a.b=value`` -> ("a.b", parsed value); values are TOML literals, else plain strings."""
    if "=" not in item:
        raise ConfigError(f"--set expects key=value, got {item!r}")
    key, text = (s.strip() for s in item.split("=", 1))
    if not key:
        raise ConfigError(f"--set expects key=value, got {item!r}")
    try:
        value = tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        value = text
    return key, value


def nest(key: str, value: Any) -> dict[str, Any]:
    """``nest("a.b", 1) == {"a": {"b": 1}}``."""
    out: dict[str, Any] = value
    for part in reversed(key.split(".")):
        out = {part: out}
    return out


def merge(base: dict, update: Mapping, *, where: str, prefix: str = "") -> None:
    """Recursively merge ``update`` into ``base`` in place; unknown keys are errors naming the key.

    A key is a section when its value in ``base`` is a dict of a dataclass's fields; anything
    else (including a dict-valued option field) is replaced as a whole.
    """
    for key, value in update.items():
        dotted = f"{prefix}{key}"
        if key not in base:
            valid = ", ".join(f"{prefix}{k}" for k in base)
            raise ConfigError(f"unknown config key {dotted!r} (from {where}); valid: {valid}")
        if isinstance(base[key], _Section):
            if not isinstance(value, Mapping):
                raise ConfigError(
                    f"config key {dotted!r} is a section; set its fields, e.g. {dotted}.<field>"
                )
            merge(base[key], value, where=where, prefix=f"{dotted}.")
        else:
            base[key] = value


class _Section(dict):
    """A dict of a nested dataclass's fields (distinguishes sections from dict-valued fields)."""


def to_dict(cfg: Any) -> dict[str, Any]:
    """A config as nested plain dicts (``dataclasses.asdict``)."""
    return dataclasses.asdict(cfg)


def _raw(cls: type) -> _Section:
    """The class defaults as nested dicts, sections marked."""
    return _sections(cls, to_dict(cls()))


def _sections(cls: type, values: dict[str, Any]) -> _Section:
    hints = typing.get_type_hints(cls)
    out = _Section()
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        v = values[f.name]
        out[f.name] = _sections(tp, v) if _is_dataclass_type(tp) and isinstance(v, dict) else v
    return out


def _is_dataclass_type(tp: Any) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


# --------------------------------------------------------------------------- type checks
def _type_name(tp: Any) -> str:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is bool:
        return "true or false"
    if tp is int:
        return "an integer"
    if tp is float:
        return "a number"
    if tp is str:
        return "a string"
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin in (list, tuple, Sequence):
        return f"a list of {_plural(args[0]) if args else 'values'}"
    if origin in (dict, Mapping):
        return "a table"
    if origin in (typing.Union, types.UnionType):
        return " or ".join("none" if a is type(None) else _type_name(a) for a in args)
    if _is_dataclass_type(tp):
        return "a section"
    return getattr(tp, "__name__", str(tp))


def _plural(tp: Any) -> str:
    name = _type_name(tp)
    for single, many in (
        ("an integer", "integers"),
        ("a number", "numbers"),
        ("a string", "strings"),
        ("a list of", "lists of"),
        ("true or false", "booleans"),
    ):
        if name.startswith(single):
            return many + name[len(single) :]
    return name


def check_value(key: str, value: Any, tp: Any) -> Any:
    """Check ``value`` against the annotation ``tp``; return it coerced (int -> float, list ->
    tuple where annotated). The error names ``key``, the value and the expected type."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    bad = ConfigError(f"{key} must be {_type_name(tp)}, got {value!r}")
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for arm in args:
            if arm is type(None):
                continue
            try:
                return check_value(key, value, arm)
            except ConfigError:
                pass
        raise bad
    if _is_dataclass_type(tp):
        if isinstance(tp, type) and isinstance(value, tp):
            return value
        if not isinstance(value, Mapping):
            raise bad
        return from_dict(tp, value, prefix=f"{key}.")
    if tp is bool:
        if not isinstance(value, bool):
            raise bad
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise bad
        return value
    if origin is typing.Literal:
        if value not in args or isinstance(value, bool) != any(isinstance(a, bool) for a in args):
            raise ConfigError(f"unknown {key} {value!r}; valid: {', '.join(str(a) for a in args)}")
        return value
    if origin in (list, tuple, Sequence):
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
            raise bad
        item = args[0] if args else Any
        items = [check_value(f"{key}[{i}]", v, item) for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin in (dict, Mapping):
        if not isinstance(value, Mapping):
            raise bad
        vt = args[1] if len(args) == 2 else Any
        return {str(k): check_value(f"{key}.{k}", v, vt) for k, v in value.items()}
    if isinstance(tp, type) and not isinstance(value, tp):
        raise bad
    return value


def from_dict(cls: type[T], raw: Mapping[str, Any], *, prefix: str = "") -> T:
    """Build ``cls`` from nested dicts; unknown keys and wrong types are ConfigErrors naming the
    dotted key. Missing keys take the class defaults. Does not call ``validate()``."""
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = [k for k in raw if k not in names]
    if unknown:
        valid = ", ".join(f"{prefix}{n}" for n in names)
        raise ConfigError(f"unknown config key {prefix}{unknown[0]!r}; valid: {valid}")
    values = {k: check_value(f"{prefix}{k}", v, hints[k]) for k, v in raw.items()}
    return cls(**values)


# --------------------------------------------------------------------------- the loader
def load(
    cls: type[T],
    *,
    layers: Iterable[tuple[str, Mapping[str, Any]]] = (),
    file: str | Path | None = None,
    flags: Mapping[str, Any] | None = None,
    overrides: Iterable[str] = (),
) -> T:
    """The class defaults, then each ``(where, dict)`` layer (e.g. a preset), then the TOML
    ``file``, then ``flags`` (nested values from command-line options), then ``--set`` overrides.

    Every key and value type is checked, then ``cfg.validate()`` runs when the class defines it.
    """
    raw = _raw(cls)
    for where, layer in layers:
        merge(raw, layer, where=where)
    if file is not None:
        merge(raw, read_toml(file), where=str(file))
    if flags:
        merge(raw, flags, where="command-line flags")
    for item in overrides:
        key, value = parse_override(item)
        merge(raw, nest(key, value), where="--set")
    cfg = from_dict(cls, raw)
    validate = getattr(cfg, "validate", None)
    if callable(validate):
        validate()
    return cfg


def load_preset(
    cls: type[T],
    presets: Mapping[str, Mapping[str, Any]],
    preset: str,
    *,
    file: str | Path | None = None,
    overrides: Iterable[str] = (),
) -> T:
    """:func:`load` for a command with named presets: the preset's dict (and its name in the
    config's ``preset`` field, when it has one), then the TOML ``file`` (whose own ``preset`` key
    is ignored: the preset is chosen on the command line), then the ``--set`` overrides."""
    if preset not in presets:
        raise ConfigError(f"unknown preset {preset!r}; valid: {', '.join(sorted(presets))}")
    base = copy.deepcopy(dict(presets[preset]))
    if "preset" in {f.name for f in dataclasses.fields(cls)}:  # type: ignore[arg-type]
        base = {"preset": preset, **base}
    layers: list[tuple[str, Mapping[str, Any]]] = [("preset", base)]
    if file is not None:
        data = read_toml(file)
        data.pop("preset", None)
        layers.append((str(file), data))
    return load(cls, layers=layers, overrides=overrides)


# --------------------------------------------------------------------------- writing
def _literal(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_literal(x) for x in v) + "]"
    if isinstance(v, Mapping):
        return "{" + ", ".join(f"{k} = {_literal(x)}" for k, x in v.items()) + "}"
    return repr(v)


def to_toml(cfg: Any) -> str:
    """A config as TOML: top-level fields first, then one ``[table]`` per section (dotted names
    for deeper ones). Fields set to ``None`` are left out (they read back as their default)."""

    def scalars(obj: Any) -> list[str]:
        return [
            f"{f.name} = {_literal(_plain(getattr(obj, f.name)))}"
            for f in dataclasses.fields(obj)
            if getattr(obj, f.name) is not None
            and not dataclasses.is_dataclass(getattr(obj, f.name))
        ]

    def tables(obj: Any, prefix: str) -> list[str]:
        out = []
        for f in dataclasses.fields(obj):
            v = getattr(obj, f.name)
            if dataclasses.is_dataclass(v):
                out.append(f"\n[{prefix}{f.name}]\n" + "\n".join(scalars(v)))
                out += tables(v, f"{prefix}{f.name}.")
        return out

    return "\n".join(scalars(cfg)) + "\n" + "\n".join(tables(cfg, "")) + "\n"


def _plain(v: Any) -> Any:
    if dataclasses.is_dataclass(v):
        return to_dict(v)
    return v


# --------------------------------------------------------------------------- command line
def add_config_arguments(
    parser: argparse.ArgumentParser,
    *,
    presets: Sequence[str] | None = None,
    default_preset: str | None = None,
) -> None:
    """Add ``--config FILE``, ``--set KEY=VALUE`` (repeatable) and ``--print-config`` (and
    ``--preset`` when ``presets`` are given) to a command's parser."""
    if presets is not None:
        parser.add_argument(
            "--preset", default=default_preset, choices=list(presets), help="settings to start from"
        )
    parser.add_argument("--config", help="a TOML file whose keys override the defaults")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one key with a TOML literal, e.g. trained.seeds=4 (repeatable)",
    )
    parser.add_argument(
        "--print-config",
        action="store_true",
        help="print the resolved (validated) config as TOML and exit",
    )


def _flag(prefix: str, name: str) -> str:
    return "--" + (prefix + name).replace("_", "-").replace(".", "-")


def _dest(prefix: str, name: str) -> str:
    return "cfg__" + (prefix + name).replace(".", "__")


def add_field_arguments(
    parser: argparse.ArgumentParser | Any,
    cls: type,
    *,
    prefix: str = "",
    exclude: Iterable[str] = (),
) -> None:
    """Add one ``--field-name`` flag per field of ``cls`` (sections recurse as
    ``--section-field``); help comes from ``field(metadata={"help": ...})``.

    Flags default to ``None`` (not given), so :func:`flag_values` returns only what the user set
    and the config's own defaults stay in one place. Lists take several values
    (``--widths 64 64``); booleans are ``--name`` / ``--no-name``. ``exclude`` names dotted keys
    to leave out.
    """
    skip = set(exclude)
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        key = prefix + f.name
        if key in skip:
            continue
        tp = _strip_optional(hints[f.name])
        if _is_dataclass_type(tp):
            add_field_arguments(parser, tp, prefix=f"{key}.", exclude=skip)
            continue
        kwargs: dict[str, Any] = {"dest": _dest(prefix, f.name), "default": None}
        kwargs["help"] = f.metadata.get("help", f"config key {key}")
        origin, args = typing.get_origin(tp), typing.get_args(tp)
        if tp is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        elif origin in (list, tuple, Sequence):
            kwargs["nargs"] = "*"
            kwargs["type"] = _scalar_parser(args[0] if args else str)
        elif origin is typing.Literal:
            kwargs["choices"] = list(args)
            kwargs["type"] = type(args[0])
        elif origin in (dict, Mapping):
            continue  # tables are set with --set key.option=value or a --config file
        else:
            kwargs["type"] = _scalar_parser(tp)
        parser.add_argument(_flag(prefix, f.name), **kwargs)


def _strip_optional(tp: Any) -> Any:
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        arms = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(arms) == 1:
            return arms[0]
    return tp


def _scalar_parser(tp: Any):
    if tp in (int, float, str):
        return tp
    return _toml_value


def _toml_value(text: str) -> Any:
    """A flag value read as a TOML literal (``[64, 64]``, ``true``), else the plain string."""
    return parse_override(f"v={text}")[1]


def flag_values(args: argparse.Namespace, cls: type, *, prefix: str = "") -> dict[str, Any]:
    """The fields of ``cls`` given as flags (see :func:`add_field_arguments`), as nested dicts
    ready for ``load(..., flags=...)``; flags not given are left out."""
    out: dict[str, Any] = {}
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        tp = _strip_optional(hints[f.name])
        if _is_dataclass_type(tp):
            sub = flag_values(args, tp, prefix=f"{prefix}{f.name}.")
            if sub:
                out[f.name] = sub
            continue
        value = getattr(args, _dest(prefix, f.name), None)
        if value is not None:
            out[f.name] = value
    return out
