"""Geometric and intensity augmentation of one training example, as TF ops in the tf.data graph.

The same geometric transform (flips, 90° rotations, a small rotation with scaling) moves the
image and every instance mask; bounding boxes are then recomputed from the transformed masks,
so boxes, masks and image always agree. The image is resampled bilinearly, masks with nearest
neighbour so they stay binary. The intensity-stretch jitter touches the image only.

Randomness comes from stateless TF ops driven by an explicit ``seed`` tensor of shape ``(2,)``:
the same example and seed always give the same result, whatever the order or parallelism of
the input pipeline (which makes training resumable exactly).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from caesar_mrcnn.errors import ConfigError


@dataclass
class AugmentConfig:
    """Augmentation options of detection training.

    Attributes
    ----------
    enabled : bool
        Master switch; ``False`` leaves every example untouched.
    flip : bool
        Random left-right and up-down flips (each with probability 0.5).
    rot90 : bool
        Random rotation by a multiple of 90 degrees (square images only).
    affine_prob : float
        Probability of the small rotation and scaling below.
    rotate_deg : float
        Maximum absolute angle of the small rotation (degrees).
    scale_range : tuple of float
        ``(min, max)`` zoom factor of the affine step (1 = no scaling).
    stretch_gain : float
        Maximum relative jitter of the intensity gain: the image is multiplied by a factor in
        ``[1 - stretch_gain, 1 + stretch_gain]``.
    stretch_bias : float
        Maximum absolute offset added to the image (in preprocessed, dimensionless units).
    """

    enabled: bool = True
    flip: bool = True
    rot90: bool = True
    affine_prob: float = 0.5
    rotate_deg: float = 10.0
    scale_range: tuple[float, float] = (0.9, 1.1)
    stretch_gain: float = 0.1
    stretch_bias: float = 0.05

    def validate(self) -> None:
        if not 0.0 <= self.affine_prob <= 1.0:
            raise ConfigError(f"affine_prob: {self.affine_prob} must be in [0, 1]")
        if not 0.0 <= self.rotate_deg <= 180.0:
            raise ConfigError(f"rotate_deg: {self.rotate_deg} must be in [0, 180] degrees")
        lo, hi = self.scale_range
        if not 0.0 < lo <= hi:
            raise ConfigError(f"scale_range: {list(self.scale_range)} must be 0 < min <= max")
        if not 0.0 <= self.stretch_gain < 1.0:
            raise ConfigError(f"stretch_gain: {self.stretch_gain} must be in [0, 1)")
        if self.stretch_bias < 0.0:
            raise ConfigError(f"stretch_bias: {self.stretch_bias} must be >= 0")


def boxes_from_masks(masks, min_pixels: int = 1):
    """Tight boxes of channel-last instance masks.

    Parameters
    ----------
    masks : tf.Tensor, shape ``(H, W, G)``
        Instance masks (non-zero = inside).
    min_pixels : int
        Instances with fewer mask pixels are reported invalid.

    Returns
    -------
    boxes : tf.Tensor of float32, shape ``(G, 4)``
        ``(y0, x0, y1, x1)`` in pixels, end exclusive; zeros for invalid instances.
    valid : tf.Tensor of bool, shape ``(G,)``
    """
    import tensorflow as tf

    inside = tf.not_equal(masks, 0)
    height = tf.shape(masks)[0]
    width = tf.shape(masks)[1]
    rows = tf.cast(tf.reduce_any(inside, axis=1), tf.int32)  # (H, G)
    cols = tf.cast(tf.reduce_any(inside, axis=0), tf.int32)  # (W, G)
    area = tf.reduce_sum(tf.cast(inside, tf.int32), axis=[0, 1])
    valid = tf.logical_and(area >= max(int(min_pixels), 1), area > 0)
    y0 = tf.argmax(rows, axis=0, output_type=tf.int32)
    y1 = height - tf.argmax(tf.reverse(rows, axis=[0]), axis=0, output_type=tf.int32)
    x0 = tf.argmax(cols, axis=0, output_type=tf.int32)
    x1 = width - tf.argmax(tf.reverse(cols, axis=[0]), axis=0, output_type=tf.int32)
    boxes = tf.cast(tf.stack([y0, x0, y1, x1], axis=-1), tf.float32)
    boxes = tf.where(valid[:, None], boxes, tf.zeros_like(boxes))
    return boxes, valid


def _uniform(seed, lo: float, hi: float):
    import tensorflow as tf

    return tf.random.stateless_uniform([], seed=seed, minval=lo, maxval=hi, dtype=tf.float32)


def _affine_params(angle_rad, scale, height: int, width: int):
    """Keras projective-transform row mapping output pixels to input pixels.

    The output is the input rotated by ``angle_rad`` and zoomed by ``scale`` about the image
    centre; Keras expects the inverse map (output -> input), hence the ``1/scale`` and ``-angle``.
    """
    import tensorflow as tf

    cy = (height - 1) / 2.0
    cx = (width - 1) / 2.0
    cos = tf.cos(angle_rad) / scale
    sin = tf.sin(angle_rad) / scale
    a0, a1 = cos, sin
    b0, b1 = -sin, cos
    a2 = cx - a0 * cx - a1 * cy
    b2 = cy - b0 * cx - b1 * cy
    zero = tf.zeros([], tf.float32)
    return tf.stack([a0, a1, a2, b0, b1, b2, zero, zero])


def augment_example(image, masks, classes, seed, cfg: AugmentConfig, min_pixels: int = 1):
    """Augment one example and recompute its boxes from the transformed masks.

    Parameters
    ----------
    image : tf.Tensor of float32, shape ``(H, W, C)``
        Preprocessed image (static ``H`` and ``W``).
    masks : tf.Tensor of uint8, shape ``(H, W, G)``
        Instance masks, channel-last; padding instances are all zero.
    classes : tf.Tensor of int32, shape ``(G,)``
        Model class ids (0 = padding).
    seed : tf.Tensor of int, shape ``(2,)``
        Stateless random seed; equal seeds give equal results.
    cfg : AugmentConfig
    min_pixels : int
        Instances left with fewer mask pixels (e.g. rotated out of the image) become padding.

    Returns
    -------
    dict
        ``image`` ``(H, W, C)`` float32, ``masks`` ``(G, H, W)`` uint8, ``boxes`` ``(G, 4)``
        float32 ``(y0, x0, y1, x1)`` pixels end exclusive, ``classes`` ``(G,)`` int32.
        Valid instances come first; padding has class 0, an empty mask and a zero box.
    """
    import keras
    import tensorflow as tf

    height, width = int(image.shape[0]), int(image.shape[1])
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), num=8)

    if cfg.enabled:
        if cfg.flip:
            flip_lr = _uniform(seeds[0], 0.0, 1.0) < 0.5
            flip_ud = _uniform(seeds[1], 0.0, 1.0) < 0.5
            image, masks = tf.cond(flip_lr, lambda: (image[:, ::-1], masks[:, ::-1]),
                                   lambda: (image, masks))
            image, masks = tf.cond(flip_ud, lambda: (image[::-1], masks[::-1]),
                                   lambda: (image, masks))
        if cfg.rot90 and height == width:
            k = tf.random.stateless_uniform([], seed=seeds[2], minval=0, maxval=4,
                                            dtype=tf.int32)
            image = tf.image.rot90(image, k)
            masks = tf.image.rot90(masks, k)
        lo, hi = cfg.scale_range
        if cfg.affine_prob > 0 and (cfg.rotate_deg > 0 or lo != 1.0 or hi != 1.0):
            angle = _uniform(seeds[3], -cfg.rotate_deg, cfg.rotate_deg) * (math.pi / 180.0)
            scale = _uniform(seeds[4], lo, hi) if hi > lo else tf.constant(lo, tf.float32)
            row = _affine_params(angle, scale, height, width)

            def warp():
                warped = keras.ops.image.affine_transform(
                    image, row, interpolation="bilinear", fill_mode="constant",
                    fill_value=0, data_format="channels_last")
                warped_masks = keras.ops.image.affine_transform(
                    masks, row, interpolation="nearest", fill_mode="constant",
                    fill_value=0, data_format="channels_last")
                return warped, warped_masks

            do_affine = _uniform(seeds[5], 0.0, 1.0) < cfg.affine_prob
            image, masks = tf.cond(do_affine, warp, lambda: (image, masks))
        if cfg.stretch_gain > 0 or cfg.stretch_bias > 0:
            gain = _uniform(seeds[6], 1.0 - cfg.stretch_gain, 1.0 + cfg.stretch_gain)
            bias = _uniform(seeds[7], -cfg.stretch_bias, cfg.stretch_bias)
            image = image * gain + bias

    image = tf.ensure_shape(tf.cast(image, tf.float32), [height, width, None])
    boxes, valid = boxes_from_masks(masks, min_pixels)
    valid = tf.logical_and(valid, classes > 0)
    # Valid instances first: the order the model's target matching expects for padded GT.
    order = tf.argsort(tf.cast(tf.logical_not(valid), tf.int32), stable=True)
    valid = tf.gather(valid, order)
    boxes = tf.where(valid[:, None], tf.gather(boxes, order), 0.0)
    classes = tf.where(valid, tf.gather(classes, order), 0)
    masks = tf.transpose(tf.gather(masks, order, axis=2), [2, 0, 1])
    masks = masks * tf.cast(valid, masks.dtype)[:, None, None]
    return {"image": image, "masks": masks, "boxes": boxes, "classes": classes}
