"""Match a source catalogue (positions, optional ellipses) to ground-truth masks.

Catalogues from different finders carry different things (Aegean and PyBDSF: fitted Gaussian
ellipses; caesar-mrcnn: masks too), so the comparison matches every finder's *catalogue* by the
same rules, one-to-one (Hungarian, :func:`~caesar_mrcnn.evaluation.matching.match_pairs`):

- a compact truth source is a candidate for a catalogue entry whose position lies within
  ``radius_beams`` beam FWHM (major axis) of the true position; quality ``1 - d / radius``;
- an extended or multi-island truth source is a candidate for a catalogue entry whose position
  falls inside the truth mask, or whose ellipse (FWHM contour) overlaps the truth mask;
  quality = (mask pixels inside the ellipse + 1 if the position is inside the mask) /
  (ellipse area in pixels + 1), so the entry that sits on the source and fills it wins.
"""

from __future__ import annotations

from collections.abc import Sequence

import astropy.units as units
import numpy as np
from astropy.coordinates import SkyCoord
from astropy.wcs import WCS
from scipy import sparse

from caesar_mrcnn.data.dataset import Annotation
from caesar_mrcnn.evaluation.matching import Matching, match_pairs
from caesar_mrcnn.evaluation.scoring import positions

COMPACT_CLASSES = ("compact",)
"""Truth classes matched by position."""

REAL_CLASSES: tuple[str, ...] = ("compact", "extended", "extended-multisland")
"""Truth classes that are real sources (completeness is computed over these)."""


def truth_pixel_positions(truth: Sequence[Annotation], wcs: WCS | None
                          ) -> tuple[np.ndarray, np.ndarray]:
    """True pixel positions (0-based): from ``ra, dec`` through the WCS where both are given,
    else ``attrs["x"], attrs["y"]``, else the mask centroid."""
    x, y = positions(truth)
    ra = np.array([float(a.attrs.get("ra", np.nan)) for a in truth])
    dec = np.array([float(a.attrs.get("dec", np.nan)) for a in truth])
    sky = np.isfinite(ra) & np.isfinite(dec)
    if wcs is not None and sky.any():
        px, py = wcs.world_to_pixel(SkyCoord(ra[sky], dec[sky], unit="deg"))
        x[sky], y[sky] = px, py
    return x, y


def catalog_pixel_geometry(ra, dec, maj_arcsec, min_arcsec, pa_deg, wcs: WCS
                           ) -> tuple[np.ndarray, ...]:
    """Pixel centres and half-axis vectors of catalogue ellipses (FWHM contour).

    Returns
    -------
    x, y : numpy.ndarray
        Centres (pixels, 0-based).
    u, v : numpy.ndarray, shape ``(n, 2)``
        Major and minor half-axis vectors ``(dx, dy)`` in pixels (NaN where no ellipse).
    """
    ra, dec, maj, mnr, pa = (np.asarray(v, dtype=float) for v in
                             (ra, dec, maj_arcsec, min_arcsec, pa_deg))
    centre = SkyCoord(ra, dec, unit="deg")
    x, y = (np.asarray(c, float) for c in wcs.world_to_pixel(centre))
    ok = np.isfinite(maj) & np.isfinite(mnr) & (maj > 0) & (mnr > 0) & np.isfinite(pa)
    u = np.full((ra.size, 2), np.nan)
    v = np.full((ra.size, 2), np.nan)
    if ok.any():
        c = centre[ok]
        # Walk along the axes on the sky, so PA (east of north) is right whatever the WCS.
        ends_u = c.directional_offset_by(pa[ok] * units.deg, maj[ok] / 2 * units.arcsec)
        ends_v = c.directional_offset_by((pa[ok] + 90) * units.deg, mnr[ok] / 2 * units.arcsec)
        ux, uy = wcs.world_to_pixel(ends_u)
        vx, vy = wcs.world_to_pixel(ends_v)
        u[ok] = np.stack([ux - x[ok], uy - y[ok]], axis=1)
        v[ok] = np.stack([vx - x[ok], vy - y[ok]], axis=1)
    return x, y, u, v


