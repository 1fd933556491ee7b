"""Dataclass configurations filled from YAML mappings and ``key.sub=value`` overrides.

The generic machinery behind ``ssl_backbones.config`` and ``caesar_mrcnn.config``. It imports
nothing from either package: every function takes the exception class to raise (``error``), so
each caller reports mistakes with its own error type, in one line naming the dotted key::

    data = apply_overrides(read_yaml(path, error=MyError), ["train.lr=0.01"], error=MyError)
    cfg = from_dict(MyConfig, data, error=MyError, source=str(path))

Supported field annotations: ``bool``, ``int`` (an integral float is accepted), ``float``,
``str``, ``Path``, ``Any``, ``Literal[...]``, unions (``X | None``), nested dataclasses, lists,
variadic and fixed-length tuples, and dicts (copied as they are).
"""

from __future__ import annotations

import copy
import dataclasses
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")
ErrorType = type[Exception]


def _is_dataclass_type(tp: Any) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def _coerce(value: Any, tp: Any, where: str, error: ErrorType) -> Any:
    """Convert a YAML value to the annotated type ``tp`` or raise ``error("where: why")``."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        reasons = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, where, error)
            except error as exc:
                reasons.append(str(exc))
        raise error(reasons[0] if reasons else f"{where}: invalid value {value!r}")
    if origin is typing.Literal:
        if value not in args:
            raise error(f"{where}: {value!r} is not one of {', '.join(map(repr, args))}")
        return value
    if _is_dataclass_type(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, Mapping):
            raise error(f"{where}: expected a mapping of options, got {value!r}")
        return build(tp, value, error=error, where=where)
    if origin in (list, tuple, Sequence) or tp in (list, tuple):
        if not isinstance(value, list | tuple):
            raise error(f"{where}: expected a list, got {value!r}")
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(args) != len(value):
                raise error(f"{where}: expected {len(args)} values, got {len(value)}")
            return tuple(_coerce(v, a, f"{where}[{i}]", error)
                         for i, (v, a) in enumerate(zip(value, args)))
        item = args[0] if args else Any
        seq = [_coerce(v, item, f"{where}[{i}]", error) for i, v in enumerate(value)]
        return tuple(seq) if (origin is tuple or tp is tuple) else seq
    if origin in (dict, Mapping) or tp is dict:
        if not isinstance(value, Mapping):
            raise error(f"{where}: expected a mapping, got {value!r}")
        return dict(value)
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise error(f"{where}: expected true or false, got {value!r}")
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise error(f"{where}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, str):
            # YAML 1.1 reads exponents without a dot (1e-4) as strings.
            try:
                return float(value)
            except ValueError:
                raise error(f"{where}: expected a number, got {value!r}") from None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise error(f"{where}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise error(f"{where}: expected a string, got {value!r}")
        return value
    if tp is Path:
        return Path(value)
    return value


def build(cls: type[T], data: Mapping[str, Any] | None, *, error: ErrorType,
          where: str = "") -> T:
    """Fill dataclass ``cls`` from a nested mapping, without calling any ``validate()``.

    Parameters
    ----------
    cls : dataclass type
        The configuration to build; missing keys take their defaults.
    data : mapping or None
        Options, nested like the dataclasses; ``None`` means all defaults.
    error : exception class
        Raised, with a one-line ``"dotted.key: why"`` message, for unknown keys or wrong types.
    where : str
        Dotted key of ``cls`` inside an enclosing configuration (``""`` at the top).
    """
    data = data or {}
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - names)
    if unknown:
        prefix = f"{where}." if where else ""
        raise error(f"unknown option {prefix}{unknown[0]} (known: {', '.join(sorted(names))})")
    kwargs = {key: _coerce(value, hints[key], f"{where}.{key}" if where else key, error)
              for key, value in data.items()}
    return cls(**kwargs)


def validate_tree(obj: Any, *, error: ErrorType, where: str = "") -> None:
    """Call ``validate()`` on every nested dataclass, innermost first.

    A ``validate()`` raises ``error("key: why")`` with the key relative to its own dataclass;
    the dotted path of that dataclass is put in front (``model.rpn.key: why``).
    """
    for f in dataclasses.fields(obj):
        val = getattr(obj, f.name)
        if dataclasses.is_dataclass(val):
            validate_tree(val, error=error, where=f"{where}.{f.name}" if where else f.name)
    validate = getattr(obj, "validate", None)
    if callable(validate):
        try:
            validate()
        except error as exc:
            raise error(f"{where}.{exc}" if where else str(exc)) from None


def from_dict(cls: type[T], data: Mapping[str, Any] | None, *, error: ErrorType,
              source: str = "") -> T:
    """:func:`build` then :func:`validate_tree`; messages start with ``source`` when given."""
    try:
        obj = build(cls, data, error=error)
        validate_tree(obj, error=error)
    except error as exc:
        raise error(f"{source}: {exc}" if source else str(exc)) from None
    return obj


def to_dict(obj: Any) -> Any:
    """Plain, YAML- and JSON-serialisable copy of a config dataclass (nested dicts, lists, str
    for paths)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, list | tuple):
        return [to_dict(x) for x in obj]
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, dict):
        return {k: to_dict(x) for k, x in obj.items()}
    return obj


