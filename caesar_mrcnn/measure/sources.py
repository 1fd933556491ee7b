"""Source parameters of detected objects: position, flux density, size, shape, SNR, flags.

Each object is an :class:`~caesar_mrcnn.data.dataset.Annotation` (mask cropped to its bounding
box). Its pixels are read window by window from the image, so a survey mosaic never has to be in
memory. Background and rms come from sigma-clipped statistics on a coarse grid of boxes
(:func:`background_grid`), computed strip by strip and interpolated at each source.

Conventions
-----------
* Pixel coordinates are 0-based (numpy), ``x`` along columns, ``y`` along rows.
* Fluxes are measured on background-subtracted pixels (the background map at each pixel).
  Peak in the image unit (Jy/beam).
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
from caesar_mrcnn.measure.component_rows import (
    ComponentNumbers,
    component_numbers,
    entry_numbers,
    sky_position_errors,
)
from caesar_mrcnn.measure.components import FitRules, fit_island
from caesar_mrcnn.measure.deconvolve import beam_cov_pix
from caesar_mrcnn.measure.ellipse import FWHM_PER_SIGMA, ellipse_from_covariance
from caesar_mrcnn.measure.gaussfit import fit_gaussian
from caesar_mrcnn.measure.schema import (
    COMPONENT_COLUMNS,
    class_probability_columns,
    component_table,
    empty_source_table,
    source_table,
)
from caesar_mrcnn.measure.sky import EQUATORIAL_FRAMES, iau_name, radec, sky_frame, sky_jacobian

log = logging.getLogger(__name__)


# --- background and noise ----------------------------------------------------------------------


# --- names ----------------------------------------------------------------------------------


# --- sky geometry -----------------------------------------------------------------------------


# --- measurement ---------------------------------------------------------------------------


def _object_moments(ann: Annotation, pix: np.ndarray, bkg: np.ndarray
                    ) -> tuple[float, ...]:
    """Centroids, moments, fluxes of one object; ``pix`` is the bbox window of the image,
    ``bkg`` the background map over it."""
    y0, x0, _, _ = ann.bbox
    ys, xs = np.nonzero(ann.mask)
    vals = pix[ys, xs].astype(np.float64) - bkg[ys, xs]
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


def _fit_objects(objects: list[Annotation], image: Any, shape: tuple[int, int],
                 background: BackgroundGrid, xw: np.ndarray, yw: np.ndarray, wcs, beam,
                 beam_area_pix: float, rules: FitRules
                 ) -> tuple[list[list[ComponentNumbers] | None], list[np.ndarray | None]]:
    """Gaussian components of every compact object, and of every single-island extended one
    whose island they describe within the noise (None elsewhere, or where no fit converged),
    and the local WCS Jacobian of every object (None without a WCS)."""
    n = len(objects)
    boxes = np.array([a.bbox for a in objects], dtype=np.int64)
    jacs: list[np.ndarray | None] = [None] * n
    if wcs is not None:
        ok = np.isfinite(xw) & np.isfinite(yw)
        if ok.any():
            jj = sky_jacobian(wcs, xw[ok], yw[ok])
            for k, i in enumerate(np.flatnonzero(ok)):
                jacs[i] = jj[k]
    out: list[list[ComponentNumbers] | None] = [None] * n
    reach = 3 * math.ceil(beam_fwhm_pix(beam_area_pix))
    for i, ann in enumerate(objects):
        if ann.category == "compact":
            max_chi2 = None
        elif ann.category == "extended" and ndimage.label(
                ann.mask, structure=np.ones((3, 3), dtype=bool))[1] == 1:
            max_chi2 = rules.gaussian_chi2
        else:
            continue
        if not np.isfinite(xw[i]):
            continue
        near = np.flatnonzero((boxes[:, 0] < boxes[i, 2] + reach)
                              & (boxes[:, 2] > boxes[i, 0] - reach)
                              & (boxes[:, 1] < boxes[i, 3] + reach)
                              & (boxes[:, 3] > boxes[i, 1] - reach))
        bcov = beam_cov_pix(beam, wcs, float(xw[i]), float(yw[i]), beam_area_pix)
        comps = fit_island(ann, image, shape, background, bcov,
                           [objects[j] for j in near if j != i], rules, max_chi2)
        if comps:
            out[i] = [component_numbers(c, bcov, beam_area_pix, jacs[i]) for c in comps]
    return out, jacs


ISLAND_NSIGMA = 3.0
"""Pixels at this many local rms or more form an island of the image."""
SEED_NSIGMA = 5.0
"""An island of the image is a component of its own when its brightest pixel reaches this
many rms (the detection threshold of a seed, as for the peaks of a compact fit)."""
MAX_ISLAND_PEAKS = 16
"""Most pieces one island of an unfitted entry is cut into (its brightest peaks)."""


_EIGHT = np.ones((3, 3), dtype=bool)


def _image_islands(mask: np.ndarray, snr: np.ndarray) -> tuple[np.ndarray, int]:
    """8-connected islands of the mask's pixels at ``ISLAND_NSIGMA`` or more."""
    return ndimage.label(mask & (np.nan_to_num(snr, nan=-np.inf) >= ISLAND_NSIGMA),
                         structure=_EIGHT)


