"""Radio views: batched, seeded TensorFlow augmentations of radio continuum cutouts.

A view of a batch of single-channel cutouts ``[B, H, W, 1]`` (NaN allowed) is made, inside the
``tf.data`` graph, by

1. min-max normalisation to [0, 1] over the finite pixels (NaN pixels become 0);
2. random resized crop to ``size x size``, horizontal/vertical flips, 90 degree rotations and a
   small rotation (reflecting borders, so no empty corners);
3. with some probability a sigma-clip / zscale-like contrast cut: clip to
   ``[median - a*sigma, median + b*sigma]`` (robust sigma from the MAD) and renormalise;
4. per-channel intensity stretches: the cutout is copied into ``channels`` channels, each under a
   stretch chosen at random among linear, log, sqrt, asinh, sinh, squared ("mixed" scheme);
5. Gaussian blur and Gaussian noise injection, each with some probability; clip to [0, 1].

Every random draw is a stateless op seeded by a ``[2]`` integer seed, so the same seed gives the
same views. :func:`preprocess` is the deterministic counterpart used outside training.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import tensorflow as tf

from ssl_backbones.config import STRETCHES, AugmentConfig

_LOG_A = 1000.0  # DS9's log stretch exponent
_ASINH_B = 0.1
_SINH_C = 3.0
_N_SEEDS = 12


def normalize_minmax(images: tf.Tensor) -> tf.Tensor:
    """Scale each image to [0, 1] over its finite pixels; NaN/inf pixels become 0.

    Parameters
    ----------
    images : tf.Tensor
        ``[B, H, W, C]`` float32, any units (e.g. Jy/beam).
    """
    x = tf.convert_to_tensor(images, tf.float32)
    finite = tf.math.is_finite(x)
    lo = tf.reduce_min(tf.where(finite, x, math.inf), axis=[1, 2, 3], keepdims=True)
    hi = tf.reduce_max(tf.where(finite, x, -math.inf), axis=[1, 2, 3], keepdims=True)
    lo = tf.where(tf.math.is_finite(lo), lo, 0.0)
    hi = tf.where(tf.math.is_finite(hi), hi, 1.0)
    y = (tf.where(finite, x, lo) - lo) / tf.maximum(hi - lo, 1e-12)
    return tf.clip_by_value(tf.where(finite, y, 0.0), 0.0, 1.0)


def stretch_stack(u: tf.Tensor) -> tf.Tensor:
    """All stretches of :data:`STRETCHES` applied to ``u`` in [0, 1], stacked on a new last axis.

    Each maps [0, 1] onto [0, 1] monotonically.
    """
    u = tf.clip_by_value(u, 0.0, 1.0)
    table = {
        "linear": u,
        "log": tf.math.log1p(_LOG_A * u) / math.log1p(_LOG_A),
        "sqrt": tf.sqrt(u),
        "asinh": tf.asinh(u / _ASINH_B) / math.asinh(1.0 / _ASINH_B),
        "sinh": tf.sinh(_SINH_C * u) / math.sinh(_SINH_C),
        "squared": tf.square(u),
    }
    return tf.stack([table[name] for name in STRETCHES], axis=-1)


def apply_stretches(u: tf.Tensor, names: Sequence[str], channels: int) -> tf.Tensor:
    """Fixed stretches: channel ``c`` of ``[B, H, W, channels]`` is ``u`` under
    ``names[c % len(names)]``; ``u`` is ``[B, H, W, 1]`` in [0, 1]."""
    idx = [STRETCHES.index(names[c % len(names)]) for c in range(channels)]
    return tf.gather(stretch_stack(u[..., 0]), idx, axis=-1)


def preprocess(images, size: int, stretches: Sequence[str], channels: int) -> tf.Tensor:
    """Deterministic network input: min-max to [0, 1] (NaN -> 0), bilinear resize to
    ``size x size``, fixed per-channel stretches.

    Parameters
    ----------
    images : array-like
        ``[B, H, W]`` or ``[B, H, W, 1]`` cutouts.
    """
    x = tf.convert_to_tensor(images, tf.float32)
    if x.shape.rank == 3:
        x = x[..., None]
    x = normalize_minmax(x)
    x = tf.image.resize(x, [size, size], method="bilinear")
    return apply_stretches(tf.clip_by_value(x, 0.0, 1.0), stretches, channels)


def _random_resized_crop(x, seeds, size: int, scale, ratio):
    b = tf.shape(x)[0]
    area = tf.random.stateless_uniform([b], seeds[0], scale[0], scale[1])
    log_r = tf.random.stateless_uniform([b], seeds[1], math.log(ratio[0]), math.log(ratio[1]))
    r = tf.exp(log_r)
    h = tf.minimum(tf.sqrt(area / r), 1.0)
    w = tf.minimum(tf.sqrt(area * r), 1.0)
    pos = tf.random.stateless_uniform([b, 2], seeds[2])
    y0 = pos[:, 0] * (1.0 - h)
    x0 = pos[:, 1] * (1.0 - w)
    boxes = tf.stack([y0, x0, y0 + h, x0 + w], axis=1)
    return tf.image.crop_and_resize(x, boxes, tf.range(b), [size, size], method="bilinear")


def _flips_and_rot90(x, seeds, flip_prob: float, rot90: bool):
    b = tf.shape(x)[0]
    coins = tf.random.stateless_uniform([b, 2], seeds[3]) < flip_prob
    x = tf.where(coins[:, 0, None, None, None], tf.reverse(x, [2]), x)
    x = tf.where(coins[:, 1, None, None, None], tf.reverse(x, [1]), x)
    if rot90:
        k = tf.random.stateless_uniform([b], seeds[4], 0, 4, dtype=tf.int32)
        turns = tf.stack([tf.image.rot90(x, i) for i in range(4)], axis=1)
        x = tf.gather(turns, k, axis=1, batch_dims=1)
    return x


def _small_rotation(x, seeds, max_deg: float):
    if max_deg <= 0:
        return x
    b = tf.shape(x)[0]
    theta = tf.random.stateless_uniform([b], seeds[5], -max_deg, max_deg) * (math.pi / 180.0)
    size = tf.cast(tf.shape(x)[1:3], tf.float32)
    cy, cx = (size[0] - 1.0) / 2.0, (size[1] - 1.0) / 2.0
    c, s = tf.cos(theta), tf.sin(theta)
    zeros = tf.zeros_like(c)
    # Output pixel (x', y') samples input (c*x' - s*y' + tx, s*x' + c*y' + ty): a turn about
    # the centre.
    transforms = tf.stack([c, -s, cx - c * cx + s * cy, s, c, cy - s * cx - c * cy,
                           zeros, zeros], axis=1)
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=x, transforms=transforms, output_shape=tf.shape(x)[1:3], fill_value=0.0,
        interpolation="BILINEAR", fill_mode="REFLECT")


def _median(flat):
    n = tf.shape(flat)[1]
    return tf.sort(flat, axis=1)[:, n // 2]


def _contrast_clip(x, seeds, prob: float, sig_lo, sig_hi):
    if prob <= 0:
        return x
    b = tf.shape(x)[0]
    flat = tf.reshape(x, [b, -1])
    med = _median(flat)
    sigma = 1.4826 * _median(tf.abs(flat - med[:, None]))
    sigma = tf.maximum(sigma, 1e-6)
    draws = tf.random.stateless_uniform([b, 3], seeds[6])
    a = sig_lo[0] + draws[:, 0] * (sig_lo[1] - sig_lo[0])
    k = sig_hi[0] + draws[:, 1] * (sig_hi[1] - sig_hi[0])
    lo = (med - a * sigma)[:, None, None, None]
    hi = (med + k * sigma)[:, None, None, None]
    clipped = tf.clip_by_value(x, lo, tf.maximum(hi, lo + 1e-6))
    clipped = normalize_minmax(clipped)
    return tf.where(draws[:, 2, None, None, None] < prob, clipped, x)


def _random_stretches(u, seeds, channels: int, scheme: str, names: Sequence[str]):
    if scheme in STRETCHES:
        return apply_stretches(u, [scheme], channels)
    b = tf.shape(u)[0]
    allowed = tf.constant([STRETCHES.index(n) for n in names], tf.int32)
    n_pick = channels if scheme == "mixed" else 1
    pick = tf.random.stateless_uniform([b, n_pick], seeds[7], 0, len(names), dtype=tf.int32)
    choice = tf.gather(allowed, pick)
    if scheme == "same":
        choice = tf.tile(choice, [1, channels])
    weights = tf.one_hot(choice, len(STRETCHES))  # [B, C, K]
    return tf.einsum("bhwk,bck->bhwc", stretch_stack(u[..., 0]), weights)


def _gaussian_blur(x, seeds, prob: float, sigma_range):
    if prob <= 0:
        return x
    b, h, w, ch = tf.unstack(tf.shape(x))
    radius = int(math.ceil(3.0 * sigma_range[1]))
    draws = tf.random.stateless_uniform([b, 2], seeds[8])
    sigma = sigma_range[0] + draws[:, 0] * (sigma_range[1] - sigma_range[0])
    sigma = tf.where(draws[:, 1] < prob, sigma, 1e-3)  # ~a delta kernel: no blur
    t = tf.range(-radius, radius + 1, dtype=tf.float32)
    kern = tf.exp(-0.5 * tf.square(t[None, :] / sigma[:, None]))
    kern = kern / tf.reduce_sum(kern, axis=1, keepdims=True)  # [B, K]
    # Each (image, channel) pair becomes a depthwise channel, so every image gets its own kernel.
    kern = tf.transpose(tf.repeat(kern, ch, axis=0))  # [K, B*C]
    planes = tf.reshape(tf.transpose(x, [1, 2, 0, 3]), [1, h, w, b * ch])
    planes = tf.pad(planes, [[0, 0], [radius, radius], [radius, radius], [0, 0]], "REFLECT")
    k_len = 2 * radius + 1
    planes = tf.nn.depthwise_conv2d(planes, tf.reshape(kern, [k_len, 1, -1, 1]),
                                    [1, 1, 1, 1], "VALID")
    planes = tf.nn.depthwise_conv2d(planes, tf.reshape(kern, [1, k_len, -1, 1]),
                                    [1, 1, 1, 1], "VALID")
    return tf.transpose(tf.reshape(planes, [h, w, b, ch]), [2, 0, 1, 3])


def _noise(x, seeds, prob: float, std_range):
    if prob <= 0:
        return x
    b = tf.shape(x)[0]
    draws = tf.random.stateless_uniform([b, 2], seeds[9])
    std = std_range[0] + draws[:, 0] * (std_range[1] - std_range[0])
    std = tf.where(draws[:, 1] < prob, std, 0.0)[:, None, None, None]
    return x + std * tf.random.stateless_normal(tf.shape(x), seeds[10])


def radio_view(images, seed, cfg: AugmentConfig, size: int, channels: int) -> tf.Tensor:
    """One random view of a batch.

    Parameters
    ----------
    images : tf.Tensor
        ``[B, H, W, 1]`` (or ``[B, H, W]``) cutouts, float, NaN allowed.
    seed : tf.Tensor
        ``[2]`` integer seed; equal seeds give equal views.
    cfg : AugmentConfig
    size : int
        Output side (pixels).
    channels : int
        Output channels, one intensity stretch each.

    Returns
    -------
    tf.Tensor
        ``[B, size, size, channels]`` float32 in [0, 1].
    """
    x = tf.convert_to_tensor(images, tf.float32)
    if x.shape.rank == 3:
        x = x[..., None]
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), _N_SEEDS)
    x = normalize_minmax(x)
    x = _random_resized_crop(x, seeds, size, cfg.crop_scale, cfg.crop_ratio)
    x = _flips_and_rot90(x, seeds, cfg.flip_prob, cfg.rot90)
    x = _small_rotation(x, seeds, cfg.max_rotation_deg)
    x = _contrast_clip(x, seeds, cfg.contrast_prob, cfg.contrast_sigma_low,
                       cfg.contrast_sigma_high)
    x = _random_stretches(x, seeds, channels, cfg.stretch_scheme, cfg.stretches)
    x = _gaussian_blur(x, seeds, cfg.blur_prob, cfg.blur_sigma)
    x = _noise(x, seeds, cfg.noise_prob, cfg.noise_std)
    return tf.clip_by_value(x, 0.0, 1.0)


def two_views(images, seed, cfg: AugmentConfig, size: int, channels: int):
    """Two independent views of a batch (seeds split from ``seed``); see :func:`radio_view`."""
    s = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 2)
    return (radio_view(images, s[0], cfg, size, channels),
            radio_view(images, s[1], cfg, size, channels))


# -- views of SNR maps (data.input: snr3-v1) -----------------------------------------------------

def snr_stretch(snr: tf.Tensor) -> tf.Tensor:
    """``[B, H, W]`` or ``[B, H, W, 1]`` SNR maps -> ``[B, H, W, 3]`` through the fixed
    stretches of :func:`ssl_backbones.radio_input.snr_channels` (the detector's input)."""
    import tensorflow.experimental.numpy as tnp

    from ssl_backbones.radio_input import snr_channels

    x = tf.convert_to_tensor(snr, tf.float32)
    if x.shape.rank == 4:
        x = x[..., 0]
    return tf.convert_to_tensor(snr_channels(x, xp=tnp))


def snr_preprocess(snr, size: int) -> tf.Tensor:
    """Deterministic network input of reference-sampled SNR maps ``[B, H, W]``: the centred
    ``size x size`` (zero-padded when smaller), then :func:`snr_stretch`."""
    x = tf.convert_to_tensor(snr, tf.float32)
    if x.shape.rank == 3:
        x = x[..., None]
    x = tf.where(tf.math.is_finite(x), x, 0.0)
    x = tf.image.resize_with_crop_or_pad(x, size, size)
    return snr_stretch(x)


def _zoom_crop(x, seeds, size: int, zoom_range):
    """A window of ``size * z`` input pixels (``z`` drawn in ``zoom_range``, capped by the
    cutout) at a random position, resized to ``size``: the beam sampling changes by 1/z."""
    b = tf.shape(x)[0]
    side = tf.cast(tf.shape(x)[1], tf.float32)
    z = tf.exp(tf.random.stateless_uniform([b], seeds[0], math.log(zoom_range[0]),
                                           math.log(zoom_range[1])))
    frac = tf.minimum(size * z / side, 1.0)
    pos = tf.random.stateless_uniform([b, 2], seeds[2])
    y0 = pos[:, 0] * (1.0 - frac)
    x0 = pos[:, 1] * (1.0 - frac)
    boxes = tf.stack([y0, x0, y0 + frac, x0 + frac], axis=1)
    return tf.image.crop_and_resize(x, boxes, tf.range(b), [size, size], method="bilinear")


def snr_view(images, seed, cfg: AugmentConfig, size: int) -> tf.Tensor:
    """One random view of a batch of reference-sampled SNR cutouts.

    Crop at nearly the reference sampling (``cfg.zoom_range``), flips, 90 degree turns and a
    small rotation, SNR scaling (``cfg.snr_scale``), Gaussian blur (``cfg.blur_*``, pixels) and
    added noise in units of the rms (``cfg.snr_noise``, with ``cfg.noise_prob``), all on the
    SNR map; then the fixed stretches (:func:`snr_stretch`).

    Parameters
    ----------
    images : tf.Tensor
        ``[B, H, W, 1]`` or ``[B, H, W]`` SNR maps (NaN allowed, read as 0).
    seed : tf.Tensor
        ``[2]`` integer seed; equal seeds give equal views.

    Returns
    -------
    tf.Tensor
        ``[B, size, size, 3]`` float32 in [0, 1].
    """
    x = tf.convert_to_tensor(images, tf.float32)
    if x.shape.rank == 3:
        x = x[..., None]
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), _N_SEEDS)
    x = tf.where(tf.math.is_finite(x), x, 0.0)
    x = _zoom_crop(x, seeds, size, cfg.zoom_range)
    x = _flips_and_rot90(x, seeds, cfg.flip_prob, cfg.rot90)
    x = _small_rotation(x, seeds, cfg.max_rotation_deg)
    b = tf.shape(x)[0]
    gain = tf.exp(tf.random.stateless_uniform([b], seeds[6], math.log(cfg.snr_scale[0]),
                                              math.log(cfg.snr_scale[1])))
    x = x * gain[:, None, None, None]
    x = _gaussian_blur(x, seeds, cfg.blur_prob, cfg.blur_sigma)
    x = _noise(x, seeds, cfg.noise_prob, cfg.snr_noise)
    return snr_stretch(x)


