"""Pasting fixed-size ROI masks back onto the image, and cropping image masks into ROIs."""

from __future__ import annotations

from keras import ops

from caesar_mrcnn.modeling.roi_align import roi_align, sample_points


def paste_masks(masks, boxes, height: int, width: int, impl: str = "crop_and_resize"):
    """Resample ``[B, D, M, M]`` box-relative masks onto a ``height x width`` image.

    Mask cell ``(i, j)`` of a box ``(y0, x0, y1, x1)`` has its centre at image coordinate
    ``(y0 + (i + 0.5) * h / M, x0 + (j + 0.5) * w / M)``. Each image pixel centre is mapped
    into mask coordinates and interpolated bilinearly; the mask fades to 0 over half a mask
    cell outside its box and is 0 farther away.

    Parameters
    ----------
    masks : tensor ``[B, D, M, M]``
        Probabilities (or any values) per detection.
    boxes : tensor ``[B, D, 4]``
        Pixel boxes of the detections.
    height, width : int
        Output image size in pixels.

    Returns
    -------
    float32 tensor ``[B, D, height, width]``.
    """
    masks = ops.cast(masks, "float32")
    boxes = ops.cast(boxes, "float32")
    b, d = ops.shape(masks)[0], ops.shape(masks)[1]
    m = masks.shape[2]
    flat_masks = ops.reshape(masks, (-1, m, m, 1))
    # One cell of zeros around the mask: pixels just outside the box fade out smoothly.
    padded = ops.pad(flat_masks, [[0, 0], [1, 1], [1, 1], [0, 0]])
    flat_boxes = ops.reshape(boxes, (-1, 4))
    bh = ops.maximum(flat_boxes[:, 2] - flat_boxes[:, 0], 1e-6)
    bw = ops.maximum(flat_boxes[:, 3] - flat_boxes[:, 1], 1e-6)

    def to_mask(coord, origin, size):  # image coordinate -> padded mask array index
        return (coord - origin) * m / size - 0.5 + 1.0

    starts = ops.stack([to_mask(0.5, flat_boxes[:, 0], bh), to_mask(0.5, flat_boxes[:, 1], bw)],
                       axis=-1)
    ends = ops.stack([to_mask(height - 0.5, flat_boxes[:, 0], bh),
                      to_mask(width - 0.5, flat_boxes[:, 1], bw)], axis=-1)
    box_indices = ops.arange(ops.shape(flat_boxes)[0], dtype="int32")
    out = sample_points(padded, starts, ends, box_indices, (height, width), impl)
    return ops.reshape(out, (b, d, height, width))


def crop_masks(masks, mask_indices, boxes, size: int, impl: str = "crop_and_resize"):
    """ROIAlign full-image masks into boxes: the ``size x size`` mask targets of ROIs.

    Parameters
    ----------
    masks : tensor ``[N, H, W]``
        Full-image masks (float or bool).
    mask_indices : int tensor ``[R]``
        Which mask each box reads.
    boxes : tensor ``[R, 4]``
        Pixel boxes.
    size : int
        Output side in cells.

    Returns
    -------
    float32 tensor ``[R, size, size]`` of mask fractions in [0, 1] (threshold at 0.5 for a
    binary target).
    """
    images = ops.cast(masks, "float32")[..., None]
    out = roi_align(images, boxes, mask_indices, size, stride=1.0, sampling_ratio=1, impl=impl)
    return out[..., 0]
