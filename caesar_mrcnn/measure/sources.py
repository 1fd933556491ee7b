"""Source parameters of detected objects: position, flux density, size, shape, SNR, flags.

Each object is an :class:`~caesar_mrcnn.data.dataset.Annotation` (mask cropped to its bounding
box). Its pixels are read window by window from the image, so a survey mosaic never has to be in
memory. Background and rms come from sigma-clipped statistics on a coarse grid of boxes
(:func:`background_grid`), computed strip by strip and interpolated at each source.

Conventions
-----------
* Pixel coordinates are 0-based (numpy), ``x`` along columns, ``y`` along rows.
* Fluxes are measured on background-subtracted pixels. Peak in the image unit (Jy/beam).
  The island flux density is ``sum(mask pixels) / beam_area_pix`` (Jy), with error
  ``rms * sqrt(npix / beam_area_pix)``; it misses the wings below the mask threshold.
* Compact single-island sources are also fitted with an elliptical Gaussian over the mask grown
  by one beam FWHM (:mod:`caesar_mrcnn.measure.gaussfit`). Where the fit succeeds
  (``fitted`` is True),
  ``int_flux`` is the Gaussian's flux density with its Condon (1997) error, or its peak times
  one beam when it is not significantly larger than the beam (``unresolved``), and the sizes
  and angle are the Gaussian's; elsewhere ``int_flux`` is the island flux density and the sizes are
  the FWHM of the flux-weighted second moments of the masked pixels (``2.3548 sigma``), which
  the mask truncation makes read slightly small. Sizes are not deconvolved from the beam.
* Positions (``x_w``, ``y_w``, ``ra``, ``dec``) are flux-weighted centroids of the masked
  pixels, fitted or not: with the detector's masks they are closer to the truth than the
  fitted centres of faint sources.
* Position angles are east of north, measured through the local WCS Jacobian (any axis flip or
  rotation of the image is handled).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from astropy.table import Table
from scipy import ndimage

from caesar_mrcnn.classes import CLASS_IDS
from caesar_mrcnn.data.dataset import Annotation
from caesar_mrcnn.io.windows import read_window
from caesar_mrcnn.measure.background import BackgroundGrid, background_grid
from caesar_mrcnn.measure.ellipse import FWHM_PER_SIGMA, ellipse_from_covariance
from caesar_mrcnn.measure.gaussfit import (
    condon_flux_error,
    condon_relative_errors,
    fit_gaussian,
    is_resolved,
)
from caesar_mrcnn.measure.schema import empty_source_table, source_table
from caesar_mrcnn.measure.sky import EQUATORIAL_FRAMES, iau_name, radec, sky_frame, sky_jacobian

log = logging.getLogger(__name__)


# --- background and noise ----------------------------------------------------------------------


# --- names ----------------------------------------------------------------------------------


# --- sky geometry -----------------------------------------------------------------------------


# --- measurement ---------------------------------------------------------------------------


def _object_moments(ann: Annotation, pix: np.ndarray, bkg: float
                    ) -> tuple[float, ...]:
    """Centroids, moments, fluxes of one object; ``pix`` is the bbox window of the image."""
    y0, x0, _, _ = ann.bbox
    ys, xs = np.nonzero(ann.mask)
    vals = pix[ys, xs].astype(np.float64) - bkg
    finite = np.isfinite(vals)
    ys, xs, vals = ys[finite], xs[finite], vals[finite]
    if vals.size == 0:
        return (np.nan,) * 9 + (0,)
    xc, yc = xs.mean() + x0, ys.mean() + y0
    w = np.clip(vals, 0.0, None)
    if w.sum() <= 0:
        w = np.ones_like(vals)
    w = w / w.sum()
    xw, yw = (w * xs).sum() + x0, (w * ys).sum() + y0
    dx, dy = xs + x0 - xw, ys + y0 - yw
    cxx, cyy, cxy = (w * dx * dx).sum(), (w * dy * dy).sum(), (w * dx * dy).sum()
    return xc, yc, xw, yw, cxx, cyy, cxy, vals.max(), vals.sum(), vals.size


def beam_fwhm_pix(beam_area_pix: float) -> float:
    """FWHM (pixels) of the circular Gaussian beam with this solid angle (pixels)."""
    return math.sqrt(4.0 * math.log(2.0) * beam_area_pix / math.pi)


def fit_compact_source(ann: Annotation, image: Any, shape: tuple[int, int], bkg: float,
                       centre: tuple[float, float], cov: np.ndarray, beam_fwhm: float,
                       neighbours: Sequence[Annotation] = ()):
    """Fit an elliptical Gaussian to one object over its mask grown by one beam FWHM.

    Parameters
    ----------
    ann : Annotation
        The object (mask cropped to its bounding box, image pixels).
    image : numpy.ndarray or LazyImage
        The image (Jy/beam).
    shape : tuple of int
        ``(ny, nx)`` of the image.
    bkg : float
        Local background (Jy/beam), subtracted before the fit.
    centre, cov
        Starting centre ``(x, y)`` and covariance (pixels), e.g. from the second moments.
    beam_fwhm : float
        Beam FWHM (pixels): the growth of the mask, so that the wings below the detection
        threshold take part in the fit.
    neighbours : sequence of Annotation
        Other objects near this one: their pixels are left out of the grown mask, so that a
        close neighbour does not pull the fit.

    Returns
    -------
    caesar_mrcnn.measure.gaussfit.GaussianFit
    """
    grow = max(int(math.ceil(beam_fwhm)), 1)
    y0, x0, y1, x1 = ann.bbox
    ny, nx = shape
    wy0, wx0 = max(y0 - grow, 0), max(x0 - grow, 0)
    wy1, wx1 = min(y1 + grow, ny), min(x1 + grow, nx)
    mask = np.zeros((wy1 - wy0, wx1 - wx0), dtype=bool)
    mask[y0 - wy0:y1 - wy0, x0 - wx0:x1 - wx0] = ann.mask
    region = ndimage.distance_transform_edt(~mask) <= grow
    for other in neighbours:
        oy0, ox0, oy1, ox1 = other.bbox
        cy0, cx0, cy1, cx1 = max(oy0, wy0), max(ox0, wx0), min(oy1, wy1), min(ox1, wx1)
        if cy0 < cy1 and cx0 < cx1:
            theirs = other.mask[cy0 - oy0:cy1 - oy0, cx0 - ox0:cx1 - ox0]
            region[cy0 - wy0:cy1 - wy0, cx0 - wx0:cx1 - wx0] &= ~theirs
    region |= mask
    pix = read_window(image, wy0, wy1, wx0, wx1).astype(np.float64) - bkg
    region &= np.isfinite(pix)
    ys, xs = np.nonzero(region)
    return fit_gaussian(pix[ys, xs], xs + wx0, ys + wy0, centre[0], centre[1], cov,
                        min_sigma=0.5 * beam_fwhm / FWHM_PER_SIGMA)


def _fit_compact_objects(objects: list[Annotation], image: Any, shape: tuple[int, int],
                         bkg: np.ndarray, xw: np.ndarray, yw: np.ndarray, cov: np.ndarray,
                         nislands: np.ndarray, beam_fwhm: float
                         ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gaussian fits of the compact single-island objects; ``cov`` takes the fitted shapes.

    Returns whether each object was fitted, and the fitted volume and peak (NaN elsewhere).
    Positions are left alone: the flux-weighted centroids are closer to the truth than the
    fitted centres below SNR 20 on the held-out fields (docs/models.md).
    """
    n = len(objects)
    fitted = np.zeros(n, dtype=bool)
    volume, peak = np.full(n, np.nan), np.full(n, np.nan)
    boxes = np.array([a.bbox for a in objects], dtype=np.int64)
    grow = math.ceil(beam_fwhm)
    for i, ann in enumerate(objects):
        if ann.category != "compact" or nislands[i] != 1 or not np.isfinite(xw[i]):
            continue
        near = np.flatnonzero((boxes[:, 0] < boxes[i, 2] + grow)
                              & (boxes[:, 2] > boxes[i, 0] - grow)
                              & (boxes[:, 1] < boxes[i, 3] + grow)
                              & (boxes[:, 3] > boxes[i, 1] - grow))
        fit = fit_compact_source(ann, image, shape, float(bkg[i]), (xw[i], yw[i]), cov[i],
                                 beam_fwhm, [objects[j] for j in near if j != i])
        if fit.ok:
            fitted[i] = True
            cov[i] = fit.cov
            volume[i], peak[i] = fit.volume, fit.peak
    return fitted, volume, peak


