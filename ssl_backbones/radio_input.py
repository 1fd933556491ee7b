"""What a network sees of a radio image: fixed stretches of the signal-to-noise map.

Radio images differ from survey to survey in flux scale, noise level and beam sampling. The
detector and the self-supervised backbone therefore never see Jy/beam, and never a stretch
computed from the pixels in front of them (a zscale or min-max of a tile of pure noise turns
the noise into bright blobs). They see the image in units of the local noise,

    snr = (image - background) / rms,

with background and rms maps computed once per image (:mod:`caesar_mrcnn.measure.background`
for images; for MiraBest's 8-bit cutouts see :mod:`ssl_backbones.mirabest`), at a stated beam
sampling (:data:`REFERENCE_BEAM_PIX` pixels per beam FWHM), through fixed channel stretches
that do not depend on the image:

========  ================================================  =====================================
channel   value                                             what it shows
========  ================================================  =====================================
0         ``(clip(snr, -2, 8) + 2) / 10``                   faint emission: 3-8 sigma structure,
                                                            noise texture
1         ``asinh(max(snr, 0) / 3) / asinh(1000 / 3)``      the whole dynamic range, logarithmic
                                                            above a few sigma
2         ``clip(snr, 0, 50) / 50``                         bright structure: cores, hot spots
========  ================================================  =====================================

Each channel lies in [0, 1]; blank (NaN) pixels become 0 after stretching. One definition serves
both packages (``ssl_backbones`` never imports ``caesar_mrcnn``; ``caesar_mrcnn`` imports this
module), with the array namespace passed in so the same code runs in NumPy and in a TensorFlow
graph. :data:`INPUT_NAME` names this definition in backbone and detector metadata, so loading a
backbone trained on other views can be refused.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

INPUT_NAME = "snr3-v1"
"""Name of this input definition, stored in backbone and detector metadata."""

REFERENCE_BEAM_PIX = 5.0
"""Beam sampling (pixels per beam FWHM) that the shipped networks are trained for; images are
resampled to it (within :data:`SAMPLING_TOLERANCE`) before they reach a network."""

SAMPLING_TOLERANCE = 0.1
"""Relative difference of beam sampling below which an image is used at its native pixels."""

CHANNELS = 3

_LOW_LO, _LOW_HI = -2.0, 8.0
_ASINH_SOFT, _ASINH_TOP = 3.0, 1000.0
_HIGH_HI = 50.0


def snr_channels(snr: Any, xp: Any = np) -> Any:
    """The three fixed stretches of an SNR map, stacked on a new last axis.

    Parameters
    ----------
    snr : array, shape ``(..., H, W)``
        Signal-to-noise map (dimensionless, background subtracted), NaN where blank.
    xp : module
        Array namespace: :mod:`numpy` (default) or ``tensorflow.experimental.numpy``.

    Returns
    -------
    array, shape ``(..., H, W, 3)``, float32, values in [0, 1]
    """
    snr = xp.asarray(snr, dtype=xp.float32)
    finite = xp.isfinite(snr)
    s = xp.where(finite, snr, xp.zeros_like(snr))
    low = (xp.clip(s, _LOW_LO, _LOW_HI) - _LOW_LO) / (_LOW_HI - _LOW_LO)
    mid = xp.arcsinh(xp.clip(s, 0.0, _ASINH_TOP) / _ASINH_SOFT) / math.asinh(
        _ASINH_TOP / _ASINH_SOFT)
    high = xp.clip(s, 0.0, _HIGH_HI) / _HIGH_HI
    zero = xp.zeros_like(s)
    out = xp.stack([xp.where(finite, c, zero) for c in (low, mid, high)], axis=-1)
    return xp.asarray(out, dtype=xp.float32)


def resample_factor(beam_fwhm_pix: float | None, target: float = REFERENCE_BEAM_PIX,
                    tolerance: float = SAMPLING_TOLERANCE) -> float:
    """Zoom factor that brings an image's beam sampling to ``target`` pixels per FWHM.

    Parameters
    ----------
    beam_fwhm_pix : float or None
        The image's beam FWHM in pixels (geometric mean of major and minor axes); None or
        non-finite when the beam is unknown.
    target : float
        Sampling the network was trained for (pixels per FWHM).
    tolerance : float
        Relative difference below which no resampling is done.

    Returns
    -------
    float
        ``target / beam_fwhm_pix``, or 1.0 when the beam is unknown or already close.
    """
    if beam_fwhm_pix is None or not math.isfinite(beam_fwhm_pix) or beam_fwhm_pix <= 0:
        return 1.0
    zoom = target / float(beam_fwhm_pix)
    return 1.0 if abs(zoom - 1.0) <= tolerance else zoom
