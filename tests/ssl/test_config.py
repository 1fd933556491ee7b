import pytest

from ssl_backbones.config import load_pretrain_config
from ssl_backbones.errors import PretrainConfigError


def test_yaml_then_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("method: {name: simclr, temperature: 0.5}\ntrain: {epochs: 3}\n")
    cfg = load_pretrain_config(path, ["train.epochs=7", "augment.crop_scale=[0.5, 1.0]"])
    assert cfg.method.name == "simclr" and cfg.method.temperature == 0.5
    assert cfg.train.epochs == 7 and cfg.augment.crop_scale == (0.5, 1.0)
    assert cfg.method.tau_base == 0.99  # default kept


@pytest.mark.parametrize("text, key", [
    ("method: {temprature: 0.5}\n", "method.temprature"),
    ("train: {epochs: many}\n", "train.epochs"),
    ("optim: {name: sgd}\n", "optim.name"),
    ("augment: {stretches: [linear, cubic]}\n", "augment.stretches"),
    ("method: {center_momentum: 1.0}\n", "method.center_momentum"),
    ("method: {teacher_temp: 0}\n", "method.teacher_temp"),
    ("augment: {local_crops: 2, local_size: 8}\n", "augment.local_size"),
])
def test_errors_name_file_and_key(tmp_path, text, key):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(PretrainConfigError, match=key.replace(".", r"\.")) as info:
        load_pretrain_config(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_repo_configs_load():
    from pathlib import Path

    folder = Path(__file__).resolve().parents[2] / "configs" / "pretrain"
    names = sorted(p.name for p in folder.glob("*.yaml"))
    assert {"simclr_r18.yaml", "byol_r18.yaml", "byol_r50.yaml", "dino_r18.yaml",
            "tiny.yaml"} <= set(names)
    for name in names:
        load_pretrain_config(folder / name)