def measure_sources(objects: list[Annotation], image: Any, shape: tuple[int, int], *,
                    wcs=None, beam_area_pix: float | None = None,
                    background: BackgroundGrid | None = None, name_prefix: str = "",
                    fit_compact: bool = True, meta: dict | None = None) -> Table:
    """Measure the parameters of detected objects.

    Parameters
    ----------
    objects : list of Annotation
        Detections in image pixels; ``attrs`` may hold ``score`` and ``merged``.
    image : numpy.ndarray or LazyImage
        The image (Jy/beam), NaN where blank.
    shape : tuple of int
        ``(ny, nx)`` of the image.
    wcs : astropy.wcs.WCS, optional
        Celestial WCS; without it sky columns are NaN and names are pixel based.
    beam_area_pix : float, optional
        Beam solid angle in pixels; without it the integrated flux is NaN.
    background : BackgroundGrid, optional
        Computed with :func:`background_grid` when omitted.
    name_prefix : str
        Prefix of the IAU names.
    fit_compact : bool
        Fit compact single-island objects with elliptical Gaussians (needs ``beam_area_pix``).
    meta : dict, optional
        Table metadata to add.

    Returns
    -------
    astropy.table.Table
        One row per object, columns with units (deg, arcsec, Jy, Jy/beam, pix); ``meta``
        holds ``FRAME`` (celestial frame of ra/dec) and ``BEAMAREA`` (pixels).
    """
    meta = dict(meta or {})
    frame = sky_frame(wcs) if wcs is not None else "pixel"
    meta["FRAME"] = frame if frame in EQUATORIAL_FRAMES or frame == "pixel" else "icrs"
    meta["BEAMAREA"] = float(beam_area_pix) if beam_area_pix else float("nan")
    if not objects:
        table = empty_source_table()
        table.meta.update(meta)
        return table
    if background is None:
        background = background_grid(image, shape)
    ny, nx = shape
    n = len(objects)
    boxes = np.array([a.bbox for a in objects], dtype=np.int64)
    # local background/rms at the bbox centre, used for the flux measurement
    bkg, rms = background.at((boxes[:, 0] + boxes[:, 2] - 1) / 2.0,
                             (boxes[:, 1] + boxes[:, 3] - 1) / 2.0)
    rows = np.zeros((n, 10))
    nislands = np.zeros(n, dtype=np.int32)
    flag_nan = np.zeros(n, dtype=bool)
    eight = np.ones((3, 3), dtype=bool)
    for i, ann in enumerate(objects):
        y0, x0, y1, x1 = ann.bbox
        # one pixel of margin to see blank pixels bordering the mask
        win = np.full((y1 - y0 + 2, x1 - x0 + 2), 0.0, dtype=np.float32)
        cy0, cx0, cy1, cx1 = max(y0 - 1, 0), max(x0 - 1, 0), min(y1 + 1, ny), min(x1 + 1, nx)
        win[cy0 - y0 + 1:cy1 - y0 + 1, cx0 - x0 + 1:cx1 - x0 + 1] = read_window(
            image, cy0, cy1, cx0, cx1)
        padded = np.pad(ann.mask, 1)
        grown = ndimage.binary_dilation(padded, eight)
        flag_nan[i] = bool(np.isnan(win[grown]).any())
        rows[i] = _object_moments(ann, win[1:-1, 1:-1], float(bkg[i]))
        nislands[i] = ndimage.label(ann.mask, structure=eight)[1]
    xc, yc, xw, yw, cxx, cyy, cxy, peak, total, npix = rows.T
    cov = np.stack([np.stack([cxx, cxy], -1), np.stack([cxy, cyy], -1)], -2)

    beam_fwhm = beam_fwhm_pix(beam_area_pix) if beam_area_pix else math.nan
    fitted = np.zeros(n, dtype=bool)
    fit_volume, fit_peak = np.full(n, np.nan), np.full(n, np.nan)
    if beam_area_pix and fit_compact:
        fitted, fit_volume, fit_peak = _fit_compact_objects(
            objects, image, shape, bkg, xw, yw, cov, nislands, beam_fwhm)
    maj_pix, min_pix, pa_pix = ellipse_from_covariance(cov, None)
    if wcs is not None:
        ra, dec, _ = radec(wcs, xw, yw)
        maj_deg, min_deg, pa = ellipse_from_covariance(cov, sky_jacobian(wcs, xw, yw))
        maj_as, min_as = maj_deg * 3600 * FWHM_PER_SIGMA, min_deg * 3600 * FWHM_PER_SIGMA
        names = iau_name(ra, dec, name_prefix)
    else:
        ra = dec = maj_as = min_as = np.full(n, np.nan)
        pa = pa_pix
        head = f"{name_prefix} " if name_prefix else ""
        names = np.array([f"{head}X{x:.1f}Y{y:.1f}" for x, y in zip(xw, yw)], dtype=str)
    if beam_area_pix:
        island_flux = total / beam_area_pix
        err_island = rms * np.sqrt(npix / beam_area_pix)
        fit_flux = fit_volume / beam_area_pix
        fwhm_pix = np.stack([maj_pix, min_pix], -1) * FWHM_PER_SIGMA
        fit_snr = fit_peak / rms
        err_fit = condon_flux_error(fit_flux, fit_snr, fwhm_pix[:, 0], fwhm_pix[:, 1],
                                    beam_fwhm)
        # A point source is one beam: its flux density (Jy) is its peak (Jy/beam), which noise
        # biases less than the product of the two fitted axes.
        resolved = is_resolved(fit_snr, fwhm_pix[:, 0], fwhm_pix[:, 1], beam_fwhm)
        unresolved = fitted & ~resolved
        point_err = fit_peak * condon_relative_errors(fit_snr, beam_fwhm, beam_fwhm,
                                                      beam_fwhm)[0]
        fit_flux = np.where(unresolved, fit_peak, fit_flux)
        err_fit = np.where(unresolved, point_err, err_fit)
        int_flux = np.where(fitted, fit_flux, island_flux)
        err_int = np.where(fitted, err_fit, err_island)
    else:
        int_flux = err_int = island_flux = err_island = np.full(n, np.nan)
        unresolved = np.zeros(n, dtype=bool)
    with np.errstate(divide="ignore", invalid="ignore"):
        snr = peak / rms
    cols = {
        "name": names,
        "class": np.array([a.category for a in objects], dtype=str),
        "class_id": np.array([CLASS_IDS[a.category] for a in objects]),
        "score": np.array([a.attrs.get("score", np.nan) for a in objects], dtype=float),
        "x": xc, "y": yc, "x_w": xw, "y_w": yw, "ra": ra, "dec": dec,
        "peak_flux": peak, "int_flux": int_flux, "err_int_flux": err_int,
        "island_flux": island_flux, "err_island_flux": err_island,
        "local_bkg": bkg, "local_rms": rms, "snr": snr,
        "maj_fwhm": maj_as, "min_fwhm": min_as, "pa": pa,
        "maj_fwhm_pix": maj_pix * FWHM_PER_SIGMA, "min_fwhm_pix": min_pix * FWHM_PER_SIGMA,
        "npix": npix.astype(np.int64), "nislands": nislands, "fitted": fitted,
        "unresolved": unresolved,
        "bbox_y0": boxes[:, 0], "bbox_x0": boxes[:, 1],
        "bbox_y1": boxes[:, 2], "bbox_x1": boxes[:, 3],
        "flag_edge": (boxes[:, 0] == 0) | (boxes[:, 1] == 0) | (boxes[:, 2] == ny)
        | (boxes[:, 3] == nx),
        "flag_nan": flag_nan,
        "flag_merged": np.array([bool(a.attrs.get("merged", False)) for a in objects]),
    }
    return source_table(cols, meta)