def _inside_ellipse(px: np.ndarray, py: np.ndarray, cx, cy, u: np.ndarray, v: np.ndarray
                    ) -> np.ndarray:
    """(n_ellipses, n_points) bool: point inside ellipse centred (cx, cy) with half-axes u, v."""
    det = u[:, 0] * v[:, 1] - u[:, 1] * v[:, 0]
    dx = px[None, :] - np.asarray(cx)[:, None]
    dy = py[None, :] - np.asarray(cy)[:, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        a = (dx * v[:, 1:2] - dy * v[:, 0:1]) / det[:, None]
        b = (dy * u[:, 0:1] - dx * u[:, 1:2]) / det[:, None]
        return a * a + b * b <= 1.0


def match_catalog(truth: Sequence[Annotation], catalog, wcs: WCS, beam_fwhm_pix: float,
                  radius_beams: float = 0.5) -> tuple[Matching, np.ndarray, np.ndarray]:
    """Match catalogue entries to truth objects one-to-one (see module docstring).

    Parameters
    ----------
    truth : sequence of Annotation
        Truth objects of one image.
    catalog : astropy.table.Table
        Common-form catalogue (:data:`~caesar_mrcnn.evaluation.finders.CATALOG_COLUMNS`).
    wcs : astropy.wcs.WCS
        Celestial WCS of the image.
    beam_fwhm_pix : float
        Beam major-axis FWHM in pixels.
    radius_beams : float
        Match radius of compact sources, in beam FWHM.

    Returns
    -------
    matching : Matching
    cat_x, cat_y : numpy.ndarray
        Pixel positions of the catalogue entries.
    """
    n_t, n_c = len(truth), len(catalog)
    if n_c == 0:
        empty = np.zeros(0)
        return match_pairs(sparse.coo_matrix((n_t, 0))), empty, empty
    cx, cy, u, v = catalog_pixel_geometry(catalog["ra"], catalog["dec"], catalog["maj_arcsec"],
                                          catalog["min_arcsec"], catalog["pa_deg"], wcs)
    if n_t == 0:
        return match_pairs(sparse.coo_matrix((0, n_c))), cx, cy
    tx, ty = truth_pixel_positions(truth, wcs)
    radius = radius_beams * beam_fwhm_pix
    rows, cols, vals = [], [], []
    compact = np.array([a.category in COMPACT_CLASSES for a in truth])
    # Compact: all pairwise distances at once (truth x catalogue).
    d = np.hypot(tx[compact, None] - cx[None, :], ty[compact, None] - cy[None, :])
    ti, ci = np.nonzero(d <= radius)
    rows.append(np.flatnonzero(compact)[ti])
    cols.append(ci)
    vals.append(1.0 - d[ti, ci] / radius)
    half = np.nan_to_num(np.maximum(np.hypot(*u.T), np.hypot(*v.T)), nan=0.0)
    area = np.pi * np.nan_to_num(np.hypot(*u.T) * np.hypot(*v.T), nan=0.0)
    for i in np.flatnonzero(~compact):
        ann = truth[i]
        y0, x0, y1, x1 = ann.bbox
        near = np.flatnonzero((cx + half >= x0 - 0.5) & (cx - half <= x1 - 0.5)
                              & (cy + half >= y0 - 0.5) & (cy - half <= y1 - 0.5))
        if near.size == 0:
            continue
        yy, xx = np.nonzero(ann.mask)
        ix = np.rint(cx[near]).astype(int) - x0
        iy = np.rint(cy[near]).astype(int) - y0
        inb = (ix >= 0) & (ix < x1 - x0) & (iy >= 0) & (iy < y1 - y0)
        pos_in = np.zeros(near.size, bool)
        pos_in[inb] = ann.mask[iy[inb], ix[inb]]
        overlap = _inside_ellipse((xx + x0).astype(float), (yy + y0).astype(float),
                                  cx[near], cy[near], u[near], v[near]).sum(axis=1)
        cand = pos_in | (overlap > 0)
        rows.append(np.full(cand.sum(), i))
        cols.append(near[cand])
        vals.append(np.minimum((overlap[cand] + pos_in[cand]) / (area[near][cand] + 1.0), 1.0))
    q = sparse.coo_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                          shape=(n_t, n_c))
    return match_pairs(q, 0.0), cx, cy
