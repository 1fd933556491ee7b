"""Matching of anchors / proposals to ground-truth boxes by IoU thresholds."""

from __future__ import annotations

from keras import ops

from caesar_mrcnn.modeling.box_ops import pairwise_iou

POSITIVE, NEGATIVE, IGNORE = 1, 0, -1


def masked_iou(boxes, gt_boxes, gt_valid):
    """IoU ``[B, N, G]`` of boxes ``[B or 1, N, 4]`` with GT ``[B, G, 4]``; -1 for padding GT."""
    iou = pairwise_iou(boxes, gt_boxes)
    return ops.where(gt_valid[:, None, :], iou, -1.0)


def match(iou, fg_threshold: float, bg_threshold: float, allow_low_quality: bool = False,
          valid=None):
    """Label each box positive / negative / ignored from its IoU with every GT box.

    Parameters
    ----------
    iou : ``[B, N, G]``
        IoU matrix, -1 for padding GT (see :func:`masked_iou`).
    fg_threshold : float
        ``max IoU >= fg_threshold`` -> positive.
    bg_threshold : float
        ``max IoU < bg_threshold`` -> negative; in between -> ignored.
    allow_low_quality : bool
        Also make positive, for each GT, the boxes with its highest IoU (ties included, IoU
        > 0), so that every GT has at least one positive anchor (used by the RPN).
    valid : bool ``[B, N]``, optional
        Boxes that are padding are ignored.

    Returns
    -------
    matched : int32 ``[B, N]``
        Index of the best GT of each box (meaningful for positives).
    labels : int32 ``[B, N]``
        1 positive, 0 negative, -1 ignored.
    """
    max_iou = ops.max(iou, axis=-1)
    matched = ops.cast(ops.argmax(iou, axis=-1), "int32")
    labels = ops.where(max_iou >= fg_threshold, POSITIVE,
                       ops.where(max_iou < bg_threshold, NEGATIVE, IGNORE))
    if allow_low_quality:
        best_per_gt = ops.max(iou, axis=1, keepdims=True)
        is_best = (iou == best_per_gt) & (best_per_gt > 0.0)
        labels = ops.where(ops.any(is_best, axis=-1), POSITIVE, labels)
    if valid is not None:
        labels = ops.where(valid, labels, IGNORE)
    return matched, ops.cast(labels, "int32")
