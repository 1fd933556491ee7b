"""The restoring beam as a pixel covariance, and deconvolution of fitted Gaussians from it.

A Gaussian of covariance ``C`` (pixels², ordered ``(x, y)``) observed with a Gaussian beam of
covariance ``B`` appears with covariance ``C + B``; deconvolving a fitted ``F`` is therefore
``C = F - B``, the matrix form of Wild (1970)'s formulas. Working with covariances keeps one
convention for position angles (:mod:`caesar_mrcnn.measure.ellipse`) and needs no case
analysis of the angles.
"""

from __future__ import annotations

import math

import numpy as np

from caesar_mrcnn.measure.ellipse import FWHM_PER_SIGMA


def circular_beam_cov(beam_area_pix: float) -> np.ndarray:
    """Covariance (pixels²) of the circular Gaussian of solid angle ``beam_area_pix`` (pixels).

    The solid angle of a Gaussian is ``2 pi sqrt(det C)``, so ``C = beam_area_pix / (2 pi) I``.
    """
    return np.eye(2) * (beam_area_pix / (2.0 * math.pi))


def beam_cov_pix(beam, wcs, x: float, y: float, beam_area_pix: float) -> np.ndarray:
    """Covariance of the restoring beam in pixels at one position.

    Parameters
    ----------
    beam : caesar_mrcnn.io.beam_shape.Beam or None
        ``bmaj_deg``, ``bmin_deg`` (FWHM, deg) and ``bpa_deg`` (east of north).
    wcs : astropy.wcs.WCS or None
        Celestial WCS, to turn the sky ellipse into pixels (any flip or rotation).
    x, y : float
        Pixel position where the local geometry is taken.
    beam_area_pix : float
        The beam solid angle (pixels) the fluxes use; the covariance is scaled to it exactly,
        so that a beam-shaped Gaussian of amplitude ``A`` holds ``A`` Jy.

    Returns
    -------
    numpy.ndarray, shape ``(2, 2)``
        Circular (of that area) without a usable beam or WCS.
    """
    if beam is None or wcs is None or not getattr(beam, "usable", True):
        return circular_beam_cov(beam_area_pix)
    from caesar_mrcnn.measure.sky import sky_jacobian

    sm, sn = beam.bmaj_deg / FWHM_PER_SIGMA, beam.bmin_deg / FWHM_PER_SIGMA
    pa = math.radians(beam.bpa_deg)
    axis = np.array([math.sin(pa), math.cos(pa)])  # major axis in (east, north)
    perp = np.array([-axis[1], axis[0]])
    sky = sm * sm * np.outer(axis, axis) + sn * sn * np.outer(perp, perp)
    jac = sky_jacobian(wcs, np.array([x]), np.array([y]))[0]
    try:
        inv = np.linalg.inv(jac)
    except np.linalg.LinAlgError:
        return circular_beam_cov(beam_area_pix)
    cov = inv @ sky @ inv.T
    area = 2.0 * math.pi * math.sqrt(max(np.linalg.det(cov), 0.0))
    if not math.isfinite(area) or area <= 0:
        return circular_beam_cov(beam_area_pix)
    return cov * (beam_area_pix / area)


def deconvolve(cov: np.ndarray, beam_cov: np.ndarray) -> np.ndarray:
    """Intrinsic covariance ``cov - beam_cov``, negative axes set to zero.

    Parameters
    ----------
    cov : numpy.ndarray, shape ``(..., 2, 2)``
        Fitted (convolved) covariances, pixels².
    beam_cov : numpy.ndarray, shape ``(2, 2)`` or ``(..., 2, 2)``
        Beam covariance(s), pixels².

    Returns
    -------
    numpy.ndarray, same shape as ``cov``
        Positive semi-definite: an axis narrower than the beam's along it deconvolves to zero
        width (a point along that axis), as PyBDSF and Aegean report.
    """
    diff = np.asarray(cov, float) - np.asarray(beam_cov, float)
    evals, evecs = np.linalg.eigh(diff)
    evals = np.clip(evals, 0.0, None)
    return evecs @ (evals[..., :, None] * np.swapaxes(evecs, -1, -2))