def two_snr_views(images, seed, cfg: AugmentConfig, size: int):
    """Two independent :func:`snr_view` of a batch (seeds split from ``seed``)."""
    s = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 2)
    return snr_view(images, s[0], cfg, size), snr_view(images, s[1], cfg, size)


def multi_crop_views(images, seed, cfg: AugmentConfig, size: int, channels: int,
                     snr: bool = False):
    """Two global views and ``cfg.local_crops`` local views of a batch (multi-crop, DINO).

    The global views are those of :func:`two_views` (or :func:`two_snr_views` with ``snr``)
    for the same seed, so adding local crops leaves them unchanged. A local view of an SNR map
    is a :func:`snr_view` of ``cfg.local_size`` pixels: a smaller window at the same beam
    sampling. A local view of a min-max cutout is a :func:`radio_view` cropped to
    ``cfg.local_crop_scale`` of the area and resized to ``cfg.local_size``.

    Returns
    -------
    view1, view2 : tf.Tensor
        ``[B, size, size, channels]``.
    local : tf.Tensor
        ``[L*B, local_size, local_size, channels]``, crop-major (crop ``l`` of image ``i``
        at row ``l*B + i``).
    """
    if cfg.local_crops < 1:
        raise ValueError("multi_crop_views needs cfg.local_crops >= 1")
    seed = tf.cast(seed, tf.int64)
    if snr:
        v1, v2 = two_snr_views(images, seed, cfg, size)
    else:
        v1, v2 = two_views(images, seed, cfg, size, channels)
    seeds = tf.random.experimental.stateless_split(
        tf.random.experimental.stateless_fold_in(seed, 1), cfg.local_crops)
    local_cfg = dataclasses.replace(cfg, crop_scale=cfg.local_crop_scale)
    local = [snr_view(images, seeds[i], cfg, cfg.local_size) if snr
             else radio_view(images, seeds[i], local_cfg, cfg.local_size, channels)
             for i in range(cfg.local_crops)]
    return v1, v2, tf.concat(local, axis=0)
