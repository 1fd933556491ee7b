"""Augmentation: shapes, image/mask/box consistency, numpy references, determinism."""

from __future__ import annotations

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from caesar_mrcnn.data.augment import AugmentConfig, augment_example, boxes_from_masks  # noqa: E402
from caesar_mrcnn.errors import ConfigError  # noqa: E402

SIZE = 48
G = 4


def _example(seed: int = 0):
    """Image whose channel 0 is exactly the union of the masks; channel 1 is a gradient."""
    rng = np.random.default_rng(seed)
    masks = np.zeros((SIZE, SIZE, G), np.uint8)
    classes = np.array([2, 3, 1, 0], np.int32)  # last slot is padding
    for g in range(3):
        y, x = rng.integers(4, SIZE - 16, size=2)
        h, w = rng.integers(4, 12, size=2)
        masks[y:y + h, x:x + w, g] = 1
        masks[y + h // 2, x:x + w + 3, g] = 1  # an asymmetric arm
    image = np.stack([masks.max(axis=2).astype(np.float32),
                      np.linspace(0, 1, SIZE * SIZE, dtype=np.float32).reshape(SIZE, SIZE)],
                     axis=-1)
    return image, masks, classes


def _run(cfg, seed=(1, 2), example=None, min_pixels=1):
    image, masks, classes = example if example is not None else _example()
    out = augment_example(tf.constant(image), tf.constant(masks), tf.constant(classes),
                          tf.constant(seed, tf.int64), cfg, min_pixels)
    return {k: v.numpy() for k, v in out.items()}


def test_boxes_from_masks_match_numpy(numpy_boxes):
    _, masks, _ = _example(3)
    boxes, valid = boxes_from_masks(tf.constant(masks))
    ghw = masks.transpose(2, 0, 1)
    np.testing.assert_array_equal(boxes.numpy(), numpy_boxes(ghw))
    np.testing.assert_array_equal(valid.numpy(), ghw.any(axis=(1, 2)))


def test_shapes_and_dtypes():
    out = _run(AugmentConfig())
    assert out["image"].shape == (SIZE, SIZE, 2) and out["image"].dtype == np.float32
    assert out["masks"].shape == (G, SIZE, SIZE) and out["masks"].dtype == np.uint8
    assert out["boxes"].shape == (G, 4) and out["boxes"].dtype == np.float32
    assert out["classes"].shape == (G,) and out["classes"].dtype == np.int32


@pytest.mark.parametrize("seed", [(0, 0), (0, 1), (5, 9), (7, 3)])
def test_flips_and_rot90_move_image_and_masks_together(seed, numpy_boxes):
    cfg = AugmentConfig(affine_prob=0.0, stretch_gain=0.0, stretch_bias=0.0)
    out = _run(cfg, seed)
    image, masks, classes = _example()
    # The geometric part is one of the 8 symmetries of the square: find it from channel 1.
    candidates = []
    for k in range(4):
        for flip in (False, True):
            t = (lambda a, k=k, flip=flip: np.rot90(a[:, ::-1] if flip else a, k, axes=(0, 1)))
            if np.allclose(t(image[..., 1]), out["image"][..., 1]):
                candidates.append(t)
    assert len(candidates) == 1
    t = candidates[0]
    np.testing.assert_array_equal(out["image"][..., 0], t(image[..., 0]))
    expected = t(masks).transpose(2, 0, 1)
    np.testing.assert_array_equal(out["masks"][:3], expected[:3])
    np.testing.assert_array_equal(out["classes"], classes)
    np.testing.assert_array_equal(out["boxes"], numpy_boxes(out["masks"]))


def test_affine_keeps_masks_binary_and_aligned_with_image(numpy_boxes):
    cfg = AugmentConfig(flip=False, rot90=False, affine_prob=1.0, rotate_deg=20.0,
                        scale_range=(0.8, 1.2), stretch_gain=0.0, stretch_bias=0.0)
    image, masks, classes = _example()
    for s in range(4):
        out = _run(cfg, (s, 11))
        assert set(np.unique(out["masks"])) <= {0, 1}
        assert not np.array_equal(out["masks"][:3], masks.transpose(2, 0, 1)[:3])
        union = out["masks"].max(axis=0).astype(bool)
        # Bilinear image and nearest-neighbour masks of the same transform agree where the
        # image is clearly inside or outside the sources.
        img = out["image"][..., 0]
        assert (img[union] > 0.25).mean() > 0.9
        assert (img[~union] < 0.75).mean() > 0.97
        np.testing.assert_array_equal(out["boxes"], numpy_boxes(out["masks"]))
        n_valid = int((out["classes"] > 0).sum())
        assert np.all(out["masks"][:n_valid].any(axis=(1, 2)))
        assert not out["masks"][n_valid:].any() and not out["boxes"][n_valid:].any()


def test_stretch_jitter_changes_image_only():
    cfg = AugmentConfig(flip=False, rot90=False, affine_prob=0.0, stretch_gain=0.3,
                        stretch_bias=0.2)
    image, masks, classes = _example()
    out = _run(cfg)
    np.testing.assert_array_equal(out["masks"], masks.transpose(2, 0, 1))
    # A gain and an offset: a straight line through the original pixel values.
    x, y = image.ravel(), out["image"].ravel()
    gain, bias = np.polyfit(x, y, 1)
    np.testing.assert_allclose(y, gain * x + bias, atol=1e-5)
    assert 0.7 <= gain <= 1.3 and abs(bias) <= 0.2 and (gain, bias) != (1.0, 0.0)


def test_deterministic_for_a_seed_and_varies_with_it():
    cfg = AugmentConfig(rotate_deg=15.0, affine_prob=0.5)
    a, b = _run(cfg, (4, 4)), _run(cfg, (4, 4))
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    others = [_run(cfg, (4, s)) for s in range(5, 9)]
    assert any(not np.array_equal(a["image"], o["image"]) for o in others)


def test_sources_moved_out_become_padding_at_the_end():
    image, masks, classes = _example()
    masks[:, :, 0] = 0
    masks[0:2, 0:2, 0] = 1  # a 4-pixel instance in the corner
    cfg = AugmentConfig(enabled=False)
    out = _run(cfg, example=(image, masks, classes), min_pixels=5)
    np.testing.assert_array_equal(out["classes"], [3, 1, 0, 0])
    np.testing.assert_array_equal(out["masks"][:2], masks.transpose(2, 0, 1)[1:3])
    assert not out["masks"][2:].any()


def test_disabled_is_identity():
    image, masks, classes = _example()
    out = _run(AugmentConfig(enabled=False))
    np.testing.assert_array_equal(out["image"], image)
    np.testing.assert_array_equal(out["masks"], masks.transpose(2, 0, 1))


@pytest.mark.parametrize("bad", [{"affine_prob": 1.5}, {"scale_range": (1.2, 0.9)},
                                 {"stretch_gain": 1.0}, {"rotate_deg": -1.0}])
def test_invalid_config_is_rejected(bad):
    with pytest.raises(ConfigError):
        AugmentConfig(**bad).validate()
