"""Grouped NMS and per-class detections."""

from __future__ import annotations

import numpy as np

from caesar_mrcnn.modeling.nms import grouped_nms, per_class_detections


def test_grouped_nms_suppresses_within_group_only():
    boxes = np.array([[[0, 0, 10, 10], [1, 1, 11, 11], [0, 0, 10, 10], [50, 50, 60, 60]]],
                     np.float32)
    scores = np.array([[0.9, 0.8, 0.7, 0.1]], np.float32)
    idx, valid = grouped_nms(boxes, scores, np.array([0, 0, 0, 0]), 4, 0.5)
    np.testing.assert_array_equal(idx.numpy(), [[0, 3, 0, 0]])
    np.testing.assert_array_equal(valid.numpy(), [[True, True, False, False]])
    idx, valid = grouped_nms(boxes, scores, np.array([0, 0, 1, 1]), 4, 0.5)
    np.testing.assert_array_equal(idx.numpy()[0, :3], [0, 2, 3])
    np.testing.assert_array_equal(valid.numpy(), [[True, True, True, False]])


def test_per_class_keeps_overlapping_boxes_of_different_classes():
    # 2 proposals x 3 classes (0 = background); both proposals cover the same source.
    boxes = np.zeros((1, 2, 3, 4), np.float32)
    boxes[0, 0, :] = [10, 10, 30, 30]
    boxes[0, 1, :] = [11, 11, 31, 31]
    probs = np.array([[[0.1, 0.8, 0.1], [0.1, 0.2, 0.7]]], np.float32)
    det = per_class_detections(boxes, probs, np.array([[True, True]]), 5, 0.5, 0.15)
    classes = det["classes"].numpy()[0]
    scores = det["scores"].numpy()[0]
    valid = det["valid"].numpy()[0]
    # class 1: 0.8 (prop 0) suppresses 0.2 (prop 1); class 2: 0.7 (prop 1) kept; 0.1 < 0.15.
    np.testing.assert_array_equal(valid, [True, True, False, False, False])
    np.testing.assert_array_equal(classes, [1, 2, 0, 0, 0])
    np.testing.assert_allclose(scores[:2], [0.8, 0.7])
    np.testing.assert_allclose(det["boxes"].numpy()[0, :2], [[10, 10, 30, 30], [11, 11, 31, 31]])


def test_padding_proposals_are_never_detected():
    boxes = np.tile(np.array([0, 0, 5, 5], np.float32), (1, 2, 2, 1))
    probs = np.array([[[0.0, 1.0], [0.0, 1.0]]], np.float32)
    det = per_class_detections(boxes, probs, np.array([[False, False]]), 3, 0.5, 0.05)
    assert not det["valid"].numpy().any()
    assert (det["classes"].numpy() == 0).all()
