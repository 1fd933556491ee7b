"""Shipped models: the compact detector format round-trips; the files in the package load,
fit the size budget, find sources in a simulated field with no weights argument, and the
shipped backbone is found by name."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from caesar_mrcnn.data.preprocess import PreprocessConfig  # noqa: E402
from caesar_mrcnn.detection import compact as compact_format  # noqa: E402
from caesar_mrcnn.detection.detector import load_model  # noqa: E402
from caesar_mrcnn.detection.detector_file import save_detector  # noqa: E402
from caesar_mrcnn.errors import WeightsError  # noqa: E402
from caesar_mrcnn.modeling.config import ModelConfig  # noqa: E402
from caesar_mrcnn.modeling.maskrcnn import MaskRCNN  # noqa: E402
from caesar_mrcnn.zoo import lookup  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
MAX_BYTES = 40 * 10**6
TINY = dict(image_size=64, fpn_channels=32, rpn_head_channels=32, box_head_dims=(64, 64),
            mask_head_convs=1, mask_head_channels=32, max_gt=8, detections_per_image=16,
            rpn_pre_nms_topk_infer=100, rpn_post_nms_topk_infer=50, score_threshold=0.0)


def _images() -> np.ndarray:
    rng = np.random.default_rng(0)
    img = rng.random((1, 64, 64, 1), dtype=np.float32) * 0.1
    img[:, 20:28, 30:40] += 1.0
    return img


@pytest.fixture(scope="module")
def packed(tmp_path_factory):
    """A tiny detector on an exported backbone, one backbone weight changed by 'training';
    its full file, its compact file beside the backbone, and the model."""
    import keras

    from ssl_backbones.registry import export_backbone
    from ssl_backbones.resnet import build_resnet

    keras.utils.set_random_seed(5)
    folder = tmp_path_factory.mktemp("packed")
    backbone = build_resnet("resnet18", 1)
    entry = export_backbone(backbone, "tiny_r18", {"arch": "resnet18", "in_channels": 1},
                            registry=folder / "registry")
    small = compact_format.compact_backbone(entry, folder / "models")
    model = MaskRCNN(ModelConfig(**TINY))
    from ssl_backbones.registry import resolve_backbone
    from ssl_backbones.resnet import load_backbone_weights

    load_backbone_weights(model.backbone, resolve_backbone(small)[0])
    changed = model.backbone.get_layer("res2_block1_conv1").kernel
    changed.assign(changed.numpy() + 0.25)
    full = save_detector(model, PreprocessConfig(steps=[{"name": "minmax"}]),
                         folder / "detector.npz", backbone={"name": "tiny_r18"})
    compact = compact_format.pack_detector(full, folder / "models" / "det.npz", small,
                                    name="tiny_r18")
    return {"model": model, "full": full, "compact": compact, "folder": folder,
            "changed": changed.path, "backbone": small}


def test_detector_files_say_where_they_came_from(packed):
    from caesar_mrcnn.zoo.info import model_info

    full, compact = model_info(packed["full"]), model_info(packed["compact"])
    assert full["kind"] == "detector" and compact["kind"] == "detector (compact)"
    record = full["provenance"]
    assert record["versions"]["numpy"] == np.__version__ and record["command"]
    assert set(record) >= {"git", "command", "data", "data_digest", "versions"}
    # Packing keeps the training record and adds its own.
    assert compact["provenance"] == record
    assert compact["packing"]["recorded"] >= record["recorded"]
    backbone = json.loads(Path(packed["backbone"]).with_suffix(".json").read_text())
    assert backbone["provenance"]["versions"] == record["versions"]


def test_compact_backbone_is_float16_with_digest_and_loads(packed):
    from ssl_backbones.registry import load_backbone

    meta = json.loads(packed["backbone"].with_suffix(".json").read_text())
    assert meta["stored_dtype"] == "float16" and len(meta["digest"]) == 64
    with np.load(packed["backbone"]) as npz:
        assert {npz[k].dtype for k in npz.files} == {np.dtype(np.float16)}
    model, _ = load_backbone(packed["backbone"])
    assert model.get_layer("stem_conv").kernel.dtype == "float32"


def test_compact_detector_stores_only_what_the_backbone_lacks(packed):
    meta, arrays = compact_format.read_compact(packed["compact"])
    refs = [r for r in meta["weights"] if "backbone" in r]
    stored = {r["path"] for i, r in enumerate(meta["weights"]) if f"w{i:05d}" in arrays}
    assert refs and packed["changed"] in stored
    assert not any(r["path"] == packed["changed"] for r in refs)
    assert packed["compact"].stat().st_size < packed["full"].stat().st_size / 3


def test_compact_detector_predicts_like_the_full_one(packed):
    loaded, meta = load_model(packed["compact"])
    assert meta["backbone_file"] == str(packed["backbone"])
    for a, b in zip(packed["model"].weights, loaded.weights):
        np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-3, atol=1e-4)
    want = packed["model"](_images())
    got = loaded(_images())
    assert np.asarray(want["valid"]).any()
    np.testing.assert_allclose(np.asarray(got["boxes"]), np.asarray(want["boxes"]), atol=0.5)
    np.testing.assert_array_equal(np.asarray(got["classes"]), np.asarray(want["classes"]))


def test_compact_detector_refuses_another_backbone(packed, tmp_path):
    import shutil

    from ssl_backbones.registry import export_backbone
    from ssl_backbones.resnet import build_resnet

    other = export_backbone(build_resnet("resnet18", 1), "tiny_r18",
                            {"arch": "resnet18", "in_channels": 1}, registry=tmp_path / "reg")
    lonely = tmp_path / "det.npz"
    shutil.copy(packed["compact"], lonely)
    with pytest.raises(WeightsError, match="tiny_r18.*not found"):
        compact_format.load_compact_model(lonely, search_dirs=[other.parent],
                                      registry=tmp_path / "empty")


def test_truncated_compact_file_is_a_weights_error(packed, tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(packed["compact"].read_bytes()[:5000])
    with pytest.raises(WeightsError, match="corrupt or truncated"):
        compact_format.read_compact(bad)
    assert not compact_format.is_compact(bad)


# --- the files in the package -------------------------------------------------------------


def test_shipped_files_exist_and_fit_the_budget():
    sizes = lookup.file_sizes()
    for name in (lookup.DEFAULT_DETECTOR, f"{lookup.DEFAULT_BACKBONE}.npz",
                 f"{lookup.DEFAULT_BACKBONE}.json"):
        assert name in sizes, f"{name} missing from {lookup.weights_dir()}"
    assert sum(sizes.values()) <= MAX_BYTES
    assert compact_format.is_compact(lookup.shipped_detector())


def test_shipped_backbone_found_by_name_without_pretraining(tmp_path, monkeypatch):
    from caesar_mrcnn.training.backbone import resolve_backbone_spec

    monkeypatch.setenv("CAESAR_MRCNN_BACKBONES", str(tmp_path / "empty_registry"))
    weights, meta = resolve_backbone_spec(lookup.DEFAULT_BACKBONE)
    assert meta["arch"] == "resnet18" and meta["method"] == "byol"
    assert Path(meta["path"]).parent == lookup.weights_dir()
    assert weights["stem_conv/kernel"].shape[-1] == 64


@pytest.fixture(scope="module")
def field(tmp_path_factory):
    """One 256 x 256 field of the reference dataset's kind, with an unseen seed."""
    from caesar_mrcnn.sim.writer import simulate_command

    out = tmp_path_factory.mktemp("field") / "sim"
    # simulated noise only: the test must not depend on the real images being present
    simulate_command(str(REPO / "configs/sim/reference.yaml"), ["noise.real_prob=0"], out,
                     n_images=1, seed=99,
                     progress=False)
    return out


def test_infer_without_weights_finds_the_bright_sources(field, tmp_path):
    from caesar_mrcnn.cli import main
    from caesar_mrcnn.detection.infer import infer_image
    from caesar_mrcnn.evaluation.evaluate import load_truth
    from caesar_mrcnn.evaluation.matching import match_masks

    sample = load_truth(field)[0]
    regions = tmp_path / "out.reg"
    assert main(["infer", str(sample.image_path), "--regions", str(regions)]) == 0
    from regions import Regions

    assert len(Regions.read(str(regions), format="ds9")) > 0
    result = infer_image(sample.image_path)
    bright = [a for a in sample.annotations
              if a.category == "compact" and a.attrs.get("snr", 0) >= 20]
    assert bright, "the field should hold bright compact sources"
    found = match_masks(bright, result.objects, 0.3).truth_matched
    assert found.mean() >= 0.8
