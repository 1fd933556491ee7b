"""Non-maximum suppression with static output shapes, grouped by level or by class."""

from __future__ import annotations

import tensorflow as tf
from keras import ops


def grouped_nms(boxes, scores, groups, max_output: int, iou_threshold: float,
                score_threshold: float = float("-inf")):
    """NMS inside each group (pyramid level or class), padded to ``max_output`` per image.

    Boxes of different groups never suppress each other: each group is shifted to its own
    region of the plane before one batched NMS call.

    Parameters
    ----------
    boxes : tensor ``[B, N, 4]``
        Pixel boxes (y0, x0, y1, x1).
    scores : tensor ``[B, N]``
        Higher is better; boxes with ``score <= score_threshold`` are never selected.
    groups : int tensor ``[B, N]`` or ``[N]``
        Group id of each box (>= 0).
    max_output : int
        Number of output slots per image.
    iou_threshold : float
        Boxes overlapping a kept box of the same group by more than this are dropped.
    score_threshold : float
        Minimum score.

    Returns
    -------
    indices : int32 ``[B, max_output]``
        Indices into N, best first; padding slots hold 0.
    valid : bool ``[B, max_output]``
        Which slots hold a kept box.
    """
    boxes = ops.cast(boxes, "float32")
    scores = ops.cast(scores, "float32")
    groups = ops.cast(groups, "float32")
    if len(groups.shape) == 1:
        groups = ops.broadcast_to(groups[None], ops.shape(scores))
    # Offsets larger than any coordinate keep groups disjoint.
    span = ops.max(ops.abs(boxes)) * 2.0 + 1.0
    shifted = boxes + (groups * span)[..., None]
    indices, num_valid = tf.image.non_max_suppression_padded(
        shifted, scores, max_output, iou_threshold=iou_threshold,
        score_threshold=score_threshold, pad_to_max_output_size=True,
        canonicalized_coordinates=True,
    )
    valid = ops.arange(max_output)[None, :] < ops.cast(num_valid, "int32")[:, None]
    indices = ops.where(valid, ops.cast(indices, "int32"), 0)
    return indices, valid


def per_class_detections(boxes, probs, proposal_valid, max_detections: int,
                         iou_threshold: float, score_threshold: float):
    """Final detections: per-class NMS over class-specific boxes.

    Parameters
    ----------
    boxes : tensor ``[B, R, K, 4]``
        Class-specific pixel boxes of each proposal (K includes background at 0).
    probs : tensor ``[B, R, K]``
        Class probabilities (softmax).
    proposal_valid : bool ``[B, R]``
        Padding proposals are never detected.
    max_detections : int
        Output slots per image D.
    iou_threshold, score_threshold : float
        Per-class NMS overlap and minimum class probability.

    Returns
    -------
    dict
        ``boxes [B, D, 4]``, ``scores [B, D]``, ``classes [B, D]`` int32 (1-based, 0 for
        padding), ``valid [B, D]`` bool. Padding slots hold zeros.
    """
    b = ops.shape(probs)[0]
    r, k = probs.shape[1], probs.shape[2]
    fg_boxes = ops.reshape(boxes[:, :, 1:, :], (b, r * (k - 1), 4))
    fg_scores = ops.where(proposal_valid[..., None], probs[:, :, 1:], -1.0)
    fg_scores = ops.reshape(fg_scores, (b, r * (k - 1)))
    classes = ops.tile(ops.arange(1, k, dtype="int32"), (r,))
    indices, valid = grouped_nms(fg_boxes, fg_scores, classes, max_detections,
                                 iou_threshold, score_threshold)
    out_boxes = ops.take_along_axis(fg_boxes, indices[..., None], axis=1)
    out_scores = ops.take_along_axis(fg_scores, indices, axis=1)
    out_classes = ops.take(classes, indices)
    return {
        "boxes": ops.where(valid[..., None], out_boxes, 0.0),
        "scores": ops.where(valid, out_scores, 0.0),
        "classes": ops.where(valid, out_classes, 0),
        "valid": valid,
    }
