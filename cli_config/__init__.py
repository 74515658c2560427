"""One way to configure every command: typed dataclasses -> flags, config files, checks, a record.

A command's settings are a plain dataclass (nested dataclasses group them). Each field is declared with
`opt(default, help, check=..., parse=..., choices=...)`; from that single declaration come

- the flag `--field-name` with its --help text and default (`add_arguments`); a nested dataclass's fields
  become flags of their own argument group, unless it is declared `opt(..., flags=False)` (settable from a
  file or an override only);
- `--config FILE` (TOML, YAML or JSON, nested tables as the dataclasses nest), which the flags override;
- the checks, run before any work (`resolve`): each field's `check`, then a dataclass's own `validate()`
  for rules joining several fields. A failure is the command's one user error: one line, exit 2;
- the record of the resolved settings (`to_toml`, `write_record`): `config.toml` in the output folder,
  which reproduces the run when passed back with --config.

TOML has no null: in a file, `false` given to a setting that may be None (and is not a bool) means None
("off"); the record writes None that way. Standard library only: `corpus` (no torch), `train` and `eval`
all use it.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import types
import typing
from pathlib import Path
from typing import Any, Callable

from safe_output import UserError, atomic_write

RECORD = "config.toml"  # the resolved settings, in every output folder


# ----------------------------------------------------------------------------- declaring settings
def opt(default: Any = dataclasses.MISSING, help: str = "", *, check: Callable | None = None,
        parse: Callable | None = None, choices: tuple | None = None, required: bool = False, flags: bool = True,
        metavar: str | None = None, nargs: str | None = None, positional: bool = False,
        default_factory: Callable | None = None):
    """A dataclass field with its --help text. `check(value)` raises ValueError saying what is wrong;
    `parse(value)` turns a flag's or file's value into the setting (or raises ValueError); `required`: must
    be given by a flag or the config file; `flags=False`: a nested group settable from files and overrides
    only; `positional`: given without a flag name (`python -m eval perplexity MODEL_DIR`)."""
    meta = {"help": help, "check": check, "parse": parse, "choices": choices, "required": required, "flags": flags,
            "metavar": metavar, "nargs": nargs, "positional": positional}
    if default_factory is not None:
        return dataclasses.field(default_factory=default_factory, metadata=meta)
    if isinstance(default, (list, dict)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


class Check:
    """A field check that also knows values it refuses (the option-walking test tries them)."""

    def __init__(self, test: Callable[[Any], bool], says: str, refused: tuple):
        self.test, self.says, self.refused = test, says, refused

    def __call__(self, value) -> None:
        if value is not None and not self.test(value):
            raise ValueError(f"must be {self.says} (got {value!r})")


def at_least(low: float) -> Check:
    return Check(lambda v: v >= low, f">= {low}", (low - 1,))


def positive() -> Check:
    return Check(lambda v: v > 0, "> 0", (0, -1))


def between(low: float, high: float, *, low_open: bool = False, high_open: bool = False) -> Check:
    def test(v):
        return (v > low if low_open else v >= low) and (v < high if high_open else v <= high)
    says = f"{'>' if low_open else '>='} {low} and {'<' if high_open else '<='} {high}"
    return Check(test, says, (low if low_open else low - 1, high if high_open else high + 1))


def non_empty() -> Check:
    return Check(lambda v: bool(v) and all(str(x).strip() for x in (v if isinstance(v, list) else [v])),
                 "non-empty", ("",))


# ----------------------------------------------------------------------------- flags
class OneLineParser(argparse.ArgumentParser):
    """argparse with its mistakes on one line (`prog: error: ...`, exit 2), as every other user error."""

    def error(self, message: str):
        print(f"{self.prog}: error: {' '.join(message.split())}", file=sys.stderr)
        sys.exit(2)


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """The module docstring as written; options as generated (their help already shows the default)."""


def new_parser(prog: str, description: str | None = None) -> OneLineParser:
    return OneLineParser(prog=prog, description=description, formatter_class=HelpFormatter)


def flag_name(name: str) -> str:
    return "--" + name.replace("_", "-")


def shown(value) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if value is None:
        return "none"
    if isinstance(value, list):
        return " ".join(map(str, value)) if value else "none"
    if value == "":
        return "none"
    return str(value)


def field_default(f: dataclasses.Field):
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default


def hints(cls) -> dict:
    return typing.get_type_hints(cls)


def unwrap_optional(tp) -> tuple[Any, bool]:
    """`int | None` -> (int, True)."""
    args = typing.get_args(tp)
    if (typing.get_origin(tp) in (typing.Union, types.UnionType)) and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        return rest[0], True
    return tp, False


def add_arguments(parser: argparse.ArgumentParser, cls, *, config: bool = True) -> None:
    """Flags for every field of `cls` (nested dataclasses: an argument group each), plus --config FILE."""
    if config:
        parser.add_argument("--config", metavar="FILE", default=argparse.SUPPRESS,
                            help=f"settings file (TOML, YAML or JSON, laid out as the {RECORD} every run writes into "
                                 "its output folder); flags given as well override it (default: none)")
    add_fields(parser, cls, prefix="")


def add_fields(parser, cls, prefix: str) -> None:
    types_ = hints(cls)
    for f in sorted(dataclasses.fields(cls), key=lambda f: not f.metadata.get("required")):  # required ones first
        tp, optional = unwrap_optional(types_[f.name])
        meta = f.metadata
        if dataclasses.is_dataclass(tp):
            if meta.get("flags", True):
                group = parser.add_argument_group(f.name, meta.get("help") or None)
                add_fields(group, tp, prefix=f"{prefix}{f.name}.")
            continue
        if not meta.get("flags", True):
            continue
        default = field_default(f)
        help_text = meta.get("help") or ""
        if meta.get("required"):
            help_text += " (required: a flag or the config file)"
        elif "(default:" not in help_text:
            help_text += f" (default: {shown(default)})"
        dest = prefix + f.name
        kwargs: dict = {"dest": dest, "default": argparse.SUPPRESS, "help": help_text.replace("%", "%%")}
        origin = typing.get_origin(tp)
        if tp is bool:
            parser.add_argument(flag_name(f.name), action=argparse.BooleanOptionalAction, **kwargs)
            continue
        if origin is list:
            item = typing.get_args(tp)[0] if typing.get_args(tp) else str
            kwargs.update(nargs=meta.get("nargs") or "+", type=item)
        elif origin is dict or tp is dict:
            continue  # free-form groups (a filter's arguments): files and overrides only
        else:
            kwargs["type"] = tp
        if meta.get("choices"):
            kwargs["choices"] = meta["choices"]
        kwargs["metavar"] = meta.get("metavar") or (None if meta.get("choices") else f.name.upper())
        if meta.get("positional"):  # optional on the command line: the config file may give it
            kwargs.update(nargs="?" if origin is not list else "*")
            action = parser.add_argument(kwargs.pop("dest"), **kwargs)
        else:
            action = parser.add_argument(flag_name(f.name), **kwargs)
        action.field_check = meta.get("check")  # for the option-walking test


# ----------------------------------------------------------------------------- files
def load_file(path: str | Path, error: type[UserError] = UserError) -> dict:
    """A settings file as a dict: .toml (tomllib), .yaml/.yml (PyYAML), .json."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise error(f"--config {path}: cannot read it ({e.strerror or e})") from None
    try:
        if path.suffix == ".toml":
            import tomllib

            data = tomllib.loads(raw.decode("utf-8"))
        elif path.suffix in (".yaml", ".yml"):
            try:
                import yaml
            except ImportError:
                raise error(f"--config {path}: YAML needs PyYAML (pip install pyyaml); or write it as TOML") from None
            data = yaml.safe_load(raw.decode("utf-8")) or {}
        elif path.suffix == ".json":
            data = json.loads(raw.decode("utf-8"))
        else:
            raise error(f"--config {path}: expected a .toml, .yaml, .yml or .json file")
    except UserError:
        raise
    except Exception as e:  # a syntax error of any of the three formats, or bytes that are not UTF-8
        raise error(f"--config {path}: not valid {path.suffix[1:].upper()}: {e}") from None
    if not isinstance(data, dict):
        raise error(f"--config {path}: expected a table of settings at the top")
    return data


