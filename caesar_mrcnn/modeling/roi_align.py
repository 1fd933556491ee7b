"""ROIAlign: bilinear crops of feature maps at bin centres, single- and multi-level (FPN).

Geometry. Boxes are pixel boxes (y0, x0, y1, x1) on the input image; pixel ``i`` covers
``[i, i + 1)``. On a feature map of stride ``s`` feature cell ``j`` has its centre at image
coordinate ``(j + 0.5) * s``, so an image coordinate ``y`` is at array index ``y / s - 0.5``.
A box is divided into ``out x out`` bins, each sampled at ``ratio x ratio`` points placed at the
centres of equal sub-bins, and the samples of a bin are averaged ("aligned" ROIAlign).
Samples up to one cell outside the map take the edge value; farther ones read 0.
"""

from __future__ import annotations

import tensorflow as tf
from keras import ops


def assign_levels(boxes, min_level: int = 2, max_level: int = 5,
                  canonical_size: float = 224.0, canonical_level: int = 4):
    """FPN level of each box: ``floor(k0 + log2(sqrt(h*w) / canonical_size))`` clamped.

    Parameters
    ----------
    boxes : tensor ``[..., 4]``
        Pixel boxes.

    Returns
    -------
    int32 tensor ``[...]`` in ``[min_level, max_level]``.
    """
    boxes = ops.cast(boxes, "float32")
    h = ops.maximum(boxes[..., 2] - boxes[..., 0], 0.0)
    w = ops.maximum(boxes[..., 3] - boxes[..., 1], 0.0)
    size = ops.sqrt(h * w)
    level = ops.floor(canonical_level + ops.log2(size / canonical_size + 1e-8))
    return ops.cast(ops.clip(level, min_level, max_level), "int32")


def sample_points(images, starts, ends, box_indices, crop_size: tuple[int, int],
                  impl: str = "crop_and_resize"):
    """Bilinear samples on a regular grid per box, in array-index coordinates.

    Parameters
    ----------
    images : tensor ``[N, H, W, C]``
    starts, ends : tensors ``[R, 2]``
        Array-index (row, column) of the first and last sample of each box.
    box_indices : int tensor ``[R]``
        Image of each box.
    crop_size : (int, int)
        Samples per box along rows and columns.
    impl : {"crop_and_resize", "gather"}
        ``tf.image.crop_and_resize`` or an equivalent made of gathers (which XLA compiles).

    Returns
    -------
    float32 tensor ``[R, ch, cw, C]``; samples outside ``[0, H-1] x [0, W-1]`` are 0.
    """
    starts = ops.cast(starts, "float32")
    ends = ops.cast(ends, "float32")
    shape = ops.shape(images)
    hm1 = ops.cast(shape[1] - 1, "float32")
    wm1 = ops.cast(shape[2] - 1, "float32")
    if impl == "crop_and_resize":
        norm = ops.stack([starts[:, 0] / hm1, starts[:, 1] / wm1,
                          ends[:, 0] / hm1, ends[:, 1] / wm1], axis=-1)
        return tf.image.crop_and_resize(ops.cast(images, "float32"), norm,
                                        ops.cast(box_indices, "int32"), crop_size,
                                        extrapolation_value=0.0)
    if impl != "gather":
        raise ValueError(f"impl must be 'crop_and_resize' or 'gather', got {impl!r}")
    ch, cw = crop_size

    def grid(n, lo, hi):
        t = ops.arange(n, dtype="float32") / max(n - 1, 1)
        if n == 1:
            t = ops.full((1,), 0.5)
        return lo[:, None] + (hi - lo)[:, None] * t[None, :]

    ys = grid(ch, starts[:, 0], ends[:, 0])  # [R, ch]
    xs = grid(cw, starts[:, 1], ends[:, 1])  # [R, cw]
    return _bilinear_gather(images, ys, xs, box_indices)


def _bilinear_gather(images, ys, xs, box_indices):
    """Bilinear interpolation of ``images`` at the outer grid ``ys x xs`` of each box."""
    images = ops.cast(images, "float32")
    shape = ops.shape(images)
    h, w = shape[1], shape[2]
    hm1 = ops.cast(h - 1, "float32")
    wm1 = ops.cast(w - 1, "float32")
    y_in = (ys >= 0.0) & (ys <= hm1)
    x_in = (xs >= 0.0) & (xs <= wm1)
    y0 = ops.clip(ops.floor(ys), 0.0, hm1)
    x0 = ops.clip(ops.floor(xs), 0.0, wm1)
    wy = ops.clip(ys - y0, 0.0, 1.0)
    wx = ops.clip(xs - x0, 0.0, 1.0)
    y0i = ops.cast(y0, "int32")
    x0i = ops.cast(x0, "int32")
    y1i = ops.minimum(y0i + 1, h - 1)
    x1i = ops.minimum(x0i + 1, w - 1)
    flat = ops.reshape(images, (-1, shape[3]))
    base = ops.cast(box_indices, "int32")[:, None, None] * (h * w)

    def at(yi, xi):
        idx = base + yi[:, :, None] * w + xi[:, None, :]
        return ops.take(flat, idx, axis=0)  # [R, ch, cw, C]

    wy = wy[:, :, None, None]
    wx = wx[:, None, :, None]
    top = at(y0i, x0i) * (1.0 - wx) + at(y0i, x1i) * wx
    bottom = at(y1i, x0i) * (1.0 - wx) + at(y1i, x1i) * wx
    out = top * (1.0 - wy) + bottom * wy
    inside = ops.cast(y_in[:, :, None] & x_in[:, None, :], "float32")[..., None]
    return out * inside


