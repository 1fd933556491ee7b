"""The assembled Mask R-CNN on a tiny configuration: losses, gradients, inference."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from caesar_mrcnn.errors import ConfigError
from caesar_mrcnn.modeling.config import ModelConfig
from caesar_mrcnn.modeling.maskrcnn import LOSS_KEYS, MaskRCNN
from ssl_backbones.resnet import backbone_weights, build_resnet, load_backbone_weights

SIZE = 64


def tiny_config(**kw) -> ModelConfig:
    opts = dict(image_size=SIZE, fpn_channels=16, rpn_head_channels=16, box_head_dims=(32,),
                mask_head_convs=1, mask_head_channels=8, mask_roi_size=7, mask_size=14,
                rpn_pre_nms_topk_train=100, rpn_post_nms_topk_train=40,
                rpn_pre_nms_topk_infer=50, rpn_post_nms_topk_infer=30,
                rpn_samples_per_image=32, roi_samples_per_image=16, max_gt=3,
                detections_per_image=8, score_threshold=0.0)
    opts.update(kw)
    return ModelConfig(**opts)


@pytest.fixture(scope="module")
def model():
    return MaskRCNN(tiny_config(), seed=0)


def batch(num_objects=(2, 1)):
    b = len(num_objects)
    rng = np.random.default_rng(0)
    images = rng.normal(size=(b, SIZE, SIZE, 1)).astype(np.float32)
    boxes = np.zeros((b, 3, 4), np.float32)
    classes = np.zeros((b, 3), np.int32)
    masks = np.zeros((b, 3, SIZE, SIZE), np.float32)
    shapes = [(10, 10, 20, 24, 1), (30, 5, 50, 20, 3)]
    for i, n in enumerate(num_objects):
        for g, (y0, x0, y1, x1, c) in enumerate(shapes[:n]):
            boxes[i, g] = (y0, x0, y1, x1)
            classes[i, g] = c
            masks[i, g, y0:y1, x0:x1] = 1
            images[i, y0:y1, x0:x1] += 5
    return images, boxes, classes, masks


def test_training_losses_and_gradients_in_tf_function(model):
    @tf.function
    def step(images, boxes, classes, masks):
        with tf.GradientTape() as tape:
            losses = model.compute_losses(images, boxes, classes, masks, training=True)
        return losses, tape.gradient(losses["total"], model.trainable_variables)

    losses, grads = step(*batch())
    assert set(losses) == set(LOSS_KEYS)
    for key, value in losses.items():
        assert value.dtype == tf.float32 and value.shape == ()
        assert np.isfinite(value.numpy()), key
    parts = sum(float(losses[k]) for k in LOSS_KEYS if k != "total")
    assert float(losses["total"]) == pytest.approx(parts, rel=1e-5)
    assert float(losses["mask"]) > 0 and float(losses["cls"]) > 0
    missing = [v.path for v, g in zip(model.trainable_variables, grads) if g is None]
    assert not missing
    assert all(np.isfinite(g.numpy()).all() for g in grads)
    for sub in ("backbone", "fpn", "rpn_head", "box_head", "mask_head"):
        norm = sum(float(tf.reduce_sum(tf.abs(g))) for v, g in
                   zip(model.trainable_variables, grads) if v.path.startswith(sub + "/")
                   or any(v is w for w in getattr(model, sub).trainable_variables))
        assert norm > 0, sub


def test_losses_without_objects(model):
    losses = model.compute_losses(*batch((0, 0)))
    assert all(np.isfinite(v.numpy()) for v in losses.values())
    assert float(losses["mask"]) == 0.0 and float(losses["box"]) == 0.0


def test_inference_outputs_in_tf_function(model):
    images = batch()[0]
    out = tf.function(lambda x: model(x, training=False))(images)
    d = model.cfg.detections_per_image
    assert tuple(out["boxes"].shape) == (2, d, 4) and out["boxes"].dtype == tf.float32
    assert tuple(out["scores"].shape) == (2, d) and out["scores"].dtype == tf.float32
    assert tuple(out["classes"].shape) == (2, d) and out["classes"].dtype == tf.int32
    assert tuple(out["masks"].shape) == (2, d, SIZE, SIZE) and out["masks"].dtype == tf.float32
    assert out["valid"].dtype == tf.bool
    valid = out["valid"].numpy()
    classes = out["classes"].numpy()
    assert valid.any()
    assert ((classes >= 1) & (classes < model.cfg.num_classes))[valid].all()
    assert (classes[~valid] == 0).all()
    assert (out["masks"].numpy()[~valid] == 0).all()
    masks = out["masks"].numpy()
    assert masks.min() >= 0 and masks.max() <= 1
    boxes = out["boxes"].numpy()
    assert boxes.min() >= 0 and boxes.max() <= SIZE
    scores = out["scores"].numpy()
    for i in range(2):
        s = scores[i][valid[i]]
        assert (np.diff(s) <= 1e-6).all()


def test_min_score_keeps_the_leading_slots_exactly(model):
    images = batch()[0]
    full = {k: v.numpy() for k, v in model(images, training=False).items()}
    scores = np.where(full["valid"], full["scores"], -1.0)
    # a threshold between two scores of the batch, then one above all; one graph for both
    # (eager against graph: float32 rounding of differently batched convolutions only)
    graph = tf.function(lambda x, s: model(x, training=False, min_score=s),
                        input_signature=[tf.TensorSpec((None, SIZE, SIZE, 1), tf.float32),
                                         tf.TensorSpec((), tf.float32)])
    for t in (np.sort(scores[scores > 0])[len(scores[scores > 0]) // 2], 2.0):
        cut = {k: v.numpy() for k, v in graph(images, t).items()}
        n = max(1, int((scores >= t).sum(axis=1).max()))
        assert cut["scores"].shape == (2, n) and cut["masks"].shape == (2, n, SIZE, SIZE)
        for key, value in cut.items():
            np.testing.assert_allclose(value, full[key][:, :n], atol=1e-5, err_msg=key)
    assert graph.experimental_get_tracing_count() == 1


def test_pretrained_backbone_loads_by_name(model):
    pretrained = build_resnet("resnet18", in_channels=1)
    weights = {k: v + 0.5 for k, v in backbone_weights(pretrained).items()}
    load_backbone_weights(model.backbone, weights)
    np.testing.assert_array_equal(backbone_weights(model.backbone)["stem_conv/kernel"],
                                  weights["stem_conv/kernel"])


def test_bad_config_and_images():
    with pytest.raises(ConfigError, match="image_size"):
        tiny_config(image_size=70).validate()
    with pytest.raises(ConfigError, match="score_threshold"):
        tiny_config(score_threshold=-0.5).validate()
    with pytest.raises(ConfigError, match="mask_size"):
        tiny_config(mask_size=28).validate()
    with pytest.raises(ConfigError, match="arch"):
        MaskRCNN(tiny_config(arch="vgg"))


def test_wrong_image_shape_is_reported(model):
    with pytest.raises(ConfigError, match="multiples of 32"):
        model(np.zeros((1, 48, 64, 1), np.float32))
    with pytest.raises(ConfigError, match="in_channels"):
        model(np.zeros((1, 64, 64, 3), np.float32))


def test_default_config_is_valid():
    cfg = ModelConfig()
    cfg.validate()
    assert cfg.num_classes == 6 and cfg.level_strides == (4, 8, 16, 32, 64)


def test_mixed_precision_keeps_losses_and_outputs_float32():
    keras = pytest.importorskip("keras")
    before = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        model = MaskRCNN(tiny_config(mixed_precision=True), seed=0)
        images, boxes, classes, masks = batch((2,))
        losses = model.compute_losses(images, boxes, classes, masks)
        out = model(images)
    finally:
        keras.mixed_precision.set_global_policy(before)
    assert model.backbone.get_layer("stem_conv").compute_dtype == "bfloat16"
    for value in losses.values():
        assert value.dtype == tf.float32 and np.isfinite(value.numpy())
    for key in ("boxes", "scores", "masks"):
        assert out[key].dtype == tf.float32
