"""Non-maximum suppression with static output shapes, and the final detections."""

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
    indices, num_valid = tf.map_fn(
        lambda args: _greedy_nms(args[0], args[1], max_output, iou_threshold, score_threshold),
        (shifted, scores), fn_output_signature=(tf.TensorSpec((max_output,), tf.int32),
                                                tf.TensorSpec((), tf.int32)))
    valid = ops.arange(max_output)[None, :] < ops.cast(num_valid, "int32")[:, None]
    indices = ops.where(valid, ops.cast(indices, "int32"), 0)
    return indices, valid


def _greedy_nms(boxes, scores, max_output: int, iou_threshold: float,
                score_threshold: float):
    """Greedy NMS of one image by TensorFlow's single-kernel op, padded to ``max_output``.

    The batched ``tf.image.non_max_suppression_padded`` builds its tiled algorithm from many
    small operations: it took 2.4 s of the 4.6 s of tracing the detector and more CPU time per
    call than the one kernel, for the same selection.
    """
    score_threshold = max(float(score_threshold), -3.0e38)  # the kernel wants a finite value
    indices, count = tf.raw_ops.NonMaxSuppressionV4(
        boxes=boxes, scores=scores, max_output_size=max_output, iou_threshold=iou_threshold,
        score_threshold=score_threshold, pad_to_max_output_size=True)
    return indices, count


def objectness_detections(boxes, probs, proposal_valid, max_detections: int,
                          iou_threshold: float, score_threshold: float):
    """Final detections decided by objectness, one per object whatever its class.

    A proposal's score is its objectness, the probability that it holds a source of any class
    (the sum of the foreground class probabilities, ``1 - p(background)``): a source the
    network is sure of is kept even when its class probabilities split between classes.
    Its class is the most probable foreground class and its box that class's regression.
    NMS is class-agnostic, so one object never comes out twice under two classes.

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
        NMS overlap, and minimum objectness.

    Returns
    -------
    dict
        ``boxes [B, D, 4]``, ``scores [B, D]`` (objectness), ``classes [B, D]`` int32 (1-based,
        0 for padding), ``probs [B, D, K - 1]`` (foreground class probabilities, summing to
        the score), ``valid [B, D]`` bool. Padding slots hold zeros.
    """
    probs = ops.cast(probs, "float32")
    r = probs.shape[1]
    fg = probs[:, :, 1:]
    # The sum keeps precision where p(background) is within float32 rounding of 1.
    scores = ops.where(proposal_valid, ops.sum(fg, axis=-1), -1.0)
    classes = ops.cast(ops.argmax(fg, axis=-1), "int32") + 1
    pick = ops.broadcast_to(classes[:, :, None, None], (ops.shape(probs)[0], r, 1, 4))
    class_boxes = ops.take_along_axis(ops.cast(boxes, "float32"), pick, axis=2)[:, :, 0]
    indices, valid = grouped_nms(class_boxes, scores, ops.zeros((r,), "int32"),
                                 max_detections, iou_threshold, score_threshold)
    out_probs = ops.take_along_axis(fg, indices[..., None], axis=1)
    return {
        "boxes": ops.where(valid[..., None],
                           ops.take_along_axis(class_boxes, indices[..., None], axis=1), 0.0),
        "scores": ops.where(valid, ops.take_along_axis(scores, indices, axis=1), 0.0),
        "classes": ops.where(valid, ops.take_along_axis(classes, indices, axis=1), 0),
        "probs": ops.where(valid[..., None], out_probs, 0.0),
        "valid": valid,
    }
