"""Typed configuration: dataclasses loaded from YAML, with ``key.sub=value`` overrides.

Each subsystem declares its own (nested, frozen-free) dataclass next to the code that uses it;
this module only knows how to fill one from a mapping, a YAML file and command-line overrides,
and how to report a mistake clearly::

    cfg = load_config(SimConfig, "configs/sim/train.yaml", ["field.nx=1024", "noise.rms_ujy=30"])

Unknown keys, wrong types and failed ``validate()`` checks raise :class:`ConfigError` naming the
file and the dotted key. The machinery lives in :mod:`ssl_backbones.dataclass_config` (shared
with the pretraining configuration); this module fixes the error type to :class:`ConfigError`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml

from caesar_mrcnn.errors import ConfigError
from ssl_backbones import dataclass_config

T = TypeVar("T")


def from_dict(cls: type[T], data: Mapping[str, Any] | None, source: str = "") -> T:
    """Build dataclass ``cls`` from a (nested) mapping; missing keys take their defaults.

    Every nested ``validate()`` runs; errors start with ``source`` (a file name) when given.
    """
    return dataclass_config.from_dict(cls, data, error=ConfigError, source=source)


def to_dict(obj: Any) -> dict[str, Any]:
    """Plain, YAML-serialisable nested dict of a config dataclass."""
    return dataclass_config.to_dict(obj)


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split ``a.b.c=value`` into (["a", "b", "c"], value parsed as YAML)."""
    return dataclass_config.parse_override(text, error=ConfigError)


def apply_overrides(data: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Return a copy of nested ``data`` with each ``key.sub=value`` override applied."""
    return dataclass_config.apply_overrides(data, overrides, error=ConfigError)


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping, with a clear error for a missing or malformed file."""
    return dataclass_config.read_yaml(path, error=ConfigError)


def load_config(cls: type[T], path: str | Path | None = None,
                overrides: Sequence[str] = ()) -> T:
    """Load dataclass ``cls`` from an optional YAML file plus ``key=value`` overrides.

    Raises
    ------
    ConfigError
        Naming the file, or the ``--set`` overrides when the bad key came from one.
    """
    try:
        return dataclass_config.load(cls, path, overrides, error=ConfigError)
    except ConfigError as exc:
        if not overrides:
            raise
        merged_error = exc
    # Say whether the file alone is invalid, or an override made the options so.
    dataclass_config.load(cls, path, (), error=ConfigError)
    try:
        dataclass_config.load(cls, None, overrides, error=ConfigError)
    except ConfigError as exc:
        reason = str(exc).removeprefix("options: ")
        raise ConfigError(f"--set {' '.join(overrides)}: {reason}") from None
    raise merged_error


def dump_config(obj: Any, path: str | Path) -> None:
    """Write a config dataclass as YAML (atomically)."""
    from caesar_mrcnn.io.atomic import atomic_open

    with atomic_open(path) as fh:
        yaml.safe_dump(to_dict(obj), fh, sort_keys=False)


def option_values(name: str, options: Sequence[tuple[str, Any, Any]],
                  path: str | Path | None = None, overrides: Sequence[str] = ()) -> dict[str, Any]:
    """Values of a command's own options from a YAML file plus ``key=value`` overrides.

    For commands without a library configuration (``inspect``, ``backbones``, ``ssl-eval``):
    the file's keys are the option names with underscores (``folds``, ``registry``), checked and
    converted like any dataclass configuration.

    Parameters
    ----------
    name : str
        Command name, for the generated dataclass.
    options : sequence of (key, type, default)
        The options the file may set.
    path, overrides :
        As for :func:`load_config`.

    Returns
    -------
    dict
        Every option's value (defaults where neither the file nor an override sets it).

    Raises
    ------
    ConfigError
        Naming the file or the ``--set`` override: unknown key, wrong type.
    """
    import copy
    import dataclasses

    def field(default: Any) -> Any:
        if isinstance(default, list | dict | set):
            return dataclasses.field(default_factory=lambda: copy.deepcopy(default))
        return dataclasses.field(default=default)

    cls = dataclasses.make_dataclass(
        f"{name.title().replace('-', '')}Options",
        [(key, tp, field(default)) for key, tp, default in options])
    return to_dict(load_config(cls, path, overrides))
