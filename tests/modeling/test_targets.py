"""RPN and ROI training targets on hand-made cases."""

from __future__ import annotations

import math

import numpy as np
from modeling_reference import np_roi_align

from caesar_mrcnn.modeling.box_ops import encode_boxes
from caesar_mrcnn.modeling.targets import (
    ROI_BOX_WEIGHTS,
    mask_targets,
    roi_targets,
    rpn_targets,
)

GT_BOXES = np.array([[[0, 0, 10, 10], [21, 21, 31, 31], [0, 0, 0, 0]]], np.float32)
GT_CLASSES = np.array([[1, 2, 0]], np.int32)


def test_rpn_targets():
    anchors = np.array([[0, 0, 10, 10], [0, 0, 10, 12], [20, 20, 30, 30], [40, 40, 44, 44]],
                       np.float32)
    labels, deltas = rpn_targets(anchors, GT_BOXES, GT_CLASSES, 0.7, 0.3, 8, 0.5, seed=0)
    # anchor 2 has IoU 0.68 with GT 1 but is that GT's best anchor -> positive;
    # anchor 3 touches only the padding GT (a zero box) -> negative.
    np.testing.assert_array_equal(labels.numpy(), [[1, 1, 1, 0]])
    np.testing.assert_allclose(deltas.numpy()[0, 1], [0, -1 / 12, 0, math.log(10 / 12)],
                               rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(deltas.numpy()[0, 2], [0.1, 0.1, 0, 0], atol=1e-6)


def test_roi_targets():
    proposals = np.array([[[0, 0, 10, 10], [20, 20, 30, 30], [5, 5, 6, 6], [40, 40, 50, 50]]],
                         np.float32)
    valid = np.array([[True, True, False, True]])
    t = {k: v.numpy() for k, v in
         roi_targets(proposals, valid, GT_BOXES, GT_CLASSES, 0.5, 0.5, 8, 1.0, seed=0).items()}
    assert t["rois"].shape == (1, 8, 4)
    n_valid = int(t["valid"].sum())
    assert n_valid == 5  # 2 proposals + 2 GT as positives, 1 background proposal
    pos = t["is_positive"][0]
    np.testing.assert_array_equal(pos, [True] * 4 + [False] * 4)
    got = {(tuple(r), int(c)) for r, c in zip(t["rois"][0, :4], t["classes"][0, :4])}
    assert got == {((0, 0, 10, 10), 1), ((20, 20, 30, 30), 2), ((21, 21, 31, 31), 2)}
    assert tuple(t["rois"][0, 4]) == (40, 40, 50, 50) and t["classes"][0, 4] == 0
    for r in range(4):
        gt = GT_BOXES[0, t["gt_index"][0, r]]
        expect = encode_boxes(gt[None], t["rois"][0, r][None], ROI_BOX_WEIGHTS).numpy()[0]
        np.testing.assert_allclose(t["box_targets"][0, r], expect, atol=1e-5)


def test_mask_targets_threshold_roi_align_of_gt_masks():
    masks = np.zeros((1, 3, 32, 32), np.float32)
    masks[0, 0, 0:10, 0:10] = 1
    masks[0, 1, 21:31, 21:26] = 1  # GT 1 only fills the left half of its box
    rois = np.array([[[0, 0, 10, 10], [20, 20, 30, 30]]], np.float32)
    out = mask_targets(masks, np.array([[0, 1]]), rois, 6).numpy()
    assert out.shape == (1, 2, 6, 6)
    assert (out[0, 0] == 1).all()
    expect = np_roi_align(masks[0, 1][..., None], rois[0, 1], 6, 1, 1)[..., 0] >= 0.5
    np.testing.assert_array_equal(out[0, 1], expect)
    assert 0 < out[0, 1].sum() < 36