def _island_cores(mask: np.ndarray, snr: np.ndarray, beam_fwhm: float | None
                  ) -> tuple[np.ndarray, int, np.ndarray]:
    """The seeded islands of a mask, each cut between its separate peaks.

    A seeded island (``ISLAND_NSIGMA``, with a pixel at ``SEED_NSIGMA``) holding several peaks
    that are components of their own by the rules of the Gaussian fits
    (:func:`caesar_mrcnn.measure.components.find_peaks`: ``SEED_NSIGMA`` or more, a beam FWHM
    apart, a dip of ``FitRules.dip_nsigma`` between them) is cut along the watershed of the
    image between those peaks; without ``beam_fwhm`` no island is cut.

    Returns
    -------
    cores : int ndarray
        Core of each pixel, 1..m (0 outside every seeded island).
    m : int
    cut : bool ndarray, shape ``(m + 1,)``
        Whether core k is a piece of a cut island (``cut[0]`` unused).
    """
    from skimage.segmentation import watershed

    from caesar_mrcnn.measure.components import FitRules, find_peaks

    islands, nisl = _image_islands(mask, snr)
    cores = np.zeros(mask.shape, dtype=np.int64)
    cut = [False]
    if not nisl:
        return cores, 0, np.asarray(cut)
    vals = np.nan_to_num(snr, nan=-np.inf)
    peaks = ndimage.maximum(vals, islands, index=np.arange(1, nisl + 1))
    rules = FitRules(peak_nsigma=SEED_NSIGMA, max_components=MAX_ISLAND_PEAKS)
    unit = np.ones(mask.shape)
    m = 0
    for i, box in enumerate(ndimage.find_objects(islands), start=1):
        if box is None or peaks[i - 1] < SEED_NSIGMA:
            continue
        island = islands[box] == i
        tops = (find_peaks(snr[box], unit[box], island, beam_fwhm, rules)
                if beam_fwhm and beam_fwhm > 0 else [])
        if len(tops) <= 1:
            m += 1
            cores[box][island] = m
            cut.append(False)
            continue
        markers = np.zeros(island.shape, dtype=np.int64)
        for k, (r, c) in enumerate(tops, start=1):
            markers[r, c] = k
        # 8-connected as the island is labelled, so that the flood reaches every pixel of it
        basins = watershed(-np.where(island, vals[box], 0.0), markers, mask=island,
                           connectivity=2)
        cores[box][island] = basins[island] + m
        m += len(tops)
        cut += [True] * len(tops)
    return cores, m, np.asarray(cut)


