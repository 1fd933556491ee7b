"""Fitted Gaussian components as catalogue numbers: fluxes, errors, sky sizes, deconvolution.

One place turns a :class:`~caesar_mrcnn.measure.components.FittedComponent` (pixels) into the
quantities the catalogue reports, and sums the components of an entry into the entry's own
values (see docs/measurement.md for the formulas):

* flux density ``S = 2 pi A sqrt(det C) / Omega_beam`` (for a beam-shaped, unresolved
  component ``S = A - rms^2 / A``, the fitted amplitude less its bias); errors after Condon
  (1997) eq. 42 (resolved) or its amplitude error alone (unresolved: the shape is not
  fitted), with Condon's noise scale ``theta_N = beam / sqrt(2)``;
* position errors along the fitted axes (Condon eq. 21) turned into RA and Dec errors through
  the local WCS Jacobian;
* deconvolved sizes ``C - B`` (:func:`caesar_mrcnn.measure.deconvolve.deconvolve`);
* an entry's flux density is the sum over its components, its centre their flux-weighted mean,
  its shape the second moments of the summed model.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from caesar_mrcnn.measure.components import FittedComponent
from caesar_mrcnn.measure.deconvolve import deconvolve
from caesar_mrcnn.measure.ellipse import FWHM_PER_SIGMA, ellipse_from_covariance
from caesar_mrcnn.measure.gaussfit import (
    condon_flux_error,
    condon_relative_errors,
    condon_shape_errors,
)

NAN = float("nan")


@dataclass
class ComponentNumbers:
    """Catalogue numbers of one component (sky units; NaN where undefined)."""

    x: float
    y: float
    peak: float
    err_peak: float
    flux: float
    err_flux: float
    rms: float
    cov: np.ndarray
    err_pos_pix: np.ndarray  # 2x2 covariance of the centre, pixels²
    maj: float
    min: float
    pa: float
    err_maj: float
    err_min: float
    err_pa: float
    dc_maj: float
    dc_min: float
    dc_pa: float
    resolved: bool


def _axes(cov: np.ndarray, jac: np.ndarray | None) -> tuple[float, float, float]:
    """FWHM major, minor (arcsec with ``jac``, else pixels) and PA (deg) of one covariance."""
    major, minor, pa = ellipse_from_covariance(np.asarray(cov, float)[None],
                                               None if jac is None else jac[None])
    scale = 3600.0 if jac is not None else 1.0
    return (float(major[0]) * FWHM_PER_SIGMA * scale, float(minor[0]) * FWHM_PER_SIGMA * scale,
            float(pa[0]))


def component_numbers(comp: FittedComponent, beam_cov: np.ndarray, beam_area_pix: float,
                      jac: np.ndarray | None) -> ComponentNumbers:
    """Flux density, errors, sky sizes and deconvolved sizes of one fitted component.

    Parameters
    ----------
    comp : FittedComponent
        The fit (pixels).
    beam_cov : numpy.ndarray, shape ``(2, 2)``
        Beam covariance (pixels²).
    beam_area_pix : float
        Beam solid angle (pixels).
    jac : numpy.ndarray, shape ``(2, 2)``, optional
        ``d(east, north)/d(x, y)`` (deg/pixel) at the component; without it sizes stay in
        pixels (``maj``, ``min``) and sky errors are NaN.
    """
    fit = comp.fit
    snr = fit.peak / comp.rms if comp.rms > 0 else math.inf
    peak = fit.peak
    if not comp.resolved and snr > 2.0:
        # The centre is fitted too: the fit lands where noise lifts the source, and its
        # amplitude reads high by rms^2 / A on average (docs/measurement.md).
        peak = fit.peak - comp.rms ** 2 / fit.peak
    maj_pix, min_pix, _ = _axes(fit.cov, None)
    beam_maj, beam_min, _ = _axes(beam_cov, None)
    beam_fwhm = math.sqrt(beam_maj * beam_min)
    # Condon's theta_N is the FWHM of the Gaussian that smooths white noise; an image's noise
    # has the beam as its autocorrelation, so theta_N = beam / sqrt(2) (docs/measurement.md)
    noise_fwhm = beam_fwhm
    flux = fit.volume / beam_area_pix * (peak / fit.peak)
    size = maj_pix, min_pix
    if not comp.resolved:
        size = beam_fwhm, beam_fwhm
    pos_maj, pos_min, err_maj, err_min, err_pa = (
        float(v) for v in condon_shape_errors(snr, size[0], size[1], noise_fwhm))
    if comp.resolved:
        err_flux = float(condon_flux_error(flux, snr, maj_pix, min_pix, noise_fwhm))
        err_peak = fit.peak * float(condon_relative_errors(snr, maj_pix, min_pix,
                                                           noise_fwhm)[0])
    else:
        # the shape is the beam's, not fitted: only the amplitude's error remains
        err_peak = peak * float(condon_relative_errors(snr, beam_fwhm, beam_fwhm,
                                                       noise_fwhm)[0])
        err_flux = err_peak
        err_maj = err_min = err_pa = NAN
    # centre error ellipse along the fitted axes, in pixels
    evals, evecs = np.linalg.eigh(fit.cov)
    u_min, u_maj = evecs[:, 0], evecs[:, 1]
    err_pos = pos_maj ** 2 * np.outer(u_maj, u_maj) + pos_min ** 2 * np.outer(u_min, u_min)
    if fit.pcov is not None and np.all(np.isfinite(fit.pcov)):
        # the propagated errors of the pixels actually fitted replace Condon's whole-plane ones
        err_pos, err_peak, err_flux, err_maj, err_min, err_pa = _propagated(
            fit, peak, flux, comp.resolved, err_maj, err_min, err_pa)
    maj, mn, pa = _axes(fit.cov, jac)
    scale = (maj / maj_pix) if maj_pix > 0 else NAN  # arcsec per pixel along the axes
    if comp.resolved:
        dc = deconvolve(fit.cov, beam_cov)
        dc_maj, dc_min, dc_pa = _axes(dc, jac)
        if dc_maj == 0:
            dc_pa = NAN
    else:
        dc_maj = dc_min = 0.0
        dc_pa = NAN
    return ComponentNumbers(fit.x, fit.y, peak, err_peak, flux, err_flux, comp.rms,
                            fit.cov, err_pos, maj, mn, pa, err_maj * scale, err_min * scale,
                            err_pa, dc_maj, dc_min, dc_pa, comp.resolved)


def _propagated(fit, peak: float, flux: float, resolved: bool, err_maj: float,
                err_min: float, err_pa: float) -> tuple:
    """Errors from the fit's parameter covariance (:func:`multifit.parameter_covariance`):
    centre covariance, peak, flux density (first-order in amplitude and axes), axes, angle."""
    p = fit.pcov
    err_pos = p[1:3, 1:3].copy()
    err_peak = math.sqrt(max(p[0, 0], 0.0)) * peak / fit.peak
    if not fit.free:
        return err_pos, err_peak, err_peak * flux / peak, err_maj, err_min, err_pa
    sa, sb, _ = _cov_axes(fit.cov)
    grad = np.array([1.0 / fit.peak, 0.0, 0.0, 1.0 / sa, 1.0 / sb, 0.0])
    err_flux = flux * math.sqrt(max(grad @ p @ grad, 0.0))
    if resolved:
        err_maj = FWHM_PER_SIGMA * math.sqrt(max(p[3, 3], 0.0))
        err_min = FWHM_PER_SIGMA * math.sqrt(max(p[4, 4], 0.0))
        err_pa = min(math.degrees(math.sqrt(max(p[5, 5], 0.0))), 90.0)
    return err_pos, err_peak, err_flux, err_maj, err_min, err_pa


def _cov_axes(cov: np.ndarray) -> tuple[float, float, float]:
    """The fitted parameters' sigma_a, sigma_b as the fit orders them (see multifit)."""
    from caesar_mrcnn.measure.multifit import cov_to_params

    return cov_to_params(cov)