def _bin_sample_range(boxes, scale: float, output_size: int, sampling_ratio: int):
    """Array-index coordinates of the first and last sample of each box (rows, cols)."""
    n = output_size * sampling_ratio
    boxes = ops.cast(boxes, "float32") * scale
    h = boxes[:, 2] - boxes[:, 0]
    w = boxes[:, 3] - boxes[:, 1]
    starts = ops.stack([boxes[:, 0] + 0.5 * h / n, boxes[:, 1] + 0.5 * w / n], -1) - 0.5
    ends = ops.stack([boxes[:, 2] - 0.5 * h / n, boxes[:, 3] - 0.5 * w / n], -1) - 0.5
    return starts, ends


def _average_bins(samples, output_size: int, sampling_ratio: int):
    if sampling_ratio == 1:
        return samples
    r = ops.shape(samples)[0]
    c = samples.shape[-1]
    x = ops.reshape(samples, (r, output_size, sampling_ratio, output_size, sampling_ratio, c))
    return ops.mean(x, axis=(2, 4))


def roi_align(features, boxes, box_indices, output_size: int, stride: float = 1.0,
              sampling_ratio: int = 2, impl: str = "crop_and_resize"):
    """ROIAlign on one feature map.

    Parameters
    ----------
    features : tensor ``[N, H, W, C]``
        Feature map (or images, with ``stride=1``).
    boxes : tensor ``[R, 4]``
        Pixel boxes on the input image.
    box_indices : int tensor ``[R]``
        Which of the N maps each box reads.
    output_size : int
        Bins per side.
    stride : float
        Input pixels per feature cell.
    sampling_ratio : int
        Samples per bin per side, averaged.
    impl : {"crop_and_resize", "gather"}
        Sampling implementation (see :func:`sample_points`).

    Returns
    -------
    float32 tensor ``[R, output_size, output_size, C]``.
    """
    # One cell of edge padding reproduces the "clamp within one cell" rule at the border.
    padded = ops.pad(ops.cast(features, "float32"), [[0, 0], [1, 1], [1, 1], [0, 0]],
                     mode="symmetric")
    starts, ends = _bin_sample_range(boxes, 1.0 / stride, output_size, sampling_ratio)
    n = output_size * sampling_ratio
    samples = sample_points(padded, starts + 1.0, ends + 1.0, box_indices, (n, n), impl)
    return _average_bins(samples, output_size, sampling_ratio)


def multilevel_roi_align(features: dict, boxes, output_size: int, strides: dict,
                         sampling_ratio: int = 2, canonical_size: float = 224.0,
                         canonical_level: int = 4, impl: str = "crop_and_resize"):
    """FPN ROIAlign: each box reads the level chosen by :func:`assign_levels`.

    All levels are laid side by side (each with a one-cell edge border and a zero gap) on one
    canvas per image, so that one sampling call serves every box at a static cost. Boxes must
    lie inside the image (proposals and ground truth are clipped).

    Parameters
    ----------
    features : dict of int to tensor ``[B, H_l, W_l, C]``
        Feature maps by level, e.g. ``{2: P2, 3: P3, 4: P4, 5: P5}`` (same C).
    boxes : tensor ``[B, R, 4]``
        Pixel boxes per image.
    output_size : int
        Bins per side.
    strides : dict of int to float
        Stride (pixels) of each level.

    Returns
    -------
    float32 tensor ``[B, R, output_size, output_size, C]``.
    """
    levels = sorted(features)
    boxes = ops.cast(boxes, "float32")
    b, r = ops.shape(boxes)[0], ops.shape(boxes)[1]
    max_h = max(int(features[lv].shape[1]) for lv in levels) + 2
    pieces, offsets, x = [], {}, 0
    for lv in levels:
        f = ops.pad(ops.cast(features[lv], "float32"), [[0, 0], [1, 1], [1, 1], [0, 0]],
                    mode="symmetric")
        fh, fw = int(f.shape[1]), int(f.shape[2])
        pieces.append(ops.pad(f, [[0, 0], [0, max_h - fh], [0, 1], [0, 0]]))
        offsets[lv] = x
        x += fw + 1
    canvas = ops.concatenate(pieces, axis=2)

    flat = ops.reshape(boxes, (-1, 4))
    level = assign_levels(flat, levels[0], levels[-1], canonical_size, canonical_level)
    scale = ops.zeros_like(flat[:, 0])
    shift = ops.zeros_like(flat[:, 0])
    for lv in levels:
        here = level == lv
        scale = ops.where(here, 1.0 / strides[lv], scale)
        shift = ops.where(here, float(offsets[lv]), shift)
    n = output_size * sampling_ratio
    scaled = flat * scale[:, None]
    starts, ends = _bin_sample_range(scaled, 1.0, output_size, sampling_ratio)
    offset = ops.stack([ops.ones_like(shift), shift + 1.0], axis=-1)
    box_indices = ops.repeat(ops.arange(b, dtype="int32"), r)
    samples = sample_points(canvas, starts + offset, ends + offset, box_indices, (n, n), impl)
    out = _average_bins(samples, output_size, sampling_ratio)
    return ops.reshape(out, (b, r, output_size, output_size, out.shape[-1]))

