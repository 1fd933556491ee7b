"""Box encoding/decoding, clipping, area and IoU against numpy."""

from __future__ import annotations

import math

import numpy as np
import pytest
from modeling_reference import np_iou

from caesar_mrcnn.modeling.box_ops import (
    box_area,
    clip_boxes,
    decode_boxes,
    encode_boxes,
    pairwise_iou,
)


def random_boxes(rng, n, size=100.0):
    yx = rng.uniform(0, size, (n, 2))
    hw = rng.uniform(1, size / 2, (n, 2))
    return np.concatenate([yx, yx + hw], axis=1).astype(np.float32)


def test_encode_known_values():
    anchor = np.array([[0, 0, 10, 10]], np.float32)
    box = np.array([[5, 5, 15, 25]], np.float32)
    np.testing.assert_allclose(encode_boxes(box, anchor).numpy(),
                               [[0.5, 1.0, 0.0, math.log(2)]], rtol=1e-6)
    np.testing.assert_allclose(encode_boxes(box, anchor, (10, 10, 5, 5)).numpy(),
                               [[5.0, 10.0, 0.0, 5 * math.log(2)]], rtol=1e-6)


@pytest.mark.parametrize("weights", [(1.0, 1.0, 1.0, 1.0), (10.0, 10.0, 5.0, 5.0)])
def test_encode_decode_round_trip(weights):
    rng = np.random.default_rng(1)
    anchors, boxes = random_boxes(rng, 50), random_boxes(rng, 50)
    deltas = encode_boxes(boxes, anchors, weights)
    np.testing.assert_allclose(decode_boxes(deltas, anchors, weights).numpy(), boxes,
                               rtol=1e-4, atol=1e-3)


def test_decode_clips_scale():
    anchor = np.array([[0, 0, 16, 16]], np.float32)
    out = decode_boxes(np.array([[0, 0, 100.0, -100.0]], np.float32), anchor).numpy()[0]
    # dh clipped at log(1000/16): height becomes 1000 px, centred on the anchor centre.
    np.testing.assert_allclose(out[[0, 2]], [8 - 500, 8 + 500], rtol=1e-5)
    assert 0 <= out[3] - out[1] < 1e-6


def test_clip_and_area():
    boxes = np.array([[-5, 3, 12, 70], [2, 2, 1, 5]], np.float32)
    clipped = clip_boxes(boxes, 10, 64).numpy()
    np.testing.assert_array_equal(clipped, [[0, 3, 10, 64], [2, 2, 1, 5]])
    np.testing.assert_array_equal(box_area(clipped).numpy(), [610, 0])


def test_iou_matches_numpy():
    rng = np.random.default_rng(2)
    a, b = random_boxes(rng, 7), random_boxes(rng, 5)
    b[0] = a[0]  # identical pair -> 1
    b[1] = [200, 200, 210, 210]  # disjoint -> 0
    got = pairwise_iou(a, b).numpy()
    np.testing.assert_allclose(got, np_iou(a, b), rtol=1e-5, atol=1e-7)
    assert got[0, 0] == pytest.approx(1.0)
    assert (got[:, 1] == 0).all()


def test_iou_batched_and_degenerate():
    a = np.array([[[0, 0, 2, 2], [0, 0, 0, 0]]], np.float32)
    b = np.array([[[1, 1, 3, 3], [0, 0, 0, 0]]], np.float32)
    got = pairwise_iou(a, b).numpy()
    assert got.shape == (1, 2, 2)
    np.testing.assert_allclose(got[0], [[1 / 7, 0], [0, 0]], rtol=1e-6)