def sky_position_errors(err_pos_pix: np.ndarray, jac: np.ndarray | None
                        ) -> tuple[float, float]:
    """RA and Dec errors (arcsec; RA error as an angle on the sky) of a pixel error ellipse."""
    if jac is None:
        return NAN, NAN
    sky = jac @ err_pos_pix @ jac.T
    return (float(math.sqrt(max(sky[0, 0], 0.0)) * 3600.0),
            float(math.sqrt(max(sky[1, 1], 0.0)) * 3600.0))


@dataclass
class EntryNumbers:
    """An entry's values summed over its fitted components (pixels for ``x``, ``y``, ``cov``)."""

    x: float
    y: float
    peak: float
    err_peak: float
    flux: float
    err_flux: float
    cov: np.ndarray
    err_pos_pix: np.ndarray
    err_maj: float
    err_min: float
    err_pa: float
    dc_maj: float
    dc_min: float
    dc_pa: float
    unresolved: bool


def entry_numbers(comps: Sequence[ComponentNumbers]) -> EntryNumbers:
    """Sum of the components of one entry.

    The flux density is the sum; the centre the flux-weighted mean of the centres, with the
    errors combined as for a weighted mean; the shape the second moments of the summed model,
    ``sum_i w_i (C_i + d_i d_i^T)`` with ``d_i`` the offset of centre ``i``; size errors and
    deconvolved sizes only for a single component.
    """
    if len(comps) == 1:
        c = comps[0]
        return EntryNumbers(c.x, c.y, c.peak, c.err_peak, c.flux, c.err_flux, c.cov,
                            c.err_pos_pix, c.err_maj, c.err_min, c.err_pa, c.dc_maj, c.dc_min,
                            c.dc_pa, not c.resolved)
    flux = np.array([c.flux for c in comps])
    w = flux / flux.sum()
    x = float((w * [c.x for c in comps]).sum())
    y = float((w * [c.y for c in comps]).sum())
    cov = np.zeros((2, 2))
    err_pos = np.zeros((2, 2))
    for wi, c in zip(w, comps):
        d = np.array([c.x - x, c.y - y])
        cov += wi * (c.cov + np.outer(d, d))
        err_pos += wi * wi * c.err_pos_pix
    bright = max(comps, key=lambda c: c.peak)
    return EntryNumbers(x, y, bright.peak, bright.err_peak, float(flux.sum()),
                        float(math.sqrt(sum(c.err_flux ** 2 for c in comps))), cov, err_pos,
                        NAN, NAN, NAN, NAN, NAN, NAN, not any(c.resolved for c in comps))