def island_parts(mask: np.ndarray, snr: np.ndarray, beam_fwhm: float | None = None
                 ) -> tuple[np.ndarray, int]:
    """The components of a mask that is not fitted: the image's own islands inside it.

    Each 8-connected region of the mask is split between the islands of the image it holds
    (pixels at ``ISLAND_NSIGMA`` or more, with a pixel at ``SEED_NSIGMA``), and an island with
    several separate peaks between those peaks (:func:`_island_cores`, given ``beam_fwhm``):
    the region's other pixels join the nearest core, so the parts still cover the mask and
    their fluxes sum to the entry's. A region that holds at most one core stays whole. The
    detector may draw one mask over sources that are apart in the image (a bridge of noise, a
    neighbour grouped in) or over a compact source sitting on diffuse emission, and the
    catalogue must still list each of them.

    Parameters
    ----------
    mask : bool ndarray
        The entry's mask (its bounding box).
    snr : ndarray
        Background-subtracted pixels over the local rms, same shape (NaN where blank).
    beam_fwhm : float, optional
        Beam FWHM (pixels): the least separation of two peaks of one island.

    Returns
    -------
    labels : int ndarray
        Part of each mask pixel, 1..n (0 outside the mask).
    n : int
    """
    labels, n, _, _ = _parts(mask, snr, beam_fwhm)
    return labels, n


def _parts(mask: np.ndarray, snr: np.ndarray, beam_fwhm: float | None
           ) -> tuple[np.ndarray, int, np.ndarray, np.ndarray]:
    """:func:`island_parts`, with the core of each part (its label where the part's core
    is, 0 elsewhere) and whether that core was cut from a larger island (by part, index 0
    unused)."""
    regions, nreg = ndimage.label(mask, structure=_EIGHT)
    cores, _, cut = _island_cores(mask, snr, beam_fwhm)
    out = np.zeros(mask.shape, dtype=np.int64)
    part_core = np.zeros(mask.shape, dtype=np.int64)
    part_cut = [False]
    n = 0
    for r in range(1, nreg + 1):
        region = regions == r
        ids = [int(i) for i in np.unique(cores[region]) if i]
        if len(ids) <= 1:
            n += 1
            out[region] = n
            if ids:
                part_core[cores == ids[0]] = n
            part_cut.append(bool(ids) and bool(cut[ids[0]]))
            continue
        core = np.zeros(mask.shape, dtype=np.int64)
        for k, i in enumerate(ids, start=n + 1):
            core[cores == i] = k
            part_cut.append(bool(cut[i]))
        _, (iy, ix) = ndimage.distance_transform_edt(core == 0, return_indices=True)
        out[region] = core[iy[region], ix[region]]
        part_core += core
        n += len(ids)
    return out, n, part_core, np.asarray(part_cut)


