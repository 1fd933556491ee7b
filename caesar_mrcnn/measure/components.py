"""Gaussian components of one compact detection: its island, its peaks, their joint fit.

The detector's mask says where a source is, not how far its wings reach. The pixels fitted are
the source's *island*: the mask together with every pixel above ``island_nsigma`` times the
local rms connected to it, grown by one beam FWHM so that the fit also sees where the source
fades into the noise (fitting a model, unlike summing pixels, is not biased by where the
region stops). Pixels nearer to another detection's mask than to this one's belong to that
detection and are left out, so a close neighbour neither pulls the fit nor is counted twice.

Peaks of the island at least ``peak_nsigma`` above the noise and separated from brighter peaks
by a dip of ``dip_nsigma`` are fitted together, one Gaussian each (:mod:`multifit`). Each
component is then tested against the beam (:func:`~caesar_mrcnn.measure.gaussfit.
point_source_significance`); those not significantly larger are fitted again with the beam's
shape, so that their amplitude is their flux density.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage

from caesar_mrcnn.data.dataset import Annotation
from caesar_mrcnn.io.windows import read_window
from caesar_mrcnn.measure.gaussfit import point_source_significance
from caesar_mrcnn.measure.multifit import Component, fit_components, gaussian_model


@dataclass(frozen=True)
class FitRules:
    """Thresholds of the component fits (all in units of the local rms, or beams)."""

    island_nsigma: float = 3.0
    """Pixels connected to the mask above this many rms belong to the island."""
    peak_nsigma: float = 5.0
    """A second peak must reach this many rms to be a component of its own."""
    dip_nsigma: float = 3.0
    """... and lie this many rms above the lowest point between it and a brighter peak."""
    resolved_nsigma: float = 3.0
    """Significance of the area excess over the beam that makes a component resolved."""
    max_components: int = 4
    gaussian_chi2: float = 1.5
    """An extended-class entry of one island is measured as Gaussians when the mean squared
    residual of their fit over the island is below this many rms² and no residual pixel
    reaches ``peak_nsigma`` rms (its island is Gaussian within the noise); otherwise by the
    sum of its mask."""


@dataclass(frozen=True)
class FittedComponent:
    """One Gaussian component of a detection, in pixels.

    Attributes
    ----------
    fit : Component
        Amplitude (Jy/beam), centre and covariance (pixels²).
    rms : float
        Local rms at the component's centre (Jy/beam).
    resolved : bool
        The fitted area exceeds the beam's by ``resolved_nsigma`` or more; otherwise ``fit``
        has the beam's shape.
    """

    fit: Component
    rms: float
    resolved: bool


def _window(ann: Annotation, shape: tuple[int, int], pad: int) -> tuple[int, int, int, int]:
    y0, x0, y1, x1 = ann.bbox
    ny, nx = shape
    return max(y0 - pad, 0), max(x0 - pad, 0), min(y1 + pad, ny), min(x1 + pad, nx)


def _paste(masks: Sequence[Annotation], win: tuple[int, int, int, int]) -> np.ndarray:
    """Union of the masks inside the window."""
    wy0, wx0, wy1, wx1 = win
    out = np.zeros((wy1 - wy0, wx1 - wx0), dtype=bool)
    for other in masks:
        oy0, ox0, oy1, ox1 = other.bbox
        cy0, cx0, cy1, cx1 = max(oy0, wy0), max(ox0, wx0), min(oy1, wy1), min(ox1, wx1)
        if cy0 < cy1 and cx0 < cx1:
            out[cy0 - wy0:cy1 - wy0, cx0 - wx0:cx1 - wx0] |= \
                other.mask[cy0 - oy0:cy1 - oy0, cx0 - ox0:cx1 - ox0]
    return out


def island_pixels(ann: Annotation, image: Any, shape: tuple[int, int], background,
                  beam_fwhm: float, neighbours: Sequence[Annotation] = (),
                  rules: FitRules = FitRules()):
    """The island of one detection and the pixels its fit uses.

    Parameters
    ----------
    ann : Annotation
        The detection (mask cropped to its bbox, image pixels).
    image : numpy.ndarray or LazyImage
        The image (Jy/beam).
    shape : tuple of int
        ``(ny, nx)``.
    background : caesar_mrcnn.measure.background.BackgroundGrid
        Local background and rms.
    beam_fwhm : float
        Beam FWHM (pixels).
    neighbours : sequence of Annotation
        Other detections near this one.
    rules : FitRules
        Thresholds.

    Returns
    -------
    origin : tuple of int
        ``(y0, x0)`` of the window in the image.
    pix : numpy.ndarray
        Background-subtracted pixels of the window (NaN where blank).
    rms : numpy.ndarray
        Local rms over the window.
    island : numpy.ndarray of bool
        The island: mask plus connected pixels above ``island_nsigma`` rms.
    region : numpy.ndarray of bool
        The pixels to fit: the island grown by one beam FWHM, inside this detection's share.
    """
    grow = max(int(math.ceil(beam_fwhm)), 1)
    win = _window(ann, shape, 2 * grow)
    wy0, wx0, wy1, wx1 = win
    bkg, rms = background.window(wy0, wy1, wx0, wx1)
    pix = read_window(image, wy0, wy1, wx0, wx1).astype(np.float64) - bkg
    finite = np.isfinite(pix)
    ours = _paste([ann], win)
    theirs = _paste(neighbours, win) & ~ours
    if theirs.any():
        # each pixel goes to the nearest mask: a neighbour's wings stay with it
        share = (ndimage.distance_transform_edt(~ours)
                 <= ndimage.distance_transform_edt(~theirs)) & ~theirs
    else:
        share = np.ones_like(ours)
    above = (np.where(finite, pix, -np.inf) > rules.island_nsigma * rms) & share
    labels, _ = ndimage.label(above | ours, structure=np.ones((3, 3), bool))
    island = np.isin(labels, np.unique(labels[ours])) & (above | ours)
    # at most one growth step past the mask: in an image without noise every pixel is "above"
    near = ndimage.distance_transform_edt(~ours) <= 2 * grow
    island &= near
    region = (ndimage.distance_transform_edt(~island) <= beam_fwhm) & share & finite
    return (wy0, wx0), pix, rms.astype(np.float64), island & finite, region


def find_peaks(pix: np.ndarray, rms: np.ndarray, island: np.ndarray, beam_fwhm: float,
               rules: FitRules = FitRules()) -> list[tuple[int, int]]:
    """Peaks of an island that are separate components, brightest first.

    A local maximum (3×3) of the island is a component when it is at least ``peak_nsigma`` rms,
    at least one beam FWHM from every brighter component, and the profile along the straight
    line to each of them dips at least ``dip_nsigma`` rms below it. The brightest pixel is
    always the first.

    Returns
    -------
    list of (row, column)
        Window pixel indices.
    """
    vals = np.where(island, pix, -np.inf)
    if not np.isfinite(vals).any():
        return []
    local = (vals == ndimage.maximum_filter(vals, size=3, mode="constant", cval=-np.inf))
    cand = np.argwhere(local & island & np.isfinite(vals))
    order = np.argsort(-vals[cand[:, 0], cand[:, 1]])
    peaks: list[tuple[int, int]] = []
    for r, c in cand[order]:
        v, noise = vals[r, c], rms[r, c]
        # a second peak must stand out of the noise; without noise (a model image), it must
        # still be more than a rounding error of the brightest
        if peaks and (v < rules.peak_nsigma * noise or v < 1e-3 * vals[peaks[0]]):
            break
        dip_needed = max(rules.dip_nsigma * noise, 1e-3 * v)
        ok = True
        for pr, pc in peaks:
            dist = math.hypot(r - pr, c - pc)
            if dist < beam_fwhm:
                ok = False
                break
            n = int(math.ceil(dist * 2)) + 1
            line = ndimage.map_coordinates(np.where(np.isfinite(pix), pix, 0.0),
                                           [np.linspace(pr, r, n), np.linspace(pc, c, n)],
                                           order=1)
            if v - line.min() < dip_needed:
                ok = False
                break
        if ok:
            peaks.append((int(r), int(c)))
            if len(peaks) == rules.max_components:
                break
    return peaks


def _fit(vals, xs, ys, starts, free, beam_cov, min_sigma, max_sigma, rms):
    return fit_components(vals, xs, ys, starts, free, beam_cov, min_sigma, max_sigma, rms)


def fit_island(ann: Annotation, image: Any, shape: tuple[int, int], background,
               beam_cov: np.ndarray, neighbours: Sequence[Annotation] = (),
               rules: FitRules = FitRules(), max_chi2: float | None = None
               ) -> list[FittedComponent] | None:
    """Fit the Gaussian components of one detection.

    Parameters
    ----------
    ann, image, shape, background, neighbours, rules
        As in :func:`island_pixels`.
    beam_cov : numpy.ndarray, shape ``(2, 2)``
        Beam covariance in pixels² (:func:`caesar_mrcnn.measure.deconvolve.beam_cov_pix`).
    max_chi2 : float, optional
        Refuse the fit (None) when the mean squared residual over the island exceeds this many
        times the rms², or when a residual pixel of the island reaches ``peak_nsigma`` rms:
        the island is not a sum of Gaussians.

    Returns
    -------
    list of FittedComponent, brightest first, or None
        None when no fit converges (the caller falls back to the island sum).
    """
    beam_sig = math.sqrt(max(np.linalg.det(beam_cov), 1e-12) ** 0.5)
    beam_fwhm = beam_sig * 2.0 * math.sqrt(2.0 * math.log(2.0))
    (wy0, wx0), pix, rms, island, region = island_pixels(
        ann, image, shape, background, beam_fwhm, neighbours, rules)
    peaks = find_peaks(pix, rms, island, beam_fwhm, rules)
    if not peaks or region.sum() < 4:
        return None
    ys, xs = np.nonzero(region)
    vals = pix[ys, xs]
    xs_img, ys_img = xs + wx0, ys + wy0
    span = max(xs.max() - xs.min(), ys.max() - ys.min()) + 1.0
    min_sigma = 0.5 * math.sqrt(np.linalg.eigvalsh(beam_cov)[0])
    max_sigma = max(span, 2.0 * beam_sig)
    noise = float(np.median(rms[region]))
    starts = [(pix[r, c], c + wx0, r + wy0, beam_cov * 1.2) for r, c in peaks]
    comps = None
    # free shapes first, dropping the faintest peak while the fit fails; then beam shapes
    for n in range(len(starts), 0, -1):
        comps = _fit(vals, xs_img, ys_img, starts[:n], [True] * n, beam_cov, min_sigma,
                     max_sigma, noise)
        if comps is not None:
            break
    if comps is None:
        for n in range(len(starts), 0, -1):
            comps = _fit(vals, xs_img, ys_img, starts[:n], [False] * n, beam_cov, min_sigma,
                         max_sigma, noise)
            if comps is not None:
                # the shapes could not be fitted: the beam's is the one known
                return [_with_rms(c, rms, wy0, wx0, False) for c in comps]
        return None
    resolved = [_significant(c, rms, wy0, wx0, beam_cov, rules) for c in comps]
    if not all(resolved):
        starts = [(c.peak, c.x, c.y, c.cov) for c in comps]
        again = _fit(vals, xs_img, ys_img, starts, resolved, beam_cov, min_sigma, max_sigma,
                     noise)
        if again is not None:
            comps = again
        else:
            # keep the free shapes but read the unresolved ones as points (peak x one beam)
            comps = [c if r else Component(c.peak, c.x, c.y, np.array(beam_cov, float), False,
                                           None if c.pcov is None else c.pcov[:3, :3])
                     for c, r in zip(comps, resolved)]
    if max_chi2 is not None:
        on_island = island[ys, xs]
        model = sum(gaussian_model(c.peak, c.x, c.y, np.linalg.inv(c.cov), xs_img, ys_img)
                    for c in comps)
        resid = (vals - model)[on_island]
        if resid.size == 0 or np.mean(resid ** 2) > max_chi2 * noise ** 2:
            return None
        # a mean over a large faint island hides a compact source the Gaussians leave out
        if np.any(resid > rules.peak_nsigma * rms[ys, xs][on_island]):
            return None
    out = [_with_rms(c, rms, wy0, wx0, r) for c, r in zip(comps, resolved)]
    return sorted(out, key=lambda f: -f.fit.peak)


def _rms_at(c: Component, rms: np.ndarray, wy0: int, wx0: int) -> float:
    r = int(np.clip(round(c.y - wy0), 0, rms.shape[0] - 1))
    k = int(np.clip(round(c.x - wx0), 0, rms.shape[1] - 1))
    return float(rms[r, k])


def _with_rms(c: Component, rms, wy0, wx0, resolved: bool) -> FittedComponent:
    return FittedComponent(c, _rms_at(c, rms, wy0, wx0), resolved)


def _significant(c: Component, rms, wy0, wx0, beam_cov, rules: FitRules) -> bool:
    noise = _rms_at(c, rms, wy0, wx0)
    ratio = math.sqrt(max(np.linalg.det(c.cov), 0.0) / np.linalg.det(beam_cov))
    snr = c.peak / noise if noise > 0 else math.inf
    return bool(point_source_significance(snr, ratio) > rules.resolved_nsigma)