def merge(base: dict, top: dict) -> dict:
    """`top` over `base`, table by table."""
    out = dict(base)
    for k, v in top.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def field_paths(cls, prefix: str = "") -> set[str]:
    """"group.name" of every setting of `cls` (a flag's dest)."""
    out = set()
    types_ = hints(cls)
    for f in dataclasses.fields(cls):
        tp, _ = unwrap_optional(types_[f.name])
        if dataclasses.is_dataclass(tp):
            out |= field_paths(tp, f"{prefix}{f.name}.")
        else:
            out.add(prefix + f.name)
    return out


def flags_given(cls, args: argparse.Namespace) -> dict:
    """The settings given as flags (dests "group.name"), as nested tables; other arguments are left out."""
    out: dict = {}
    known = field_paths(cls)
    for dest, value in vars(args).items():
        if dest not in known:
            continue
        *groups, name = dest.split(".")
        table = out
        for g in groups:
            table = table.setdefault(g, {})
        table[name] = value
    return out


# ----------------------------------------------------------------------------- building and checking
def build(cls, data: dict, error: type[UserError] = UserError, where: str = "", _path: str = "", _flagged: bool = True):
    """An instance of `cls` from nested tables; unknown keys and wrong types are user errors, named by the
    file (`where`) and the setting's path there, or by the flag when no file was given."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = [k for k in data if k not in fields]
    if unknown:
        raise error(f"{where or 'settings'}: unknown setting {_path}{unknown[0]} (known here: {', '.join(fields)})")
    types_ = hints(cls)
    values = {}
    for name, value in data.items():
        f, key = fields[name], f"{_path}{name}"
        flagged = _flagged and f.metadata.get("flags", True)
        tp, optional = unwrap_optional(types_[name])
        if dataclasses.is_dataclass(tp):
            if optional and value in (None, False):
                values[name] = None
            elif not isinstance(value, dict):
                raise error(f"{where or 'settings'}: {key} is a group of settings: give a table")
            else:
                values[name] = build(tp, value, error, where, f"{key}.", flagged)
            continue
        label = f"{where}: {key}" if where or not flagged else flag_name(name)
        values[name] = convert(value, tp, optional, f, label, error)
    try:
        return cls(**values)
    except (TypeError, ValueError) as e:
        raise error(f"{where or 'settings'}: {e}") from None


def convert(value, tp, optional: bool, f: dataclasses.Field, label: str, error):
    parse = f.metadata.get("parse")
    if value is None or (value is False and optional and tp is not bool):
        if optional:
            return None
        raise error(f"{label} cannot be switched off (null/false); give a value")
    if parse is not None:
        try:
            return parse(value)
        except ValueError as e:
            raise error(f"{label}: {e}") from None
    origin = typing.get_origin(tp)
    ok = True
    if tp is bool:
        ok = isinstance(value, bool)
    elif tp is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif tp is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif tp is str:
        ok = isinstance(value, str)
    elif origin is list or tp is list:
        item = (typing.get_args(tp) or (str,))[0]
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            value = [value]  # one item for a list: `languages = "en"`
        ok = isinstance(value, list) and all(isinstance(v, item) for v in value)
        value = list(value) if ok else value
    elif origin is dict or tp is dict:
        ok = isinstance(value, dict)
    if not ok:
        name = getattr(tp, "__name__", str(tp))
        raise error(f"{label} = {json.dumps(value, default=str)}: expected {name}")
    return value


def check(cfg, error: type[UserError] = UserError, _prefix: str = "", _flagged: bool = True) -> None:
    """Every field's check (named by its flag), then each dataclass's own `validate()` (`check_rules`)."""
    types_ = hints(type(cfg))
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        tp, _ = unwrap_optional(types_[f.name])
        if dataclasses.is_dataclass(tp):
            if value is not None:
                check(value, error, f"{_prefix}{f.name}.", _flagged and f.metadata.get("flags", True))
            continue
        name = flag_name(f.name) if _flagged and f.metadata.get("flags", True) else f"{_prefix}{f.name}"
        if f.metadata.get("positional"):
            name = f.metadata.get("metavar") or f.name.upper()
        if f.metadata.get("required") and value in ("", None, []):
            raise error(f"{name} is required (a flag, or `{_prefix}{f.name}` in the --config file)")
        choices = f.metadata.get("choices")
        if choices and value is not None and value not in choices:
            raise error(f"{name} {shown(value)}: choose one of {', '.join(map(str, choices))}")
        test = f.metadata.get("check")
        if test is not None:
            if isinstance(value, float) and not math.isfinite(value):
                raise error(f"{name}: must be a finite number (got {value})")
            try:
                test(value)
            except ValueError as e:
                raise error(f"{name}: {e}") from None
    if not _prefix:
        check_rules(cfg, error)


def check_rules(cfg, error: type[UserError]) -> None:
    """Each dataclass's own `validate()` (rules joining several fields), groups first, once every field passed."""
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if dataclasses.is_dataclass(value):
            check_rules(value, error)
    validate = getattr(cfg, "validate", None)
    if callable(validate):
        try:
            validate()
        except ValueError as e:
            raise error(str(e)) from None