def parse_override(text: str, *, error: ErrorType) -> tuple[list[str], Any]:
    """Split ``a.b.c=value`` into (["a", "b", "c"], value parsed as YAML, else kept as text)."""
    if "=" not in text:
        raise error(f"override {text!r}: expected KEY=VALUE, e.g. train.lr=0.01")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key:
        raise error(f"override {text!r}: empty key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key.split("."), value


def apply_overrides(data: Mapping[str, Any], overrides: Sequence[str], *,
                    error: ErrorType) -> dict[str, Any]:
    """Return a copy of nested ``data`` with each ``key.sub=value`` override applied.

    A missing section, or one that is not a mapping, is replaced by a new mapping; a number
    indexes an existing list (``data.sources.0.path=...``). Type checks happen later, when the
    dataclass is built.
    """
    out = copy.deepcopy(dict(data))
    for text in overrides:
        keys, value = parse_override(text, error=error)
        node = out
        for depth, k in enumerate(keys):
            last = depth == len(keys) - 1
            if isinstance(node, list):
                if not k.isdigit() or int(k) >= len(node):
                    raise error(f"override {text!r}: {k!r} is not an index of the "
                                f"{len(node)}-item list {'.'.join(keys[:depth])}")
                k = int(k)
                if last:
                    node[k] = value
                    break
                if not isinstance(node[k], dict | list):
                    node[k] = {}
                node = node[k]
                continue
            if last:
                node[k] = value
                break
            nxt = node.get(k)
            if not isinstance(nxt, dict | list):
                nxt = {}
                node[k] = nxt
            node = nxt
    return out


def read_yaml(path: str | Path, *, error: ErrorType) -> dict[str, Any]:
    """Read a YAML mapping (an empty file is ``{}``); a missing, unreadable or malformed file
    raises ``error`` naming it."""
    path = Path(path)
    if not path.is_file():
        raise error(f"{path}: configuration file not found")
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or "not a text file"
        raise error(f"{path}: cannot read configuration file ({reason})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark else ""
        raise error(f"{path}:{line} is not valid YAML; fix the syntax") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise error(f"{path}: expected a mapping of options at the top level")
    return data


def load(cls: type[T], path: str | Path | None = None, overrides: Sequence[str] = (), *,
         error: ErrorType) -> T:
    """Defaults, then the YAML file at ``path`` (if any), then ``key=value`` overrides; built
    and validated with :func:`from_dict`, messages naming the file (or ``options``)."""
    data = read_yaml(path, error=error) if path is not None else {}
    data = apply_overrides(data, overrides, error=error)
    source = str(path) if path is not None else "options"
    return from_dict(cls, data, error=error, source=source)
