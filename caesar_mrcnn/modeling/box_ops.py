"""Box arithmetic on ``(y0, x0, y1, x1)`` boxes in pixels (end-exclusive, continuous).

Pixel ``i`` covers ``[i, i + 1)``, so a box ``(0, 0, 2, 3)`` spans 2 rows and 3 columns and
its centre is ``(1.0, 1.5)``. Deltas follow the usual R-CNN parametrisation
``(dy, dx, dh, dw) = (wy*(cy - cya)/ha, wx*(cx - cxa)/wa, wh*log(h/ha), ww*log(w/wa))``.
"""

from __future__ import annotations

import math

from keras import ops

DEFAULT_SCALE_CLIP = math.log(1000.0 / 16.0)
"""Largest ``dh``/``dw`` accepted by :func:`decode_boxes` (exp(4.1) ~ 62x the anchor)."""


def _hw_centre(boxes):
    h = boxes[..., 2] - boxes[..., 0]
    w = boxes[..., 3] - boxes[..., 1]
    return h, w, boxes[..., 0] + 0.5 * h, boxes[..., 1] + 0.5 * w


def encode_boxes(boxes, anchors, weights=(1.0, 1.0, 1.0, 1.0)):
    """Deltas ``[..., 4]`` that turn ``anchors`` into ``boxes`` (both ``[..., 4]`` pixels).

    Degenerate (zero-size) boxes are floored at 1e-6 px so the logarithm stays finite.
    """
    boxes = ops.cast(boxes, "float32")
    anchors = ops.cast(anchors, "float32")
    h, w, cy, cx = _hw_centre(boxes)
    ha, wa, cya, cxa = _hw_centre(anchors)
    ha = ops.maximum(ha, 1e-6)
    wa = ops.maximum(wa, 1e-6)
    wy, wx, wh, ww = weights
    return ops.stack(
        [
            wy * (cy - cya) / ha,
            wx * (cx - cxa) / wa,
            wh * ops.log(ops.maximum(h, 1e-6) / ha),
            ww * ops.log(ops.maximum(w, 1e-6) / wa),
        ],
        axis=-1,
    )


def decode_boxes(deltas, anchors, weights=(1.0, 1.0, 1.0, 1.0), scale_clip=DEFAULT_SCALE_CLIP):
    """Boxes ``[..., 4]`` (pixels) from ``deltas`` relative to ``anchors``.

    ``dh``/``dw`` (after dividing by their weights) are clipped at ``scale_clip`` so that a
    wild prediction cannot overflow ``exp``.
    """
    deltas = ops.cast(deltas, "float32")
    anchors = ops.cast(anchors, "float32")
    ha, wa, cya, cxa = _hw_centre(anchors)
    wy, wx, wh, ww = weights
    dy = deltas[..., 0] / wy
    dx = deltas[..., 1] / wx
    dh = ops.minimum(deltas[..., 2] / wh, scale_clip)
    dw = ops.minimum(deltas[..., 3] / ww, scale_clip)
    cy = cya + dy * ha
    cx = cxa + dx * wa
    h = ha * ops.exp(dh)
    w = wa * ops.exp(dw)
    return ops.stack([cy - 0.5 * h, cx - 0.5 * w, cy + 0.5 * h, cx + 0.5 * w], axis=-1)


def clip_boxes(boxes, height, width):
    """Clip ``[..., 4]`` pixel boxes to the image ``[0, height] x [0, width]``."""
    height = ops.cast(height, boxes.dtype)
    width = ops.cast(width, boxes.dtype)
    y0 = ops.clip(boxes[..., 0], 0.0, height)
    x0 = ops.clip(boxes[..., 1], 0.0, width)
    y1 = ops.clip(boxes[..., 2], 0.0, height)
    x1 = ops.clip(boxes[..., 3], 0.0, width)
    return ops.stack([y0, x0, y1, x1], axis=-1)


def box_area(boxes):
    """Area in px^2 of ``[..., 4]`` boxes (0 for inverted boxes)."""
    h = ops.maximum(boxes[..., 2] - boxes[..., 0], 0.0)
    w = ops.maximum(boxes[..., 3] - boxes[..., 1], 0.0)
    return h * w


def pairwise_iou(boxes_a, boxes_b):
    """Intersection over union of every pair: ``[..., N, 4]`` x ``[..., M, 4]`` -> ``[..., N, M]``.

    Pairs whose union is empty get IoU 0.
    """
    boxes_a = ops.cast(boxes_a, "float32")
    boxes_b = ops.cast(boxes_b, "float32")
    a = ops.expand_dims(boxes_a, -2)
    b = ops.expand_dims(boxes_b, -3)
    ih = ops.maximum(ops.minimum(a[..., 2], b[..., 2]) - ops.maximum(a[..., 0], b[..., 0]), 0.0)
    iw = ops.maximum(ops.minimum(a[..., 3], b[..., 3]) - ops.maximum(a[..., 1], b[..., 1]), 0.0)
    inter = ih * iw
    union = ops.expand_dims(box_area(boxes_a), -1) + ops.expand_dims(box_area(boxes_b), -2) - inter
    return ops.where(union > 0.0, inter / ops.maximum(union, 1e-12), 0.0)
