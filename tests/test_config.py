"""caesar_mrcnn.config: the shared loader, reporting with ConfigError."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from caesar_mrcnn.config import dump_config, from_dict, load_config, read_yaml
from caesar_mrcnn.errors import ConfigError


@dataclass
class Noise:
    rms: float = 1.0

    def validate(self) -> None:
        if self.rms <= 0:
            raise ConfigError("rms: must be positive")


@dataclass
class Sim:
    n: int = 2
    noise: Noise = field(default_factory=Noise)


def test_load_dump_and_reload(tmp_path):
    path = tmp_path / "sim.yaml"
    path.write_text("noise: {rms: 2}\n")
    cfg = load_config(Sim, path, ["n=5"])
    assert cfg == Sim(n=5, noise=Noise(rms=2.0))
    out = tmp_path / "dumped.yaml"
    dump_config(cfg, out)
    assert load_config(Sim, out) == cfg


def test_errors_are_config_errors_naming_file_and_key(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("noise: {rms: -1}\n")
    with pytest.raises(ConfigError) as info:
        load_config(Sim, path)
    assert str(info.value) == f"{path}: noise.rms: must be positive"
    with pytest.raises(ConfigError, match=r"^meta: unknown option noise\.rsm"):
        from_dict(Sim, {"noise": {"rsm": 1}}, "meta")
    with pytest.raises(ConfigError, match="not found"):
        read_yaml(tmp_path / "absent.yaml")
    with pytest.raises(ConfigError, match="override"):
        load_config(Sim, None, ["n"])


def test_documented_inference_defaults_are_the_real_ones():
    """configs/infer/default.yaml documents every inference option with its default."""
    from dataclasses import fields
    from pathlib import Path

    from caesar_mrcnn.detection.infer import InferConfig

    path = Path(__file__).resolve().parents[1] / "configs" / "infer" / "default.yaml"
    assert set(read_yaml(path)) == {f.name for f in fields(InferConfig)}
    assert load_config(InferConfig, path) == InferConfig()
