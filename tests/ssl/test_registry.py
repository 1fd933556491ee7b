import json

import numpy as np
import pytest

from ssl_backbones.errors import BackboneWeightsError, RegistryError
from ssl_backbones.registry import (
    export_backbone,
    list_backbones,
    load_backbone,
    print_backbones,
    registry_dir,
    resolve_backbone,
)
from ssl_backbones.resnet import backbone_weights, build_resnet, load_backbone_weights

META = {"method": "byol", "arch": "resnet18", "in_channels": 2, "small_stem": True,
        "norm": "batch", "input_size": 16, "epochs": 1}


@pytest.fixture(scope="module")
def backbone():
    return build_resnet("resnet18", 2, small_stem=True)


def test_registry_dir_env(monkeypatch, tmp_path):
    monkeypatch.setenv("CAESAR_MRCNN_BACKBONES", str(tmp_path / "r"))
    assert registry_dir() == tmp_path / "r"
    monkeypatch.delenv("CAESAR_MRCNN_BACKBONES")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert registry_dir() == tmp_path / "cache" / "caesar-mrcnn" / "backbones"


def test_export_resolve_load_round_trip(tmp_path, monkeypatch, backbone):
    monkeypatch.setenv("CAESAR_MRCNN_BACKBONES", str(tmp_path / "reg"))
    path = export_backbone(backbone, "ssl_byol_r18", META)
    assert path == tmp_path / "reg" / "ssl_byol_r18.npz"
    assert sorted(p.name for p in (tmp_path / "reg").iterdir()) == [
        "ssl_byol_r18.json", "ssl_byol_r18.npz"]  # no temporary files left behind
    weights, meta = resolve_backbone("ssl_byol_r18")
    assert meta["method"] == "byol" and meta["in_channels"] == 2 and "software_version" in meta
    fresh = build_resnet("resnet18", 2, small_stem=True)
    load_backbone_weights(fresh, weights, strict=True)
    x = np.random.default_rng(0).normal(size=(1, 16, 16, 2)).astype(np.float32)
    np.testing.assert_allclose(fresh(x)["pooled"], backbone(x)["pooled"], rtol=1e-5, atol=1e-6)
    expected = backbone_weights(backbone)
    assert set(weights) == set(expected)
    # The same entry by path, and the built model from load_backbone.
    by_path, _ = resolve_backbone(str(path))
    assert set(by_path) == set(expected)
    model, meta2 = load_backbone(path.with_suffix(".json"))
    np.testing.assert_allclose(model(x)["pooled"], backbone(x)["pooled"], rtol=1e-5, atol=1e-6)


def test_unknown_name_lists_known_and_search_dirs(tmp_path, backbone):
    reg, shipped = tmp_path / "reg", tmp_path / "shipped"
    export_backbone(backbone, "ssl_simclr_r18", {**META, "method": "simclr"}, registry=reg)
    export_backbone(backbone, "ssl_byol_r18", META, registry=shipped)
    with pytest.raises(RegistryError, match="ssl_simclr_r18") as info:
        resolve_backbone("ssl_dino_r18", registry=reg)
    assert "\n" not in str(info.value)
    _, meta = resolve_backbone("ssl_byol_r18", search_dirs=[shipped], registry=reg)
    assert meta["path"] == str(shipped / "ssl_byol_r18.npz")
    names = [(b["name"], b["method"]) for b in list_backbones([shipped], registry=reg)]
    assert names == [("ssl_simclr_r18", "simclr"), ("ssl_byol_r18", "byol")]
    with pytest.raises(RegistryError):
        resolve_backbone(str(tmp_path / "nowhere.npz"))
    image = tmp_path / "field.fits"
    image.write_bytes(b"SIMPLE")
    with pytest.raises(RegistryError, match="not a backbone file.*field.fits|field.fits.*not a"):
        resolve_backbone(str(image))
    with pytest.raises(RegistryError, match="letters"):
        export_backbone(backbone, "../evil", META, registry=reg)


def test_corrupt_entries(tmp_path, backbone, capsys):
    reg = tmp_path / "reg"
    export_backbone(backbone, "good", META, registry=reg)
    (reg / "bad.npz").write_bytes(b"PK\x03\x04 truncated")
    (reg / "bad.json").write_text(json.dumps(META))
    with pytest.raises(BackboneWeightsError, match="bad.npz"):
        resolve_backbone("bad", registry=reg)
    (reg / "good.json").write_text("{not json")
    with pytest.raises(BackboneWeightsError, match="good.json"):
        resolve_backbone("good", registry=reg)
    print_backbones(registry=reg)
    out = capsys.readouterr().out
    assert "bad" in out and "resnet18" in out


def test_entries_record_provenance_and_the_listing_prints_it(tmp_path, backbone, capsys):
    reg = tmp_path / "reg"
    export_backbone(backbone, "new", {**META, "data_digest": "d1g35t"}, registry=reg)
    old = json.loads((reg / "new.json").read_text())
    record = old.pop("provenance")
    assert record["data_digest"] == "d1g35t" and record["command"]
    assert record["versions"]["numpy"] == np.__version__
    (reg / "old.npz").write_bytes((reg / "new.npz").read_bytes())
    (reg / "old.json").write_text(json.dumps(old))  # written before provenance was kept
    print_backbones(registry=reg)
    out = capsys.readouterr().out
    new_block = out.split("\nnew:\n")[1].split("\nold:\n")[0]
    assert "data digest:  d1g35t" in new_block and "numpy" in new_block
    assert "command:" in new_block and "git commit:" in new_block
    assert out.split("\nold:\n")[1].strip() == "provenance: not recorded"


def test_wrong_architecture_is_weights_error(tmp_path, backbone):
    reg = tmp_path / "reg"
    export_backbone(backbone, "two_chan", META, registry=reg)
    weights, _ = resolve_backbone("two_chan", registry=reg)
    with pytest.raises(BackboneWeightsError):
        load_backbone_weights(build_resnet("resnet18", 1, small_stem=True), weights)
