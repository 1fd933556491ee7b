"""Region proposal network: head shared over pyramid levels, and proposal generation."""

from __future__ import annotations

from collections.abc import Sequence

from keras import ops

from caesar_mrcnn.modeling.box_ops import clip_boxes, decode_boxes
from caesar_mrcnn.modeling.nms import grouped_nms


def build_rpn_head(in_channels: int, channels: int, num_anchors: int, name: str = "rpn_head"):
    """RPN head: a 3x3 conv + ReLU, then 1x1 convs for objectness and box deltas.

    Returns
    -------
    keras.Model
        ``[B, H, W, in_channels]`` -> ``{"logits": [B, H, W, A], "deltas": [B, H, W, 4A]}``
        (float32).
    """
    import keras

    init = keras.initializers.RandomNormal(stddev=0.01)
    x = inputs = keras.Input((None, None, in_channels), name="feature")
    x = keras.layers.Conv2D(channels, 3, padding="same", activation="relu",
                            kernel_initializer=init, name="rpn_conv")(x)
    logits = keras.layers.Conv2D(num_anchors, 1, kernel_initializer=init, dtype="float32",
                                 name="rpn_objectness")(x)
    deltas = keras.layers.Conv2D(num_anchors * 4, 1, kernel_initializer=init, dtype="float32",
                                 name="rpn_deltas")(x)
    return keras.Model(inputs, {"logits": logits, "deltas": deltas}, name=name)


def flatten_rpn_outputs(level_outputs: Sequence[dict]):
    """Concatenate per-level RPN outputs in anchor order (level, row, column, ratio).

    Returns
    -------
    logits : float32 ``[B, N]``
    deltas : float32 ``[B, N, 4]``
    """
    logits, deltas = [], []
    for out in level_outputs:
        lg = ops.cast(out["logits"], "float32")
        b = ops.shape(lg)[0]
        h, w, a = lg.shape[1], lg.shape[2], lg.shape[3]
        logits.append(ops.reshape(lg, (b, h * w * a)))
        deltas.append(ops.reshape(ops.cast(out["deltas"], "float32"), (b, h * w * a, 4)))
    return ops.concatenate(logits, axis=1), ops.concatenate(deltas, axis=1)


def generate_proposals(logits, deltas, anchors, level_counts: Sequence[int], image_size,
                       pre_nms_topk: int, post_nms_topk: int, nms_iou: float):
    """Proposals: per-level top-k, decode, clip, NMS within each level, overall top-k.

    Parameters
    ----------
    logits : ``[B, N]``
        Objectness logits in anchor order.
    deltas : ``[B, N, 4]``
        Box deltas (weights 1) in anchor order.
    anchors : ``[N, 4]``
        Pixel anchors.
    level_counts : sequence of int
        Anchors per level (static).
    image_size : (int, int)
        Image height and width in pixels (proposals are clipped to it).
    pre_nms_topk, post_nms_topk : int
        Candidates kept per level before NMS, and proposals kept per image after.
    nms_iou : float
        NMS overlap threshold.

    Returns
    -------
    boxes : float32 ``[B, post_nms_topk, 4]``
    scores : float32 ``[B, post_nms_topk]`` objectness logits
    valid : bool ``[B, post_nms_topk]``
    """
    anchors = ops.convert_to_tensor(anchors, "float32")
    boxes, scores, groups = [], [], []
    start = 0
    for level, count in enumerate(level_counts):
        k = min(pre_nms_topk, count)
        lvl_logits = logits[:, start:start + count]
        top_scores, top_idx = ops.top_k(lvl_logits, k)
        lvl_deltas = ops.take_along_axis(deltas[:, start:start + count], top_idx[..., None],
                                         axis=1)
        lvl_anchors = ops.take(anchors[start:start + count], top_idx, axis=0)
        boxes.append(decode_boxes(lvl_deltas, lvl_anchors))
        scores.append(top_scores)
        groups.append(ops.full((k,), level, dtype="int32"))
        start += count
    boxes = clip_boxes(ops.concatenate(boxes, 1), image_size[0], image_size[1])
    scores = ops.concatenate(scores, 1)
    groups = ops.concatenate(groups, 0)
    keep, valid = grouped_nms(boxes, scores, groups, post_nms_topk, nms_iou)
    out_boxes = ops.take_along_axis(boxes, keep[..., None], axis=1)
    out_scores = ops.take_along_axis(scores, keep, axis=1)
    return (ops.where(valid[..., None], out_boxes, 0.0), ops.where(valid, out_scores, 0.0),
            valid)
