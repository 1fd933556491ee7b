"""Mask R-CNN losses (float32 scalars, whatever the compute dtype of the logits)."""

from __future__ import annotations

from keras import ops


def smooth_l1(x, beta: float):
    """Elementwise smooth L1 (Huber / beta): quadratic below ``beta``, linear above; L1 if 0."""
    ax = ops.abs(x)
    if beta <= 0.0:
        return ax
    return ops.where(ax < beta, 0.5 * ax * ax / beta, ax - 0.5 * beta)


def sigmoid_bce(logits, targets):
    """Elementwise binary cross-entropy with logits (numerically stable)."""
    x = ops.cast(logits, "float32")
    z = ops.cast(targets, "float32")
    return ops.maximum(x, 0.0) - x * z + ops.log1p(ops.exp(-ops.abs(x)))


def _safe_div(a, b):
    return a / ops.maximum(ops.cast(b, "float32"), 1.0)


def rpn_losses(logits, deltas, labels, target_deltas, beta: float):
    """RPN objectness BCE and box smooth-L1, both averaged over the sampled anchors.

    Parameters
    ----------
    logits : ``[B, N]``; deltas, target_deltas : ``[B, N, 4]``
    labels : int ``[B, N]``: 1 sampled positive, 0 sampled negative, -1 not sampled.

    Returns
    -------
    (cls_loss, box_loss) float32 scalars.
    """
    sampled = ops.cast(labels >= 0, "float32")
    positive = ops.cast(labels == 1, "float32")
    count = ops.sum(sampled)
    cls = _safe_div(ops.sum(sigmoid_bce(logits, positive) * sampled), count)
    err = smooth_l1(ops.cast(deltas, "float32") - ops.cast(target_deltas, "float32"), beta)
    box = _safe_div(ops.sum(ops.sum(err, axis=-1) * positive), count)
    return cls, box


def classification_loss(logits, classes, valid):
    """Softmax cross-entropy ``[B, n, K]`` vs int classes ``[B, n]``, mean over valid ROIs."""
    logp = ops.log_softmax(ops.cast(logits, "float32"), axis=-1)
    nll = -ops.take_along_axis(logp, ops.cast(classes, "int32")[..., None], axis=-1)[..., 0]
    w = ops.cast(valid, "float32")
    return _safe_div(ops.sum(nll * w), ops.sum(w))


def box_regression_loss(deltas, classes, targets, is_positive, valid, beta: float):
    """Class-specific smooth L1 on positive ROIs, normalised by the number of sampled ROIs.

    Parameters
    ----------
    deltas : ``[B, n, K, 4]`` predicted; targets : ``[B, n, 4]``
    classes : int ``[B, n]`` (GT class of each ROI, selects the deltas)
    """
    deltas = ops.cast(deltas, "float32")
    idx = ops.cast(classes, "int32")[..., None, None]
    chosen = ops.take_along_axis(deltas, ops.repeat(idx, 4, axis=-1), axis=2)[:, :, 0]
    err = ops.sum(smooth_l1(chosen - ops.cast(targets, "float32"), beta), axis=-1)
    return _safe_div(ops.sum(err * ops.cast(is_positive, "float32")),
                     ops.sum(ops.cast(valid, "float32")))


def mask_loss(mask_logits, classes, targets, is_positive):
    """Per-pixel BCE of the GT-class mask channel, mean over positive ROIs and pixels.

    Parameters
    ----------
    mask_logits : ``[B, m, S, S, K]``
    classes : int ``[B, m]``
    targets : ``[B, m, S, S]`` of 0/1
    is_positive : bool ``[B, m]``
    """
    logits = ops.cast(mask_logits, "float32")
    idx = ops.cast(classes, "int32")[:, :, None, None, None]
    s1, s2 = logits.shape[2], logits.shape[3]
    idx = ops.broadcast_to(idx, (ops.shape(logits)[0], logits.shape[1], s1, s2, 1))
    chosen = ops.take_along_axis(logits, idx, axis=-1)[..., 0]
    per_roi = ops.mean(sigmoid_bce(chosen, targets), axis=(2, 3))
    w = ops.cast(is_positive, "float32")
    return _safe_div(ops.sum(per_roi * w), ops.sum(w))
