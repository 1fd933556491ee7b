"""RPN head shapes and proposal generation."""

from __future__ import annotations

import numpy as np

from caesar_mrcnn.modeling.rpn import build_rpn_head, flatten_rpn_outputs, generate_proposals


def test_proposals_topk_per_level_and_nms_within_level():
    anchors = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30],  # level 0
                        [0, 0, 10, 10], [40, 40, 60, 60]], np.float32)  # level 1
    logits = np.array([[3.0, 2.0, 1.0, 0.5, 2.5]], np.float32)
    deltas = np.zeros((1, 5, 4), np.float32)
    boxes, scores, valid = generate_proposals(logits, deltas, anchors, [3, 2], (50, 50),
                                              pre_nms_topk=2, post_nms_topk=4, nms_iou=0.5)
    # level 0 keeps its top 2 (anchor 2 dropped), NMS removes anchor 1; level 1 is separate,
    # so its copy of anchor 0 survives. Proposals are clipped to the 50x50 image.
    np.testing.assert_array_equal(valid.numpy(), [[True, True, True, False]])
    np.testing.assert_allclose(boxes.numpy()[0],
                               [[0, 0, 10, 10], [40, 40, 50, 50], [0, 0, 10, 10], [0, 0, 0, 0]])
    np.testing.assert_allclose(scores.numpy()[0], [3.0, 2.5, 0.5, 0.0])


def test_proposals_apply_deltas():
    anchors = np.array([[0, 0, 10, 10]], np.float32)
    deltas = np.array([[[0.5, 0.0, 0.0, np.log(2.0)]]], np.float32)
    boxes, _, _ = generate_proposals(np.zeros((1, 1), np.float32), deltas, anchors, [1],
                                     (100, 100), 10, 1, 0.7)
    np.testing.assert_allclose(boxes.numpy()[0, 0], [5, 0, 15, 15], atol=1e-5)  # x0 = -5 clipped


def test_head_outputs_flatten_in_anchor_order():
    head = build_rpn_head(4, 8, num_anchors=3)
    p2 = np.random.default_rng(0).normal(size=(2, 4, 6, 4)).astype(np.float32)
    p3 = np.zeros((2, 2, 3, 4), np.float32)
    outs = [head(p2), head(p3)]
    logits, deltas = flatten_rpn_outputs(outs)
    assert tuple(logits.shape) == (2, 4 * 6 * 3 + 2 * 3 * 3)
    assert tuple(deltas.shape) == (2, 90, 4)
    # anchor (row 1, column 2, ratio 1) of P2 is flat index (1 * 6 + 2) * 3 + 1
    np.testing.assert_allclose(logits.numpy()[:, 25], outs[0]["logits"].numpy()[:, 1, 2, 1])
    np.testing.assert_allclose(deltas.numpy()[:, 25], outs[0]["deltas"].numpy()[:, 1, 2, 4:8])
