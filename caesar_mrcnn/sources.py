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
  by one beam FWHM (:mod:`caesar_mrcnn.gaussfit`). Where the fit succeeds (``fitted`` is True),
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
from dataclasses import dataclass
from typing import Any

import numpy as np
from astropy import units as u
from astropy.table import Table
from scipy import ndimage

from caesar_mrcnn.classes import CLASS_IDS
from caesar_mrcnn.data.dataset import Annotation
from caesar_mrcnn.gaussfit import (
    FWHM_PER_SIGMA,
    condon_flux_error,
    condon_relative_errors,
    fit_gaussian,
    is_resolved,
)

log = logging.getLogger(__name__)

_EQUATORIAL = ("icrs", "fk5", "fk4")


def read_window(image: Any, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
    """Pixels ``[y0:y1, x0:x1]`` (clipped) of a numpy array or an object with ``read_window``."""
    if hasattr(image, "read_window"):
        return image.read_window(y0, y1, x0, x1)
    data = image.data if hasattr(image, "data") and not isinstance(image, np.ndarray) else image
    ny, nx = data.shape
    return np.asarray(data[max(y0, 0):min(y1, ny), max(x0, 0):min(x1, nx)], dtype=np.float32)


# --- background and noise ----------------------------------------------------------------------


@dataclass
class BackgroundGrid:
    """Background and rms on a coarse grid of ``box`` × ``box`` cells.

    Attributes
    ----------
    bkg, rms : numpy.ndarray, shape ``(nby, nbx)``
        Sigma-clipped background and rms per cell (image unit, e.g. Jy/beam).
    box : int
        Cell side in pixels.
    """

    bkg: np.ndarray
    rms: np.ndarray
    box: int

    def at(self, y: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Background and rms at pixel positions, bilinear between cell centres."""
        coords = np.stack([(np.asarray(y, float) + 0.5) / self.box - 0.5,
                           (np.asarray(x, float) + 0.5) / self.box - 0.5]).reshape(2, -1)
        out = [ndimage.map_coordinates(g, coords, order=1, mode="nearest").reshape(np.shape(y))
               for g in (self.bkg, self.rms)]
        return out[0], out[1]


def _fill_nan(grid: np.ndarray) -> np.ndarray:
    """Replace NaN cells by the nearest finite cell (all-NaN stays NaN)."""
    bad = ~np.isfinite(grid)
    if not bad.any() or bad.all():
        return grid
    idx = ndimage.distance_transform_edt(bad, return_distances=False, return_indices=True)
    return grid[tuple(idx)]


def background_grid(image: Any, shape: tuple[int, int], box: int = 64, sigma: float = 3.0,
                    min_fraction: float = 0.3) -> BackgroundGrid:
    """Background (SExtractor mode estimator) and rms (MAD std) on a coarse grid.

    Reads one strip of ``box`` rows at a time, so peak memory is ``box * nx`` pixels.

    Parameters
    ----------
    image : numpy.ndarray or LazyImage
        2D image (NaN where invalid).
    shape : tuple of int
        ``(ny, nx)``.
    box : int
        Cell side (pixels); a few beams to a few tens of beams.
    sigma : float
        Sigma-clipping threshold.
    min_fraction : float
        Cells with fewer finite pixels than this fraction take the value of the nearest cell.
    """
    import warnings

    from astropy.stats import SigmaClip
    from astropy.utils.exceptions import AstropyUserWarning
    from photutils.background import MADStdBackgroundRMS, SExtractorBackground

    ny, nx = shape
    nby, nbx = -(-ny // box), -(-nx // box)
    clip = SigmaClip(sigma=sigma, maxiters=5)
    bkg_est, rms_est = SExtractorBackground(clip), MADStdBackgroundRMS(clip)
    bkg = np.full((nby, nbx), np.nan)
    rms = np.full((nby, nbx), np.nan)
    for by in range(nby):
        strip = np.full((box, nbx * box), np.nan, dtype=np.float32)
        rows = read_window(image, by * box, (by + 1) * box, 0, nx)
        strip[:rows.shape[0], :nx] = rows
        cells = strip.reshape(box, nbx, box).transpose(1, 0, 2)
        enough = np.isfinite(cells).mean(axis=(1, 2)) >= min_fraction
        if enough.any():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", AstropyUserWarning)
                warnings.simplefilter("ignore", RuntimeWarning)
                bkg[by, enough] = bkg_est(cells[enough], axis=(1, 2))
                rms[by, enough] = rms_est(cells[enough], axis=(1, 2))
    return BackgroundGrid(_fill_nan(bkg), _fill_nan(rms), box)


# --- names ----------------------------------------------------------------------------------


def iau_name(ra_deg: Any, dec_deg: Any, prefix: str = "") -> np.ndarray:
    """IAU-style designations ``[prefix ]Jhhmmss.ss+ddmmss.s`` (truncated, not rounded).

    Parameters
    ----------
    ra_deg, dec_deg : array-like
        Equatorial coordinates (deg).
    prefix : str
        Survey or catalogue acronym placed before the coordinates, e.g. ``"CAESAR"``.

    Returns
    -------
    numpy.ndarray of str
    """
    ra = np.mod(np.atleast_1d(np.asarray(ra_deg, dtype=np.float64)), 360.0)
    dec = np.atleast_1d(np.asarray(dec_deg, dtype=np.float64))
    # integer centiseconds of time and deciarcseconds; the tiny offset absorbs float error
    # such as 15 deg -> 0.99999999 h, which would otherwise truncate one unit down
    cs = np.floor(ra / 15.0 * 360000.0 + 1e-6).astype(np.int64) % 8640000
    das = np.floor(np.abs(dec) * 36000.0 + 1e-6).astype(np.int64)
    head = f"{prefix} J" if prefix else "J"
    names = [f"{head}{c // 360000:02d}{c // 6000 % 60:02d}{c // 100 % 60:02d}.{c % 100:02d}"
             f"{'-' if d < 0 else '+'}{a // 36000:02d}{a // 600 % 60:02d}{a // 10 % 60:02d}"
             f".{a % 10:d}" for c, a, d in zip(cs, das, dec)]
    return np.array(names, dtype=str)


# --- sky geometry -----------------------------------------------------------------------------


def _native_sky(wcs, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Native (lon, lat) in deg of 0-based pixel positions."""
    lon, lat = wcs.all_pix2world(np.asarray(x, float), np.asarray(y, float), 0)
    return np.asarray(lon), np.asarray(lat)


def sky_frame(wcs) -> str:
    """Name of the celestial frame of a WCS (``"icrs"``, ``"fk5"``, ``"galactic"`` ...)."""
    from astropy.wcs.utils import wcs_to_celestial_frame

    return wcs_to_celestial_frame(wcs).name


def radec(wcs, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, str]:
    """Equatorial coordinates (deg) of pixel positions, and their frame name.

    Images in ICRS, FK5 or FK4 keep their own frame; other frames (galactic ...) go to ICRS.
    """
    frame = sky_frame(wcs)
    if frame in _EQUATORIAL:
        ra, dec = _native_sky(wcs, x, y)
        return np.mod(ra, 360.0), dec, frame
    sc = wcs.pixel_to_world(np.asarray(x, float), np.asarray(y, float)).icrs
    return np.asarray(sc.ra.deg), np.asarray(sc.dec.deg), "icrs"


def sky_jacobian(wcs, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Local ``d(east, north) / d(x, y)`` (deg/pixel) at pixel positions, shape ``(N, 2, 2)``.

    Central differences of the native sky coordinates; east offsets are scaled by cos(lat).
    """
    x = np.asarray(x, float)
    y = np.asarray(y, float)
    lon0, lat0 = _native_sky(wcs, x, y)
    cols = []
    for dx, dy in ((0.5, 0.0), (0.0, 0.5)):
        lp, bp = _native_sky(wcs, x + dx, y + dy)
        lm, bm = _native_sky(wcs, x - dx, y - dy)
        dlon = (lp - lm + 180.0) % 360.0 - 180.0
        cols.append(np.stack([dlon * np.cos(np.radians(lat0)), bp - bm], axis=-1))
    return np.stack(cols, axis=-1)


def ellipse_from_covariance(cov_pix: np.ndarray, jac: np.ndarray | None
                            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Major/minor sigma and position angle of covariance matrices.

    Parameters
    ----------
    cov_pix : numpy.ndarray, shape ``(N, 2, 2)``
        Covariance in pixel coordinates ordered ``(x, y)``.
    jac : numpy.ndarray, shape ``(N, 2, 2)``, optional
        :func:`sky_jacobian`; without it the result stays in pixels and the angle is measured
        from +y towards -x (north up, east left as in a standard image).

    Returns
    -------
    major, minor : numpy.ndarray
        Standard deviations along the axes (deg, or pixels without ``jac``).
    pa : numpy.ndarray
        Position angle of the major axis, east of north, in [0, 180) deg.
    """
    if jac is None:
        jac = np.broadcast_to(np.array([[-1.0, 0.0], [0.0, 1.0]]), cov_pix.shape)
    cov = jac @ cov_pix @ np.swapaxes(jac, -1, -2)
    evals, evecs = np.linalg.eigh(cov)  # ascending
    major = np.sqrt(np.clip(evals[:, 1], 0, None))
    minor = np.sqrt(np.clip(evals[:, 0], 0, None))
    east, north = evecs[:, 0, 1], evecs[:, 1, 1]
    pa = np.mod(np.degrees(np.arctan2(east, north)), 180.0)
    return major, minor, pa


# --- measurement ---------------------------------------------------------------------------


_COLUMNS = (
    ("name", str, None, "IAU-style designation"),
    ("class", str, None, "source class"),
    ("class_id", np.int16, None, "model class id (1-based)"),
    ("score", np.float32, None, "detection score"),
    ("x", np.float64, u.pix, "mask centroid, column (0-based)"),
    ("y", np.float64, u.pix, "mask centroid, row (0-based)"),
    ("x_w", np.float64, u.pix, "flux-weighted centroid, column (0-based)"),
    ("y_w", np.float64, u.pix, "flux-weighted centroid, row (0-based)"),
    ("ra", np.float64, u.deg, "right ascension of the flux-weighted centroid"),
    ("dec", np.float64, u.deg, "declination of the flux-weighted centroid"),
    ("peak_flux", np.float64, u.Jy / u.beam, "peak brightness above the background"),
    ("int_flux", np.float64, u.Jy,
     "integrated flux density (Gaussian fit where fitted, else island sum)"),
    ("err_int_flux", np.float64, u.Jy, "integrated flux density error"),
    ("island_flux", np.float64, u.Jy, "sum of the mask pixels over the beam area"),
    ("err_island_flux", np.float64, u.Jy, "island flux density error from the local rms"),
    ("local_bkg", np.float64, u.Jy / u.beam, "local background"),
    ("local_rms", np.float64, u.Jy / u.beam, "local rms noise"),
    ("snr", np.float64, None, "peak / local rms"),
    ("maj_fwhm", np.float64, u.arcsec, "major axis FWHM (Gaussian fit or second moments)"),
    ("min_fwhm", np.float64, u.arcsec, "minor axis FWHM (Gaussian fit or second moments)"),
    ("pa", np.float64, u.deg, "position angle of the major axis, east of north"),
    ("maj_fwhm_pix", np.float64, u.pix, "major axis FWHM (pixels)"),
    ("min_fwhm_pix", np.float64, u.pix, "minor axis FWHM (pixels)"),
    ("npix", np.int64, u.pix, "pixels in the mask"),
    ("nislands", np.int32, None, "connected islands in the mask"),
    ("fitted", bool, None, "flux density and shape from an elliptical Gaussian fit"),
    ("unresolved", bool, None, "fitted and no larger than the beam: int_flux = fitted peak"),
    ("bbox_y0", np.int64, u.pix, "bounding box first row"),
    ("bbox_x0", np.int64, u.pix, "bounding box first column"),
    ("bbox_y1", np.int64, u.pix, "bounding box end row (exclusive)"),
    ("bbox_x1", np.int64, u.pix, "bounding box end column (exclusive)"),
    ("flag_edge", bool, None, "mask touches the image border"),
    ("flag_nan", bool, None, "mask borders blank (NaN) pixels"),
    ("flag_merged", bool, None, "united from detections in several tiles"),
)


def empty_source_table() -> Table:
    """A source table with all columns and no rows."""
    return _to_table({name: np.zeros(0, dtype=dt) for name, dt, _, _ in _COLUMNS})


def _to_table(cols: dict[str, np.ndarray], meta: dict | None = None) -> Table:
    table = Table(meta=dict(meta or {}))
    for name, dtype, unit, desc in _COLUMNS:
        data = np.asarray(cols[name])
        table[name] = data if dtype is str else data.astype(dtype)
        table[name].unit = unit
        table[name].description = desc
    return table


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
    caesar_mrcnn.gaussfit.GaussianFit
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
    meta["FRAME"] = frame if frame in _EQUATORIAL or frame == "pixel" else "icrs"
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
    return _to_table(cols, meta)
