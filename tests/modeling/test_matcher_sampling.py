"""Matching by IoU thresholds and balanced sampling on hand-made cases."""

from __future__ import annotations

import numpy as np

from caesar_mrcnn.modeling.matcher import masked_iou, match
from caesar_mrcnn.modeling.sampling import sample_indices, sample_mask


def test_match_thresholds_and_padding():
    iou = np.array([[[0.8, 0.1], [0.5, 0.6], [0.2, 0.1], [0.0, 0.35]]], np.float32)
    matched, labels = match(iou, 0.7, 0.3)
    np.testing.assert_array_equal(matched.numpy(), [[0, 1, 0, 1]])
    np.testing.assert_array_equal(labels.numpy(), [[1, -1, 0, -1]])
    _, labels = match(iou, 0.7, 0.3, valid=np.array([[True, True, False, True]]))
    np.testing.assert_array_equal(labels.numpy(), [[1, -1, -1, -1]])


def test_low_quality_matches_give_every_gt_an_anchor():
    # GT 1 overlaps at most 0.4 (anchors 1 and 3 tie): both become positive.
    iou = np.array([[[0.9, 0.0], [0.1, 0.4], [0.0, 0.2], [0.0, 0.4]]], np.float32)
    _, labels = match(iou, 0.7, 0.3, allow_low_quality=True)
    np.testing.assert_array_equal(labels.numpy(), [[1, 1, 0, 1]])


def test_padding_gt_never_matches():
    boxes = np.array([[[0, 0, 10, 10], [20, 20, 30, 30]]], np.float32)
    gt = np.array([[[0, 0, 10, 10], [20, 20, 30, 30]]], np.float32)
    iou = masked_iou(boxes, gt, np.array([[True, False]])).numpy()
    np.testing.assert_allclose(iou[0], [[1, -1], [0, -1]])
    _, labels = match(iou, 0.5, 0.5, allow_low_quality=True)
    np.testing.assert_array_equal(labels.numpy(), [[1, 0]])


def test_sample_mask_respects_fraction_and_counts():
    labels = np.array([[1, 1, 1, 1, 0, 0, 0, 0, 0, -1],
                       [1, 0, 0, 0, 0, 0, 0, -1, -1, -1],
                       [-1, -1, 0, 0, -1, -1, -1, -1, -1, -1]], np.int32)
    pos, neg = sample_mask(labels, 4, 0.5, seed=0)
    pos, neg = pos.numpy(), neg.numpy()
    np.testing.assert_array_equal(pos.sum(1), [2, 1, 0])
    np.testing.assert_array_equal(neg.sum(1), [2, 3, 2])
    assert not (pos & (labels != 1)).any()
    assert not (neg & (labels != 0)).any()


def test_sample_mask_is_random():
    labels = np.tile(np.array([[1] * 20 + [0] * 20], np.int32), (8, 1))
    pos, _ = sample_mask(labels, 4, 0.5, seed=1)
    rows = {tuple(np.flatnonzero(r)) for r in pos.numpy()}
    assert len(rows) > 1


def test_sample_indices_positives_first_and_padding():
    labels = np.array([[0, 1, -1, 0, 1, 1], [-1, -1, 0, -1, -1, -1]], np.int32)
    idx, is_pos, valid = (t.numpy() for t in sample_indices(labels, 4, 0.5, seed=3))
    np.testing.assert_array_equal(is_pos, [[True, True, False, False], [False] * 4])
    np.testing.assert_array_equal(valid, [[True] * 4, [True, False, False, False]])
    assert set(idx[0, :2]) <= {1, 4, 5} and set(idx[0, 2:]) == {0, 3}
    assert idx[1, 0] == 2


def test_sample_indices_pads_when_fewer_candidates_than_slots():
    labels = np.array([[1, 0]], np.int32)
    idx, is_pos, valid = (t.numpy() for t in sample_indices(labels, 4, 0.5, seed=0))
    np.testing.assert_array_equal(idx[0, :2], [0, 1])
    np.testing.assert_array_equal(valid[0], [True, True, False, False])
    np.testing.assert_array_equal(is_pos[0], [True, False, False, False])
