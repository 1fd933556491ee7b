"""Grouped NMS and the final detections decided by objectness."""

from __future__ import annotations

import numpy as np
import pytest

from caesar_mrcnn.modeling.nms import grouped_nms, objectness_detections


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


def iou(a, b):
    ih = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iw = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ih * iw
    area = lambda r: (r[2] - r[0]) * (r[3] - r[1])
    return inter / (area(a) + area(b) - inter)


def reference_objectness(boxes, probs, valid, max_det, iou_thr, score_thr):
    """Plain NumPy: objectness = sum of foreground probabilities, argmax class, greedy NMS."""
    fg = probs[0, :, 1:].astype(np.float64)
    scores = np.where(valid[0], fg.sum(axis=1), -1.0)
    classes = fg.argmax(axis=1) + 1
    cboxes = boxes[0, np.arange(len(classes)), classes]
    kept = []
    for i in np.argsort(-scores, kind="stable"):
        if scores[i] <= score_thr:
            break
        if all(iou(cboxes[i], cboxes[j]) <= iou_thr for j in kept):
            kept.append(i)
    return kept[:max_det], scores, classes, cboxes


def test_grouped_nms_matches_greedy_nms_per_group_in_a_graph():
    """A batch of two images, many overlapping boxes in three groups, against plain greedy
    NMS done group by group; in a traced graph, as the detector runs it."""
    import tensorflow as tf

    rng = np.random.default_rng(7)
    b, n, max_out, thr = 2, 300, 40, 0.5
    y0, x0 = rng.uniform(0, 100, (2, b, n))
    boxes = np.stack([y0, x0, y0 + rng.uniform(4, 30, (b, n)), x0 + rng.uniform(4, 30, (b, n))],
                     axis=-1).astype(np.float32)
    scores = rng.random((b, n)).astype(np.float32)
    groups = rng.integers(0, 3, n)
    idx, valid = tf.function(lambda bx, sc: grouped_nms(bx, sc, groups, max_out, thr, 0.2))(
        boxes, scores)
    for i in range(b):
        kept = []
        for j in np.argsort(-scores[i], kind="stable"):
            if scores[i, j] > 0.2 and all(groups[k] != groups[j]
                                          or iou(boxes[i, j], boxes[i, k]) <= thr
                                          for k in kept):
                kept.append(j)
        kept = kept[:max_out]
        assert valid.numpy()[i].sum() == len(kept)
        np.testing.assert_array_equal(idx.numpy()[i, :len(kept)], kept)
        assert (idx.numpy()[i, len(kept):] == 0).all()


def test_a_certain_source_of_uncertain_class_is_kept():
    # Measured on a real 164-sigma source: no class reaches 0.5, but background is 0.
    boxes = np.tile(np.array([10, 10, 30, 30], np.float32), (1, 1, 6, 1))
    probs = np.array([[[0.0, 0.02, 0.48, 0.38, 0.12, 0.0]]], np.float32)
    det = objectness_detections(boxes, probs, np.array([[True]]), 3, 0.5, 0.05)
    assert det["valid"].numpy()[0, 0]
    assert det["scores"].numpy()[0, 0] == pytest.approx(1.0)
    assert det["classes"].numpy()[0, 0] == 2  # the most probable foreground class
    np.testing.assert_allclose(det["probs"].numpy()[0, 0], [0.02, 0.48, 0.38, 0.12, 0.0],
                               atol=1e-7)


def test_one_object_is_never_kept_twice_under_two_classes():
    # Two proposals on the same source, each most sure of a different class.
    boxes = np.zeros((1, 2, 3, 4), np.float32)
    boxes[0, 0, :] = [10, 10, 30, 30]
    boxes[0, 1, :] = [11, 11, 31, 31]
    probs = np.array([[[0.1, 0.8, 0.1], [0.2, 0.1, 0.7]]], np.float32)
    det = objectness_detections(boxes, probs, np.array([[True, True]]), 5, 0.5, 0.15)
    np.testing.assert_array_equal(det["valid"].numpy()[0], [True, False, False, False, False])
    assert det["classes"].numpy()[0, 0] == 1
    assert det["scores"].numpy()[0, 0] == pytest.approx(0.9)
    assert (det["probs"].numpy()[0, 1:] == 0).all() and (det["classes"].numpy()[0, 1:] == 0).all()


def test_the_box_is_the_regression_of_the_chosen_class():
    boxes = np.zeros((1, 1, 3, 4), np.float32)
    boxes[0, 0] = [[0, 0, 1, 1], [10, 10, 20, 20], [40, 40, 60, 60]]
    probs = np.array([[[0.1, 0.3, 0.6]]], np.float32)
    det = objectness_detections(boxes, probs, np.array([[True]]), 2, 0.5, 0.05)
    np.testing.assert_allclose(det["boxes"].numpy()[0, 0], [40, 40, 60, 60])


def test_objectness_detections_match_a_plain_reference():
    rng = np.random.default_rng(3)
    r, k = 40, 6
    y0 = rng.uniform(0, 80, (1, r, k, 1))
    x0 = rng.uniform(0, 80, (1, r, k, 1))
    hw = rng.uniform(5, 25, (1, r, k, 2))
    boxes = np.concatenate([y0, x0, y0 + hw[..., :1], x0 + hw[..., 1:]], -1).astype(np.float32)
    logits = rng.normal(0, 2, (1, r, k))
    probs = (np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)).astype(np.float32)
    valid = rng.random((1, r)) > 0.1
    det = objectness_detections(boxes, probs, valid, 30, 0.5, 0.3)
    kept, scores, classes, cboxes = reference_objectness(boxes, probs, valid, 30, 0.5, 0.3)
    n = int(det["valid"].numpy()[0].sum())
    assert n == len(kept) > 3
    np.testing.assert_allclose(det["scores"].numpy()[0, :n], scores[kept], rtol=1e-6)
    np.testing.assert_array_equal(det["classes"].numpy()[0, :n], classes[kept])
    np.testing.assert_allclose(det["boxes"].numpy()[0, :n], cboxes[kept], rtol=1e-6)
    np.testing.assert_allclose(det["probs"].numpy()[0, :n].sum(-1), scores[kept], rtol=1e-5)


def test_padding_proposals_are_never_detected():
    boxes = np.tile(np.array([0, 0, 5, 5], np.float32), (1, 2, 2, 1))
    probs = np.array([[[0.0, 1.0], [0.0, 1.0]]], np.float32)
    det = objectness_detections(boxes, probs, np.array([[False, False]]), 3, 0.5, 0.05)
    assert not det["valid"].numpy().any()
    assert (det["classes"].numpy() == 0).all()
