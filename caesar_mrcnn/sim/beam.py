"""Elliptical Gaussians on the pixel grid: covariance algebra, beam area, transfer function.

Conventions: pixel coordinates ``(x, y)`` with x along columns (RA decreasing, east to the left)
and y along rows (Dec increasing, north up). A position angle (PA) is measured from north
through east, so the unit vector of PA ``t`` is ``(-sin t, cos t)`` in ``(x, y)``. A Gaussian
is described by its covariance matrix in pixel² units, ``[[cxx, cxy], [cxy, cyy]]``.

Convolving two Gaussians adds their covariances; a source of integrated flux ``S`` (Jy) and
intrinsic covariance ``C`` seen through a beam ``B`` has a peak of
``S * area(B) / area(B + C)`` Jy/beam, where ``area(C) = 2 pi sqrt(det C)``.
"""

from __future__ import annotations

import numpy as np

from caesar_mrcnn.measure.ellipse import FWHM_PER_SIGMA, fwhm_ellipse

FWHM_TO_SIGMA = 1.0 / FWHM_PER_SIGMA
"""Multiply a FWHM by this to get the Gaussian sigma."""


def covariance(major_px: float, minor_px: float, pa_deg: float) -> np.ndarray:
    """Covariance matrix (pixel²) of a Gaussian of FWHM ``major_px`` × ``minor_px`` at PA.

    Parameters
    ----------
    major_px, minor_px : float
        Full widths at half maximum, pixels (0 gives a delta function along that axis).
    pa_deg : float
        Position angle of the major axis, degrees east of north.

    Returns
    -------
    numpy.ndarray, shape (2, 2)
        ``[[cxx, cxy], [cxy, cyy]]`` in pixel².
    """
    t = np.deg2rad(pa_deg)
    u = np.array([-np.sin(t), np.cos(t)])
    v = np.array([np.cos(t), np.sin(t)])
    sa, sb = major_px * FWHM_TO_SIGMA, minor_px * FWHM_TO_SIGMA
    return sa * sa * np.outer(u, u) + sb * sb * np.outer(v, v)


def shape_of(cov: np.ndarray) -> tuple[float, float, float]:
    """FWHM major, minor (pixels) and PA (degrees east of north, in [0, 180)) of a covariance:
    the inverse of :func:`covariance` (see :func:`caesar_mrcnn.measure.ellipse.fwhm_ellipse`)."""
    return fwhm_ellipse(cov)


def area(cov: np.ndarray) -> float:
    """Integral of a unit-peak Gaussian of covariance ``cov``, pixel² (beam area for a beam)."""
    return float(2.0 * np.pi * np.sqrt(max(np.linalg.det(cov), 0.0)))


def peak_from_flux(flux_jy: float, intrinsic: np.ndarray, beam: np.ndarray) -> float:
    """Peak (Jy/beam) of a Gaussian source of integrated flux ``flux_jy`` (Jy) seen by ``beam``."""
    return float(flux_jy * area(beam) / area(intrinsic + beam))


def flux_from_peak(peak_jyb: float, intrinsic: np.ndarray, beam: np.ndarray) -> float:
    """Integrated flux (Jy) of a Gaussian source whose convolved peak is ``peak_jyb`` Jy/beam."""
    return float(peak_jyb * area(intrinsic + beam) / area(beam))


def transfer_function(shape: tuple[int, int], cov: np.ndarray,
                      dtype: type = np.float32) -> np.ndarray:
    """Fourier transform of a unit-sum Gaussian kernel on the ``rfft2`` grid of ``shape``.

    Returns
    -------
    numpy.ndarray, shape ``(ny, nx // 2 + 1)``
        ``exp(-2 pi² fᵀ C f)`` with ``f`` in cycles/pixel.
    """
    ny, nx = shape
    fy = np.fft.fftfreq(ny).astype(dtype)[:, None]
    fx = np.fft.rfftfreq(nx).astype(dtype)[None, :]
    cxx, cxy, cyy = (dtype(v) for v in (cov[0, 0], cov[0, 1], cov[1, 1]))
    k = dtype(-2.0 * np.pi**2)
    expo = (fx * fx) * (k * cxx) + (fy * fy) * (k * cyy) + (fx * fy) * (2 * k * cxy)
    return np.exp(expo, out=expo)


def rfft_weights(nx: int) -> np.ndarray:
    """How often each ``rfft`` column stands in the full spectrum (1 or 2), shape (nx//2+1,)."""
    w = np.full(nx // 2 + 1, 2.0)
    w[0] = 1.0
    if nx % 2 == 0:
        w[-1] = 1.0
    return w


def gaussian_image(x: np.ndarray, y: np.ndarray, x0: float, y0: float, peak: float,
                   cov: np.ndarray) -> np.ndarray:
    """Evaluate a Gaussian of covariance ``cov`` and ``peak`` at pixel coords ``(x, y)``.

    ``x`` and ``y`` broadcast against each other (e.g. a row and a column vector).
    """
    inv = np.linalg.inv(cov)
    dx = x - x0
    dy = y - y0
    q = inv[0, 0] * dx * dx + (2.0 * inv[0, 1]) * dx * dy + inv[1, 1] * dy * dy
    return peak * np.exp(-0.5 * q)
