"""Local rendering: each source is evaluated only in a small window (a stamp) around it.

A source is a sum of Gaussian components already convolved with the beam (:class:`Components`);
its stamp covers every pixel where any component exceeds a small floor (a fraction of the
noise rms), clipped to the image. Stamps are added into the image afterwards, so the cost
scales with the sources' footprints, not with the number of sources × image size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from caesar_mrcnn.sim import beam as gb


@dataclass
class Components:
    """Gaussian components of one source, in pixel units, already convolved with the beam.

    Attributes
    ----------
    x, y : numpy.ndarray, shape (K,)
        Centres, pixels (0-based).
    peak : numpy.ndarray, shape (K,)
        Peak of each convolved component, Jy/beam.
    cov : numpy.ndarray, shape (K, 2, 2)
        Convolved covariance (intrinsic + beam), pixel².
    flux : numpy.ndarray, shape (K,)
        Integrated flux of each component, Jy.
    """

    x: np.ndarray
    y: np.ndarray
    peak: np.ndarray
    cov: np.ndarray
    flux: np.ndarray

    @property
    def total_flux(self) -> float:
        """Integrated flux of the source, Jy."""
        return float(self.flux.sum())


class ComponentList:
    """Collects Gaussian components (intrinsic size + beam) before freezing them."""

    def __init__(self, beam_cov: np.ndarray) -> None:
        self.beam_cov = np.asarray(beam_cov, dtype=float)
        self._beam_area = gb.area(self.beam_cov)
        self._rows: list[tuple[float, float, float, np.ndarray, float]] = []

    def add(self, x: float, y: float, peak: float, major_px: float = 0.0,
            minor_px: float = 0.0, pa_deg: float = 0.0) -> None:
        """Add a component of convolved ``peak`` (Jy/beam) and intrinsic FWHM/PA (pixels, deg)."""
        if peak <= 0:
            return
        cov = gb.covariance(major_px, minor_px, pa_deg) + self.beam_cov
        flux = peak * gb.area(cov) / self._beam_area
        self._rows.append((float(x), float(y), float(peak), cov, float(flux)))

    def __len__(self) -> int:
        return len(self._rows)

    def freeze(self) -> Components:
        """The collected components as arrays."""
        if not self._rows:
            z = np.zeros(0)
            return Components(z, z, z, np.zeros((0, 2, 2)), z)
        x, y, p, c, f = zip(*self._rows)
        return Components(np.array(x), np.array(y), np.array(p), np.stack(c), np.array(f))


@dataclass
class Stamp:
    """A window of an image: ``data`` covers rows ``y0:y0+h`` and columns ``x0:x0+w``."""

    y0: int
    x0: int
    data: np.ndarray

    @property
    def slices(self) -> tuple[slice, slice]:
        """Slices of the full image covered by the stamp."""
        h, w = self.data.shape
        return slice(self.y0, self.y0 + h), slice(self.x0, self.x0 + w)

    def add_into(self, image: np.ndarray) -> None:
        """Add the stamp into ``image`` in place."""
        image[self.slices] += self.data


def window(cx: float, cy: float, half_x: float, half_y: float,
           shape: tuple[int, int]) -> tuple[int, int, int, int] | None:
    """Pixel window ``(y0, x0, y1, x1)`` around a centre, clipped to ``shape``; None if empty."""
    ny, nx = shape
    x0 = max(int(np.floor(cx - half_x)), 0)
    x1 = min(int(np.ceil(cx + half_x)) + 1, nx)
    y0 = max(int(np.floor(cy - half_y)), 0)
    y1 = min(int(np.ceil(cy + half_y)) + 1, ny)
    if x1 <= x0 or y1 <= y0:
        return None
    return y0, x0, y1, x1


def render(comps: Components, shape: tuple[int, int], floor: float) -> Stamp | None:
    """Evaluate ``comps`` in the smallest window holding every component down to ``floor``.

    Parameters
    ----------
    comps : Components
        The source.
    shape : tuple of int
        ``(ny, nx)`` of the image (the window is clipped to it).
    floor : float
        Level (Jy/beam) where each component is cut, e.g. 1 % of the noise rms.

    Returns
    -------
    Stamp or None
        None when the source lies entirely outside the image.
    """
    if comps.x.size == 0:
        return None
    k = np.sqrt(2.0 * np.log(np.maximum(comps.peak / floor, np.e ** 4.5)))  # at least 3 sigma
    hx = k * np.sqrt(comps.cov[:, 0, 0])
    hy = k * np.sqrt(comps.cov[:, 1, 1])
    lo_x, hi_x = float(np.min(comps.x - hx)), float(np.max(comps.x + hx))
    lo_y, hi_y = float(np.min(comps.y - hy)), float(np.max(comps.y + hy))
    box = window((lo_x + hi_x) / 2, (lo_y + hi_y) / 2, (hi_x - lo_x) / 2, (hi_y - lo_y) / 2,
                 shape)
    if box is None:
        return None
    y0, x0, y1, x1 = box
    yy = np.arange(y0, y1, dtype=np.float64)[:, None]
    xx = np.arange(x0, x1, dtype=np.float64)[None, :]
    out = np.zeros((y1 - y0, x1 - x0), dtype=np.float64)
    for i in range(comps.x.size):
        out += gb.gaussian_image(xx, yy, comps.x[i], comps.y[i], comps.peak[i], comps.cov[i])
    return Stamp(y0, x0, out.astype(np.float32))
