"""Detector files: save -> load gives identical predictions; bad files are clear errors."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from caesar_mrcnn.classes import CLASS_NAMES  # noqa: E402
from caesar_mrcnn.data.preprocess import PreprocessConfig  # noqa: E402
from caesar_mrcnn.detection.detector_file import (  # noqa: E402
    load_full_model,
    read_detector,
    save_detector,
)
from caesar_mrcnn.errors import WeightsError  # noqa: E402
from caesar_mrcnn.modeling.config import ModelConfig  # noqa: E402
from caesar_mrcnn.modeling.maskrcnn import MaskRCNN  # noqa: E402

TINY = dict(image_size=64, fpn_channels=32, rpn_head_channels=32, box_head_dims=(64, 64),
            mask_head_convs=1, mask_head_channels=32, max_gt=8, detections_per_image=16,
            rpn_pre_nms_topk_infer=100, rpn_post_nms_topk_infer=50,
            score_threshold=0.0)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A randomly initialised tiny detector and its file."""
    import keras

    keras.utils.set_random_seed(3)
    model = MaskRCNN(ModelConfig(**TINY))
    # Non-trivial batch-norm statistics, so that they must be saved too.
    for v in model.non_trainable_variables:
        if "moving_mean" in v.path:
            v.assign(np.full(v.shape, 0.1, np.float32))
    pre = PreprocessConfig(steps=[{"name": "minmax"}])
    path = save_detector(model, pre, tmp_path_factory.mktemp("det") / "detector",
                         backbone={"name": "resnet18"}, extra={"train": {"steps": 0}})
    return model, path


def _images():
    rng = np.random.default_rng(0)
    img = rng.random((2, 64, 64, 1), dtype=np.float32) * 0.1
    img[:, 20:28, 30:40] += 1.0
    return img


def test_save_then_load_gives_identical_predictions(saved):
    model, path = saved
    assert path.suffix == ".npz" and path.is_file()
    loaded, meta = load_full_model(path)
    for a, b in zip(model.weights, loaded.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    images = _images()
    want = {k: np.asarray(v) for k, v in model(images).items()}
    got = {k: np.asarray(v) for k, v in loaded(images).items()}
    assert want["valid"].any()  # something to compare
    for key in want:
        np.testing.assert_array_equal(got[key], want[key], err_msg=key)
    assert meta["model_config"] == model.cfg
    assert meta["preprocess_config"].steps == [{"name": "minmax"}]
    assert meta["classes"] == list(CLASS_NAMES)
    assert meta["backbone"]["name"] == "resnet18"
    assert meta["software"]["caesar_mrcnn"] and meta["train"] == {"steps": 0}


def test_missing_file(tmp_path):
    with pytest.raises(WeightsError, match="not found"):
        load_full_model(tmp_path / "nothing.npz")


def test_truncated_file(saved, tmp_path):
    bad = tmp_path / "cut.npz"
    data = saved[1].read_bytes()
    bad.write_bytes(data[: len(data) // 3])
    with pytest.raises(WeightsError, match="corrupt"):
        load_full_model(bad)


def test_not_a_detector(tmp_path):
    other = tmp_path / "other.npz"
    np.savez(other, a=np.zeros(3))
    with pytest.raises(WeightsError, match="not a caesar-mrcnn detector"):
        load_full_model(other)
    text = tmp_path / "text.npz"
    text.write_text("hello")
    with pytest.raises(WeightsError):
        load_full_model(text)


def _rewrite(src, dst, edit):
    """Copy a detector file with its metadata changed by ``edit(meta)``."""
    meta, arrays = read_detector(src)
    edit(meta)
    payload = {f"w{i:05d}": a for i, a in enumerate(arrays)}
    payload["__metadata__"] = np.array(json.dumps(meta))
    np.savez(dst, **payload)
    assert zipfile.is_zipfile(dst)


def test_weights_that_do_not_fit_the_stored_model(saved, tmp_path):
    bad = tmp_path / "mismatch.npz"
    _rewrite(saved[1], bad, lambda m: m["model"].update(fpn_channels=64))
    with pytest.raises(WeightsError, match="shape"):
        load_full_model(bad)


def test_other_class_set(saved, tmp_path):
    bad = tmp_path / "classes.npz"
    _rewrite(saved[1], bad, lambda m: m.update(classes=["star", "galaxy"]))
    with pytest.raises(WeightsError, match="classes"):
        load_full_model(bad)


def test_unknown_model_option(saved, tmp_path):
    bad = tmp_path / "future.npz"
    _rewrite(saved[1], bad, lambda m: m["model"].update(new_option=1))
    with pytest.raises(WeightsError, match="configuration"):
        load_full_model(bad)