def resolve(cls, args: argparse.Namespace, error: type[UserError] = UserError, *, base: dict | None = None,
            overrides: Callable[[Any], None] | None = None):
    """The settings of one run: the dataclass defaults <- `base` (e.g. a recipe) <- the --config file <- the
    flags given <- `overrides(cfg)`; then checked. Raises `error` (one line) on any mistake."""
    data = dict(base or {})
    path = getattr(args, "config", None)
    if path:
        data = merge(data, load_file(path, error))
    data = merge(data, flags_given(cls, args))
    cfg = build(cls, data, error, where=f"--config {path}" if path else "")
    if overrides is not None:
        overrides(cfg)
    check(cfg, error)
    return cfg


# ----------------------------------------------------------------------------- the record
def to_dict(cfg) -> dict:
    return dataclasses.asdict(cfg)


def to_toml(cfg, header: str = "") -> str:
    """The settings as TOML that `--config` reads back to the same settings."""
    lines = [f"# {line}" for line in header.splitlines()]
    write_table(lines, cfg, [])
    return "\n".join(lines).lstrip("\n") + "\n"


def write_table(lines: list, cfg, path: list[str]) -> None:
    scalars, tables = [], []
    types_ = hints(type(cfg))
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        tp, optional = unwrap_optional(types_[f.name])
        if value is None:
            if field_default(f) is not None:
                scalars.append(f"{f.name} = false")  # switched off
            continue
        if dataclasses.is_dataclass(value) or isinstance(value, dict):
            tables.append((f.name, value))
        else:
            scalars.append(f"{f.name} = {toml_value(value)}")
    if path and (scalars or not tables):
        lines.append("")
        lines.append(f"[{'.'.join(path)}]")
    lines.extend(scalars)
    for name, value in tables:
        if isinstance(value, dict):
            lines.append("")
            lines.append(f"[{'.'.join(path + [name])}]")
            lines.extend(f"{toml_key(k)} = {toml_value(v)}" for k, v in value.items())
        else:
            write_table(lines, value, path + [name])


def toml_key(key: str) -> str:
    return key if key.replace("_", "").replace("-", "").isalnum() and key.isascii() else json.dumps(key)


def toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return repr(value) if math.isfinite(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a TOML basic string
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{toml_key(k)} = {toml_value(v)}" for k, v in value.items()) + "}"
    if value is None:
        return "false"
    raise TypeError(f"cannot write {value!r} as TOML")


def record_text(cfg, command: str) -> str:
    return to_toml(cfg, header=f"The settings of this run, as resolved. `{command} --config {RECORD}` runs it again.")


def write_record(cfg, folder: str | Path, command: str) -> None:
    atomic_write(Path(folder) / RECORD, record_text(cfg, command))
