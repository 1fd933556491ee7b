"""Bringing images to the beam sampling a network was trained for, and masks back again.

A network trained on beams of about five pixels per FWHM sees a FIRST or NVSS image (2.5-3
pixels per FWHM) as a field of sources half the size it knows. Training and inference therefore
resample every image by ``zoom = beam_pix / native_beam_pix`` (see
:func:`ssl_backbones.radio_input.resample_factor`) before it reaches the network, and map
masks, boxes and positions back to the native pixels afterwards.

Images are resampled in SNR units with blank pixels handled apart: bilinear interpolation when
enlarging, pixel-area averaging when shrinking (so a shrunken image does not alias); a pixel is
blank when the nearest native pixel is. Masks go through the same interpolation of their 0/1
values and are thresholded at 0.5, so a mask resampled there and back is the original up to
its border pixels.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from caesar_mrcnn.data.dataset import Annotation


def zoomed_shape(shape: tuple[int, int], zoom: float) -> tuple[int, int]:
    """Shape ``(ny, nx)`` of an image of ``shape`` resampled by ``zoom`` (at least 1 pixel)."""
    return (max(1, int(round(shape[0] * zoom))), max(1, int(round(shape[1] * zoom))))


def resize(data: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Resample a 2D (or ``(H, W, C)``) float array to ``shape`` ``(ny, nx)``; NaN stays blank.

    Parameters
    ----------
    data : numpy.ndarray
        ``(H, W)`` or ``(H, W, C)``, NaN where blank.
    shape : tuple of int
        Output ``(ny, nx)``.

    Returns
    -------
    numpy.ndarray of float32
    """
    data = np.asarray(data, np.float32)
    if data.shape[:2] == tuple(shape):
        return data.copy()
    ny, nx = shape
    shrinking = ny * nx < data.shape[0] * data.shape[1]
    interp = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    valid = np.isfinite(data)
    filled = np.where(valid, data, 0.0).astype(np.float32)
    out = cv2.resize(filled, (nx, ny), interpolation=interp)
    if out.ndim < data.ndim:
        out = out[..., None]
    if valid.all():
        return out
    # normalised interpolation: blank neighbours carry no weight, so edges keep their values
    weight = cv2.resize(valid.astype(np.float32), (nx, ny), interpolation=interp)
    blank = cv2.resize((~valid).astype(np.uint8), (nx, ny), interpolation=cv2.INTER_NEAREST)
    weight = weight.reshape(out.shape)
    blank = blank.astype(bool).reshape(out.shape) | (weight <= 1e-6)
    out = np.divide(out, weight, out=np.zeros_like(out), where=~blank)
    out[blank] = np.nan
    return out


def resize_mask(mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Resample a boolean (or probability) mask to ``shape`` and threshold it at 0.5."""
    mask = np.asarray(mask, np.float32)
    if mask.shape == tuple(shape):
        return mask >= 0.5
    ny, nx = shape
    shrinking = ny * nx < mask.shape[0] * mask.shape[1]
    out = cv2.resize(mask, (nx, ny), interpolation=cv2.INTER_AREA if shrinking
                     else cv2.INTER_LINEAR)
    return out >= 0.5


def zoom_annotation(ann: Annotation, zoom: float, shape: tuple[int, int]) -> Annotation | None:
    """An annotation in the pixels of its image resampled by ``zoom``.

    Parameters
    ----------
    ann : Annotation
        Mask cropped to its box, in the original pixels.
    zoom : float
        Resampling factor (new pixels per old pixel).
    shape : tuple of int
        Shape of the resampled image (clips the new box).

    Returns
    -------
    Annotation or None
        None when the mask vanishes at the new sampling (smaller than about one new pixel).
    """
    y0, x0, y1, x1 = ann.bbox
    ny0, nx0 = int(math.floor(y0 * zoom)), int(math.floor(x0 * zoom))
    ny1 = min(int(math.ceil(y1 * zoom)), shape[0])
    nx1 = min(int(math.ceil(x1 * zoom)), shape[1])
    if ny1 <= ny0 or nx1 <= nx0:
        return None
    # resample the mask over the exact footprint of its box, then crop to the integer box
    h, w = zoomed_shape(ann.mask.shape, zoom)
    big = resize_mask(ann.mask, (h, w))
    oy, ox = int(round(y0 * zoom)) - ny0, int(round(x0 * zoom)) - nx0
    mask = np.zeros((ny1 - ny0, nx1 - nx0), dtype=bool)
    hy, hx = min(h, mask.shape[0] - oy), min(w, mask.shape[1] - ox)
    if hy <= 0 or hx <= 0:
        return None
    mask[oy:oy + hy, ox:ox + hx] = big[:hy, :hx]
    if not mask.any():
        return None
    ys, xs = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    mask = mask[ys[0]:ys[-1] + 1, xs[0]:xs[-1] + 1]
    box = (ny0 + int(ys[0]), nx0 + int(xs[0]), ny0 + int(ys[-1]) + 1, nx0 + int(xs[-1]) + 1)
    return Annotation(ann.category, box, mask, dict(ann.attrs))


def native_beam_pix(image) -> float | None:
    """Beam FWHM in pixels (geometric mean of the axes) of an image with ``beam`` and
    ``pixel_scale_deg`` attributes (:class:`caesar_mrcnn.io.fits.RadioImage`, ``LazyImage``);
    None when either is unknown."""
    beam = getattr(image, "beam", None)
    scale = getattr(image, "pixel_scale_deg", None)
    if beam is None or scale is None:
        return None
    pix = math.sqrt(abs(float(scale[0])) * abs(float(scale[1])))
    if pix <= 0:
        return None
    return math.sqrt(beam.bmaj_deg * beam.bmin_deg) / pix