def _island_components(ann: Annotation, image: Any, rms: float, beam_area_pix: float,
                       bkg_map: np.ndarray, rms_map: np.ndarray) -> list[tuple[float, ...]]:
    """``(x, y, peak, flux, err_flux)`` of each part of a mask (:func:`island_parts`; pixels,
    Jy/beam, Jy): the flux-weighted centroid of the part's island (of the whole part where it
    has no pixel at ``ISLAND_NSIGMA``; of its pixels at half its peak or more where the part
    was cut from an island between peaks), its brightest pixel and its sum over the beam
    area. ``bkg_map`` and ``rms_map`` are the background and rms over the entry's box: the
    islands are judged on the local rms, the flux errors use ``rms``, the entry's, as the
    entry's own error does."""
    y0, x0, y1, x1 = ann.bbox
    pix = read_window(image, y0, y1, x0, x1).astype(np.float64) - bkg_map
    noise = np.asarray(rms_map, np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        snr = np.where((noise > 0) & np.isfinite(noise), pix / noise, np.nan)
    labels, n, cores, cut = _parts(ann.mask, snr,
                                   beam_fwhm_pix(beam_area_pix) if beam_area_pix else None)
    islands, _ = _image_islands(ann.mask, snr)
    rows = []
    for k in range(1, n + 1):
        part = (labels == k) & np.isfinite(pix)
        ys, xs = np.nonzero(part)
        if ys.size == 0:
            continue
        vals = pix[ys, xs]
        # the centroid of the part's brightest island alone: its noise pixels and noise
        # islands would pull it towards the middle of the mask (a part's brightest island
        # lies wholly in it: a seeded one is a part's core, and any other is in a part of
        # its own); a piece of a cut island reaches down into the emission it shares with
        # its neighbours, so only its pixels at half its peak or more place it
        cy, cx = ys, xs
        top = islands[ys[np.argmax(vals)], xs[np.argmax(vals)]]
        core = (cores == k) & np.isfinite(pix)
        if cut[k] and core.any():
            cy, cx = np.nonzero(core & (pix >= 0.5 * pix[core].max()))
        elif top:
            cy, cx = np.nonzero(islands == top)
        w = np.clip(pix[cy, cx], 0.0, None)
        w = w / w.sum() if w.sum() > 0 else np.full(w.size, 1.0 / w.size)
        flux = vals.sum() / beam_area_pix if beam_area_pix else math.nan
        err = rms * math.sqrt(vals.size / beam_area_pix) if beam_area_pix else math.nan
        rows.append(((w * cx).sum() + x0, (w * cy).sum() + y0, vals.max(), flux, err))
    return sorted(rows, key=lambda r: -r[3] if math.isfinite(r[3]) else -r[2])


def measure_sources(objects: list[Annotation], image: Any, shape: tuple[int, int], *,
                    wcs=None, beam_area_pix: float | None = None,
                    background: BackgroundGrid | None = None, name_prefix: str = "",
                    fit_compact: bool = True, meta: dict | None = None, beam=None,
                    rules: FitRules | None = None) -> Table:
    """The source table of :func:`measure_catalogs` (same parameters)."""
    return measure_catalogs(objects, image, shape, wcs=wcs, beam_area_pix=beam_area_pix,
                            background=background, name_prefix=name_prefix,
                            fit_compact=fit_compact, meta=meta, beam=beam, rules=rules)[0]


def measure_catalogs(objects: list[Annotation], image: Any, shape: tuple[int, int], *,
                     wcs=None, beam_area_pix: float | None = None,
                     background: BackgroundGrid | None = None, name_prefix: str = "",
                     fit_compact: bool = True, meta: dict | None = None, beam=None,
                     rules: FitRules | None = None) -> tuple[Table, Table]:
    """Measure the parameters of detected objects: the source table and its components.

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
        Fit the Gaussian components of compact objects (needs ``beam_area_pix``).
    meta : dict, optional
        Table metadata to add.
    beam : caesar_mrcnn.io.beam_shape.Beam, optional
        Restoring beam (axes and angle); by default ``image.beam`` when the image has one,
        else a circular beam of ``beam_area_pix``. Its area is always ``beam_area_pix``.
    rules : FitRules, optional
        Thresholds of the component fits (:class:`caesar_mrcnn.measure.components.FitRules`).

    Returns
    -------
    sources : astropy.table.Table
        One row per object, columns with units (deg, arcsec, Jy, Jy/beam, pix); ``meta``
        holds ``FRAME`` (celestial frame of ra/dec) and ``BEAMAREA`` (pixels).
    components : astropy.table.Table
        One row per fitted Gaussian of a fitted entry, or per mask island of any other entry
        (:data:`caesar_mrcnn.measure.schema.COMPONENT_COLUMNS`), linked to its entry by
        ``source`` (name) and ``source_index`` (row).
    """
    meta = dict(meta or {})
    frame = sky_frame(wcs) if wcs is not None else "pixel"
    meta["FRAME"] = frame if frame in EQUATORIAL_FRAMES or frame == "pixel" else "icrs"
    meta["BEAMAREA"] = float(beam_area_pix) if beam_area_pix else float("nan")
    if not objects:
        table = empty_source_table()
        table.meta.update(meta)
        return table, component_table(meta=meta)
    if beam is None:
        beam = getattr(image, "beam", None)
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
        rows[i] = _object_moments(ann, win[1:-1, 1:-1],
                                  background.window(y0, y1, x0, x1)[0])
        nislands[i] = ndimage.label(ann.mask, structure=eight)[1]
    xc, yc, xw, yw, cxx, cyy, cxy, peak, total, npix = rows.T
    # the brightest pixel, before a fit replaces the peak: the seed significance
    peak_pix = peak.copy()
    cov = np.stack([np.stack([cxx, cxy], -1), np.stack([cxy, cyy], -1)], -2)

    comps: list[list[ComponentNumbers] | None] = [None] * n
    jacs: list[np.ndarray | None] = [None] * n
    if beam_area_pix and fit_compact:
        comps, jacs = _fit_objects(objects, image, shape, background, xw, yw, wcs, beam,
                                   beam_area_pix, rules or FitRules())
    fitted = np.array([c is not None for c in comps], dtype=bool)
    entries = [entry_numbers(c) if c is not None else None for c in comps]
    # the position of a fitted entry is its fitted centre; x_w, y_w stay the centroid
    xs_pos, ys_pos = xw.copy(), yw.copy()
    extra = {k: np.full(n, np.nan) for k in ("err_peak_flux", "err_ra", "err_dec",
                                             "err_maj_fwhm", "err_min_fwhm", "err_pa",
                                             "dc_maj_fwhm", "dc_min_fwhm", "dc_pa")}
    for i, e in enumerate(entries):
        if e is None:
            continue
        xs_pos[i], ys_pos[i], peak[i], cov[i] = e.x, e.y, e.peak, e.cov
        extra["err_peak_flux"][i] = e.err_peak
        extra["err_ra"][i], extra["err_dec"][i] = sky_position_errors(e.err_pos_pix, jacs[i])
        for key, value in (("err_maj_fwhm", e.err_maj), ("err_min_fwhm", e.err_min),
                           ("err_pa", e.err_pa), ("dc_maj_fwhm", e.dc_maj),
                           ("dc_min_fwhm", e.dc_min), ("dc_pa", e.dc_pa)):
            extra[key][i] = value
    maj_pix, min_pix, pa_pix = ellipse_from_covariance(cov, None)
    if wcs is not None:
        ra, dec, _ = radec(wcs, xs_pos, ys_pos)
        maj_deg, min_deg, pa = ellipse_from_covariance(cov, sky_jacobian(wcs, xs_pos, ys_pos))
        maj_as, min_as = maj_deg * 3600 * FWHM_PER_SIGMA, min_deg * 3600 * FWHM_PER_SIGMA
        names = iau_name(ra, dec, name_prefix)
    else:
        ra = dec = maj_as = min_as = np.full(n, np.nan)
        pa = pa_pix
        head = f"{name_prefix} " if name_prefix else ""
        names = np.array([f"{head}X{x:.1f}Y{y:.1f}" for x, y in zip(xs_pos, ys_pos)],
                         dtype=str)
    if beam_area_pix:
        island_flux = total / beam_area_pix
        err_island = rms * np.sqrt(npix / beam_area_pix)
        fit_flux = np.array([e.flux if e else np.nan for e in entries])
        err_fit = np.array([e.err_flux if e else np.nan for e in entries])
        unresolved = np.array([bool(e and e.unresolved) for e in entries])
        int_flux = np.where(fitted, fit_flux, island_flux)
        err_int = np.where(fitted, err_fit, err_island)
    else:
        int_flux = err_int = island_flux = err_island = np.full(n, np.nan)
        unresolved = np.zeros(n, dtype=bool)
    with np.errstate(divide="ignore", invalid="ignore"):
        snr = peak / rms
        snr_pix = peak_pix / rms
    cols = {
        "name": names,
        "class": np.array([a.category for a in objects], dtype=str),
        "class_id": np.array([CLASS_IDS[a.category] for a in objects]),
        "score": np.array([a.attrs.get("score", np.nan) for a in objects], dtype=float),
        **class_probability_columns(objects),
        "x": xc, "y": yc, "x_w": xw, "y_w": yw, "ra": ra, "dec": dec,
        "peak_flux": peak, "int_flux": int_flux, "err_int_flux": err_int,
        "island_flux": island_flux, "err_island_flux": err_island,
        "local_bkg": bkg, "local_rms": rms, "snr": snr, "snr_pix": snr_pix,
        "maj_fwhm": maj_as, "min_fwhm": min_as, "pa": pa,
        "maj_fwhm_pix": maj_pix * FWHM_PER_SIGMA, "min_fwhm_pix": min_pix * FWHM_PER_SIGMA,
        "npix": npix.astype(np.int64), "nislands": nislands, "fitted": fitted,
        "unresolved": unresolved,
        "n_components": np.zeros(n, dtype=np.int32),
        **extra,
        "bbox_y0": boxes[:, 0], "bbox_x0": boxes[:, 1],
        "bbox_y1": boxes[:, 2], "bbox_x1": boxes[:, 3],
        "flag_edge": (boxes[:, 0] == 0) | (boxes[:, 1] == 0) | (boxes[:, 2] == ny)
        | (boxes[:, 3] == nx),
        "flag_nan": flag_nan,
        "flag_merged": np.array([bool(a.attrs.get("merged", False)) for a in objects]),
        "flag_island": np.array([a.attrs.get("origin") == "island" for a in objects],
                                dtype=bool),
    }
    ctable = _component_table(objects, image, comps, jacs, bkg, rms, names, wcs,
                              beam_area_pix, meta, background)
    cols["n_components"] = np.bincount(np.asarray(ctable["source_index"], dtype=np.int64),
                                       minlength=n)
    return source_table(cols, meta), ctable


def _component_table(objects, image, comps, jacs, bkg, rms, names, wcs, beam_area_pix,
                     meta, background) -> Table:
    """One row per fitted component of a fitted entry, per mask island of any other entry
    (its islands judged on ``background``'s rms map)."""
    rows: list[dict] = []
    for i, ann in enumerate(objects):
        if comps[i] is not None:
            for k, c in enumerate(comps[i], start=1):
                era, edec = sky_position_errors(c.err_pos_pix, jacs[i])
                rows.append(dict(
                    source_index=i, component=k, kind="gaussian", x=c.x, y=c.y,
                    err_ra=era, err_dec=edec, peak_flux=c.peak, err_peak_flux=c.err_peak,
                    int_flux=c.flux, err_int_flux=c.err_flux, local_rms=c.rms,
                    maj_fwhm=c.maj if jacs[i] is not None else np.nan,
                    min_fwhm=c.min if jacs[i] is not None else np.nan, pa=c.pa,
                    err_maj_fwhm=c.err_maj, err_min_fwhm=c.err_min, err_pa=c.err_pa,
                    dc_maj_fwhm=c.dc_maj, dc_min_fwhm=c.dc_min, dc_pa=c.dc_pa,
                    resolved=c.resolved))
            continue
        for k, (x, y, pk, flux, err) in enumerate(
                _island_components(ann, image, float(rms[i]), beam_area_pix or 0.0,
                                   *background.window(*ann.bbox[::2], *ann.bbox[1::2])),
                start=1):  # bbox (y0, x0, y1, x1) -> window(y0, y1, x0, x1)
            rows.append(dict(source_index=i, component=k, kind="island", x=x, y=y,
                             peak_flux=pk, int_flux=flux, err_int_flux=err,
                             local_rms=float(rms[i]), resolved=False))
    if not rows:
        return component_table(meta=meta)
    cols = {}
    for name, dtype, _, _ in COMPONENT_COLUMNS:
        if name in ("source", "ra", "dec"):
            continue
        fill = False if dtype is bool else ("" if dtype is str else np.nan)
        cols[name] = np.array([r.get(name, fill) for r in rows])
    cols["source"] = np.asarray(names)[cols["source_index"].astype(np.int64)]
    if wcs is not None:
        cols["ra"], cols["dec"], _ = radec(wcs, cols["x"], cols["y"])
    else:
        cols["ra"] = cols["dec"] = np.full(len(rows), np.nan)
    return component_table(cols, meta)
