"""Training targets: RPN anchor labels and deltas, sampled ROIs with class/box/mask targets."""

from __future__ import annotations

from keras import ops

from caesar_mrcnn.modeling.box_ops import encode_boxes
from caesar_mrcnn.modeling.mask_ops import crop_masks
from caesar_mrcnn.modeling.matcher import masked_iou, match
from caesar_mrcnn.modeling.sampling import sample_indices, sample_mask

ROI_BOX_WEIGHTS = (10.0, 10.0, 5.0, 5.0)
"""Delta weights of the second-stage box regression."""


def rpn_targets(anchors, gt_boxes, gt_classes, fg_iou: float, bg_iou: float,
                num_samples: int, positive_fraction: float, seed=None):
    """Sampled anchor labels and regression targets for the RPN.

    Parameters
    ----------
    anchors : ``[N, 4]`` pixels
    gt_boxes : ``[B, G, 4]`` pixels
    gt_classes : int ``[B, G]`` (0 = padding)

    Returns
    -------
    labels : int32 ``[B, N]``
        1 sampled positive, 0 sampled negative, -1 not sampled.
    deltas : float32 ``[B, N, 4]``
        Target deltas (weights 1) to the matched GT box of each anchor.
    """
    anchors = ops.convert_to_tensor(anchors, "float32")
    gt_boxes = ops.cast(gt_boxes, "float32")
    iou = masked_iou(anchors[None], gt_boxes, gt_classes > 0)
    matched, labels = match(iou, fg_iou, bg_iou, allow_low_quality=True)
    pos, neg = sample_mask(labels, num_samples, positive_fraction, seed)
    sampled = ops.where(pos, 1, ops.where(neg, 0, -1))
    matched_boxes = ops.take_along_axis(gt_boxes, matched[..., None], axis=1)
    deltas = encode_boxes(matched_boxes, anchors[None])
    return ops.cast(sampled, "int32"), deltas


def roi_targets(proposals, proposal_valid, gt_boxes, gt_classes, fg_iou: float, bg_iou: float,
                num_samples: int, positive_fraction: float, seed=None):
    """Sample ROIs among proposals + GT boxes and attach their targets.

    Parameters
    ----------
    proposals : ``[B, P, 4]`` pixels
    proposal_valid : bool ``[B, P]``
    gt_boxes : ``[B, G, 4]`` pixels
    gt_classes : int ``[B, G]`` (0 = padding)
    fg_iou, bg_iou : float
        IoU >= fg_iou -> foreground; < bg_iou -> background; in between ignored.
    num_samples, positive_fraction
        ROIs per image and largest foreground fraction.

    Returns
    -------
    dict
        ``rois [B, n, 4]``, ``classes [B, n]`` int32 (0 = background), ``gt_index [B, n]``,
        ``box_targets [B, n, 4]`` (weights :data:`ROI_BOX_WEIGHTS`), ``is_positive`` and
        ``valid`` bool ``[B, n]``. Positives occupy the first slots.
    """
    proposals = ops.cast(proposals, "float32")
    gt_boxes = ops.cast(gt_boxes, "float32")
    gt_classes = ops.cast(gt_classes, "int32")
    gt_valid = gt_classes > 0
    # GT boxes join the candidates so early training always has positives.
    candidates = ops.concatenate([proposals, gt_boxes], axis=1)
    cand_valid = ops.concatenate([proposal_valid, gt_valid], axis=1)
    iou = masked_iou(candidates, gt_boxes, gt_valid)
    matched, labels = match(iou, fg_iou, bg_iou, valid=cand_valid)
    indices, is_pos, valid = sample_indices(labels, num_samples, positive_fraction, seed)
    rois = ops.take_along_axis(candidates, indices[..., None], axis=1)
    gt_index = ops.take_along_axis(matched, indices, axis=1)
    classes = ops.where(is_pos, ops.take_along_axis(gt_classes, gt_index, axis=1), 0)
    matched_boxes = ops.take_along_axis(gt_boxes, gt_index[..., None], axis=1)
    box_targets = encode_boxes(matched_boxes, rois, ROI_BOX_WEIGHTS)
    return {"rois": rois, "classes": classes, "gt_index": gt_index,
            "box_targets": box_targets, "is_positive": is_pos, "valid": valid}


def mask_targets(gt_masks, gt_index, rois, size: int, impl: str = "crop_and_resize"):
    """Binary mask targets: each ROI's matched GT mask resampled into the ROI, threshold 0.5.

    Parameters
    ----------
    gt_masks : ``[B, G, H, W]`` full-image masks
    gt_index : int ``[B, n]`` matched GT per ROI
    rois : ``[B, n, 4]`` pixels
    size : int
        Target side (28).

    Returns
    -------
    float32 ``[B, n, size, size]`` of 0/1.
    """
    shape = ops.shape(gt_masks)
    b, g = shape[0], gt_masks.shape[1]
    n = rois.shape[1]
    flat = ops.reshape(gt_masks, (-1, shape[2], shape[3]))
    mask_idx = ops.arange(b, dtype="int32")[:, None] * g + ops.cast(gt_index, "int32")
    crops = crop_masks(flat, ops.reshape(mask_idx, (-1,)), ops.reshape(rois, (-1, 4)), size,
                       impl)
    return ops.reshape(ops.cast(crops >= 0.5, "float32"), (b, n, size, size))
