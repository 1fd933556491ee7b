"""ROIAlign against a numpy bilinear reference; level assignment."""

from __future__ import annotations

import numpy as np
import pytest
from modeling_reference import np_roi_align

from caesar_mrcnn.modeling.roi_align import assign_levels, multilevel_roi_align, roi_align

IMPLS = ["crop_and_resize", "gather"]


@pytest.mark.parametrize("impl", IMPLS)
def test_constant_image(impl):
    feat = np.full((1, 8, 8, 2), 3.5, np.float32)
    boxes = np.array([[0, 0, 32, 32], [4, 6, 13, 30], [-2, -2, 10, 10]], np.float32)
    out = roi_align(feat, boxes, np.zeros(3, np.int32), 4, stride=4, impl=impl).numpy()
    np.testing.assert_allclose(out, 3.5, rtol=1e-6)


@pytest.mark.parametrize("impl", IMPLS)
def test_linear_ramp_is_exact_at_bin_centres(impl):
    yy, xx = np.meshgrid(np.arange(16.0), np.arange(16.0), indexing="ij")
    feat = (2 * yy + 3 * xx + 1)[None, :, :, None].astype(np.float32)
    box = np.array([[6, 10, 40, 50]], np.float32)  # stride 4: well inside the map
    out = roi_align(feat, box, np.zeros(1, np.int32), 2, stride=4, sampling_ratio=2,
                    impl=impl).numpy()[0, ..., 0]
    centres_y = 6 + (np.arange(2) + 0.5) * 34 / 2
    centres_x = 10 + (np.arange(2) + 0.5) * 40 / 2
    expect = 2 * (centres_y[:, None] / 4 - 0.5) + 3 * (centres_x[None, :] / 4 - 0.5) + 1
    np.testing.assert_allclose(out, expect, rtol=1e-5)


@pytest.mark.parametrize("impl", IMPLS)
def test_matches_numpy_reference_including_borders(impl):
    rng = np.random.default_rng(3)
    feat = rng.normal(size=(2, 6, 7, 3)).astype(np.float32)
    boxes = np.array([[0, 0, 24, 28], [3.3, 1.7, 11.2, 20.9], [-6, -3, 8, 9],
                      [18, 20, 30, 34]], np.float32)
    idx = np.array([0, 1, 1, 0], np.int32)
    out = roi_align(feat, boxes, idx, 3, stride=4, sampling_ratio=2, impl=impl).numpy()
    for r in range(4):
        expect = np_roi_align(feat[idx[r]], boxes[r], 3, 4, 2)
        np.testing.assert_allclose(out[r], expect, rtol=1e-4, atol=1e-5)


def test_assign_levels():
    sizes = np.array([10, 56, 111.9, 112, 223.9, 224, 447, 448, 2000], np.float32)
    boxes = np.stack([np.zeros_like(sizes), np.zeros_like(sizes), sizes, sizes], -1)
    np.testing.assert_array_equal(assign_levels(boxes).numpy(), [2, 2, 2, 3, 3, 4, 4, 5, 5])
    rect = np.array([[0, 0, 112, 448]], np.float32)  # sqrt(area) = 224
    assert assign_levels(rect).numpy()[0] == 4


@pytest.mark.parametrize("impl", IMPLS)
def test_multilevel_uses_assigned_level(impl):
    rng = np.random.default_rng(4)
    strides = {2: 4, 3: 8, 4: 16, 5: 32}
    size = 256
    feats = {lv: rng.normal(size=(2, size // s, size // s, 2)).astype(np.float32)
             for lv, s in strides.items()}
    boxes = np.array([[[0, 0, 20, 30], [100, 50, 230, 190], [0, 0, 256, 256]],
                      [[10, 200, 70, 256], [5.5, 7.25, 60.5, 90.75], [30, 30, 150, 120]]],
                     np.float32)
    out = multilevel_roi_align(feats, boxes, 4, strides, sampling_ratio=2, impl=impl).numpy()
    levels = assign_levels(boxes).numpy()
    assert len(set(levels.ravel())) >= 3  # the case really spans several levels
    for b in range(2):
        for r in range(3):
            lv = int(levels[b, r])
            expect = np_roi_align(feats[lv][b], boxes[b, r], 4, strides[lv], 2)
            np.testing.assert_allclose(out[b, r], expect, rtol=1e-4, atol=1e-5)
