"""The shared dataclass-from-YAML machinery, with an error class of the test's own."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pytest

from ssl_backbones.dataclass_config import (
    apply_overrides,
    build,
    from_dict,
    load,
    parse_override,
    read_yaml,
    to_dict,
    validate_tree,
)


class Oops(Exception):
    """Stands for a caller's own error type."""


@dataclass
class Inner:
    size: int = 4
    scale: tuple[float, float] = (0.5, 1.0)

    def validate(self) -> None:
        if self.size < 1:
            raise Oops("size: must be positive")


@dataclass
class Outer:
    name: str = "a"
    mode: Literal["fast", "slow"] = "fast"
    limit: float | None = None
    flag: bool = False
    out: Path = Path("out")
    levels: list[int] = field(default_factory=lambda: [1, 2])
    widths: tuple[int, ...] = (8,)
    extra: dict[str, Any] = field(default_factory=dict)
    inner: Inner = field(default_factory=Inner)

    def validate(self) -> None:
        if self.limit is not None and self.limit <= 0:
            raise Oops("limit: must be positive")


def test_build_coerces_every_supported_annotation():
    cfg = build(Outer, {"name": "b", "mode": "slow", "limit": 3, "flag": True, "out": "x/y",
                        "levels": [3.0], "widths": [1, 2, 3], "extra": {"k": [1]},
                        "inner": {"scale": [0, 2]}}, error=Oops)
    assert cfg.mode == "slow" and cfg.limit == 3.0 and isinstance(cfg.limit, float)
    assert cfg.flag is True and cfg.out == Path("x/y")
    assert cfg.levels == [3] and isinstance(cfg.levels[0], int)
    assert cfg.widths == (1, 2, 3) and cfg.extra == {"k": [1]}
    assert cfg.inner == Inner(size=4, scale=(0.0, 2.0))
    assert build(Outer, {"limit": None}, error=Oops).limit is None
    # YAML 1.1 leaves 1e-4 (no dot) a string; a float option reads it as the number.
    assert build(Outer, apply_overrides({}, ["limit=1e-4"], error=Oops), error=Oops).limit == 1e-4
    assert build(Outer, None, error=Oops) == Outer()


@pytest.mark.parametrize("data, text", [
    ({"inner": {"sise": 3}}, "unknown option inner.sise (known: scale, size)"),
    ({"inner": {"size": "big"}}, "inner.size: expected an integer, got 'big'"),
    ({"inner": {"scale": [1]}}, "inner.scale: expected 2 values, got 1"),
    ({"inner": {"scale": [1, "x"]}}, "inner.scale[1]: expected a number, got 'x'"),
    ({"inner": 3}, "inner: expected a mapping of options, got 3"),
    ({"mode": "medium"}, "mode: 'medium' is not one of 'fast', 'slow'"),
    ({"flag": 1}, "flag: expected true or false, got 1"),
    ({"limit": "x"}, "limit: expected a number, got 'x'"),
    ({"levels": 5}, "levels: expected a list, got 5"),
    ({"extra": [1]}, "extra: expected a mapping, got [1]"),
    ({"name": 5}, "name: expected a string, got 5"),
])
def test_build_errors_name_the_dotted_key(data, text):
    with pytest.raises(Oops) as info:
        build(Outer, data, error=Oops)
    assert str(info.value) == text


def test_build_prefixes_keys_with_where():
    with pytest.raises(Oops, match=r"^model\.inner\.size: expected an integer"):
        build(Outer, {"inner": {"size": 1.5}}, error=Oops, where="model")


def test_validate_tree_prefixes_nested_messages_and_from_dict_the_source():
    with pytest.raises(Oops, match=r"^inner\.size: must be positive$"):
        validate_tree(Outer(inner=Inner(size=0)), error=Oops)
    with pytest.raises(Oops, match=r"^run\.yaml: inner\.size: must be positive$"):
        from_dict(Outer, {"inner": {"size": 0}}, error=Oops, source="run.yaml")
    with pytest.raises(Oops, match=r"^limit: must be positive$"):
        from_dict(Outer, {"limit": -1}, error=Oops)
    # Only the caller's error type is caught and re-prefixed; others pass through untouched.
    with pytest.raises(Oops, match=r"^size: must be positive$"):
        from_dict(Outer, {"inner": {"size": 0}}, error=ValueError, source="run.yaml")


def test_to_dict_round_trips_through_build():
    cfg = Outer(out=Path("a/b"), widths=(1, 2), inner=Inner(scale=(0.1, 0.2)))
    plain = to_dict(cfg)
    assert plain["out"] == "a/b" and plain["widths"] == [1, 2]
    assert plain["inner"] == {"size": 4, "scale": [0.1, 0.2]}
    assert build(Outer, plain, error=Oops) == cfg


def test_overrides_parse_yaml_values_and_leave_the_input_alone():
    assert parse_override("a.b=[1, 2]", error=Oops) == (["a", "b"], [1, 2])
    assert parse_override("a=x: [", error=Oops) == (["a"], "x: [")
    assert parse_override(" a =", error=Oops) == (["a"], "")
    for bad in ("novalue", "=3"):
        with pytest.raises(Oops, match="override"):
            parse_override(bad, error=Oops)
    data = {"inner": {"size": 2}, "name": "n"}
    out = apply_overrides(data, ["inner.size=5", "inner.scale=[0.2, 0.3]", "new.deep.key=1"],
                          error=Oops)
    assert out == {"inner": {"size": 5, "scale": [0.2, 0.3]}, "name": "n",
                   "new": {"deep": {"key": 1}}}
    assert data == {"inner": {"size": 2}, "name": "n"}


def test_read_yaml_and_load_name_the_file(tmp_path):
    missing = tmp_path / "missing.yaml"
    with pytest.raises(Oops, match="missing.yaml: configuration file not found"):
        read_yaml(missing, error=Oops)
    broken = tmp_path / "broken.yaml"
    broken.write_text("a: [1,\nb: 2\n")
    with pytest.raises(Oops, match=r"broken\.yaml: line \d+ is not valid YAML"):
        read_yaml(broken, error=Oops)
    listing = tmp_path / "list.yaml"
    listing.write_text("- 1\n")
    with pytest.raises(Oops, match="expected a mapping"):
        read_yaml(listing, error=Oops)
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    assert read_yaml(empty, error=Oops) == {}

    good = tmp_path / "good.yaml"
    good.write_text("mode: slow\ninner: {size: 2}\n")
    cfg = load(Outer, good, ["inner.size=3", "limit=0.5"], error=Oops)
    assert cfg == Outer(mode="slow", limit=0.5, inner=Inner(size=3))
    assert load(Outer, error=Oops) == Outer()
    with pytest.raises(Oops) as info:
        load(Outer, good, ["inner.size=0"], error=Oops)
    assert str(info.value) == f"{good}: inner.size: must be positive"
    with pytest.raises(Oops, match=r"^options: unknown option nme"):
        load(Outer, None, ["nme=x"], error=Oops)
