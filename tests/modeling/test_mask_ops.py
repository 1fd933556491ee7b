"""Mask paste-back and mask cropping geometry."""

from __future__ import annotations

import numpy as np
import pytest
from modeling_reference import np_roi_align

from caesar_mrcnn.modeling.mask_ops import crop_masks, paste_masks


@pytest.mark.parametrize("impl", ["crop_and_resize", "gather"])
def test_paste_full_mask_fills_its_box(impl):
    masks = np.ones((1, 2, 28, 28), np.float32)
    boxes = np.array([[[8, 16, 24, 48], [0, 0, 64, 64]]], np.float32)
    out = paste_masks(masks, boxes, 64, 64, impl=impl).numpy()
    assert out.shape == (1, 2, 64, 64)
    expect = np.zeros((64, 64), bool)
    expect[8:24, 16:48] = True
    np.testing.assert_array_equal(out[0, 0] > 0.5, expect)
    # Edge pixels whose centre lies beyond the outer mask-cell centres fade slightly.
    assert out[0, 0][expect].min() > 0.9
    np.testing.assert_allclose(out[0, 0, 9:23, 17:47], 1.0)
    assert out[0, 0][~expect].max() < 0.5
    np.testing.assert_allclose(out[0, 1, 1:-1, 1:-1], 1.0)
    # pixel 0: centre 0.5 -> mask coordinate -0.28, 72 % of the way from the zero border
    assert out[0, 1, 0, 32] == pytest.approx(0.71875, abs=1e-5)


def test_paste_half_mask_lands_on_the_right_columns():
    masks = np.zeros((1, 1, 28, 28), np.float32)
    masks[..., :14] = 1.0  # left half of the box
    out = paste_masks(masks, np.array([[[8, 16, 24, 48]]], np.float32), 64, 64).numpy()[0, 0]
    cols = np.flatnonzero(out[16] > 0.5)
    np.testing.assert_array_equal(cols, np.arange(16, 32))
    # pixel 31: centre 31.5 -> mask coordinate 13.06, between cells 13 (1) and 14 (0)
    assert out[16, 31] == pytest.approx(1 - 0.0625, abs=1e-5)


def test_crop_masks_matches_reference_and_recovers_box():
    full = np.zeros((2, 32, 32), np.float32)
    full[0, 10:20, 5:25] = 1
    full[1, 3:9, 3:30] = 1
    boxes = np.array([[10, 5, 20, 25], [0, 0, 16, 32]], np.float32)
    out = crop_masks(full, np.array([0, 1], np.int32), boxes, 8).numpy()
    assert (out[0] >= 0.5).all()
    for r in range(2):
        expect = np_roi_align(full[r][..., None], boxes[r], 8, 1, 1)[..., 0]
        np.testing.assert_allclose(out[r], expect, atol=1e-6)
