"""Sky geometry of a simulated field: FITS header with a SIN-projection WCS, and blanked borders.

The header is what a radio imager writes for a continuum image: RA---SIN / DEC--SIN axes
centred on the pointing, the restoring beam in BMAJ/BMIN/BPA (degrees), BUNIT = JY/BEAM and,
on request, degenerate FREQ and STOKES axes (NAXIS = 4).
"""

from __future__ import annotations

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS

from caesar_mrcnn.sim.config import BeamConfig, FieldConfig, NanBorderConfig


def make_header(field: FieldConfig, beam: BeamConfig, *, ra_deg: float | None = None,
                dec_deg: float | None = None, shape: tuple[int, int] | None = None
                ) -> fits.Header:
    """FITS header of a simulated image.

    Parameters
    ----------
    field, beam : FieldConfig, BeamConfig
        Geometry and restoring beam.
    ra_deg, dec_deg : float, optional
        Pointing centre (deg); defaults to ``field.ra_deg`` / ``field.dec_deg``.
    shape : tuple of int, optional
        ``(ny, nx)``; defaults to the configured size.

    Returns
    -------
    astropy.io.fits.Header
        With the reference pixel at the image centre.
    """
    ny, nx = shape if shape is not None else (field.ny, field.nx)
    ra = field.ra_deg if ra_deg is None else ra_deg
    dec = field.dec_deg if dec_deg is None else dec_deg
    naxis = 4 if field.four_axes else 2
    hdr = fits.Header()
    hdr["SIMPLE"] = True
    hdr["BITPIX"] = -32
    hdr["NAXIS"] = naxis
    hdr["NAXIS1"] = nx
    hdr["NAXIS2"] = ny
    if naxis == 4:
        hdr["NAXIS3"] = 1
        hdr["NAXIS4"] = 1
    hdr["BUNIT"] = ("JY/BEAM", "surface brightness")
    hdr["BMAJ"] = (beam.bmaj_arcsec / 3600.0, "restoring beam major FWHM (deg)")
    hdr["BMIN"] = (beam.bmin_arcsec / 3600.0, "restoring beam minor FWHM (deg)")
    hdr["BPA"] = (beam.bpa_deg, "restoring beam position angle (deg, E of N)")
    hdr["CTYPE1"] = "RA---SIN"
    hdr["CRVAL1"] = float(ra % 360.0)
    hdr["CDELT1"] = -field.pixel_arcsec / 3600.0
    hdr["CRPIX1"] = nx / 2.0 + 0.5
    hdr["CUNIT1"] = "deg"
    hdr["CTYPE2"] = "DEC--SIN"
    hdr["CRVAL2"] = float(dec)
    hdr["CDELT2"] = field.pixel_arcsec / 3600.0
    hdr["CRPIX2"] = ny / 2.0 + 0.5
    hdr["CUNIT2"] = "deg"
    if naxis == 4:
        hdr["CTYPE3"] = "FREQ"
        hdr["CRVAL3"] = field.freq_hz
        hdr["CDELT3"] = field.bandwidth_hz
        hdr["CRPIX3"] = 1.0
        hdr["CUNIT3"] = "Hz"
        hdr["CTYPE4"] = "STOKES"
        hdr["CRVAL4"] = 1.0
        hdr["CDELT4"] = 1.0
        hdr["CRPIX4"] = 1.0
        hdr["CUNIT4"] = ""
    else:
        hdr["RESTFRQ"] = (field.freq_hz, "observing frequency (Hz)")
    hdr["RADESYS"] = field.radesys
    if field.radesys == "FK5":
        hdr["EQUINOX"] = field.equinox
    hdr["TELESCOP"] = field.telescope
    hdr["ORIGIN"] = "caesar-mrcnn simulator"
    return hdr


def celestial_wcs(header: fits.Header) -> WCS:
    """The 2-D celestial WCS of a (2- or 4-axis) simulated header."""
    return WCS(header).celestial


def pixel_to_sky(wcs: WCS, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """RA, Dec (deg) of 0-based pixel coordinates ``(x, y)``."""
    ra, dec = wcs.wcs_pix2world(np.asarray(x, float), np.asarray(y, float), 0)
    return np.asarray(ra), np.asarray(dec)


def nan_border_mask(shape: tuple[int, int], cfg: NanBorderConfig,
                    rng: np.random.Generator) -> np.ndarray:
    """Boolean map of valid (True) pixels inside an irregular, rotated ellipse.

    The edge radius wobbles with a few random low-order angular harmonics, like the edge of a
    mosaic of primary beams.

    Returns
    -------
    numpy.ndarray of bool, shape ``shape``
    """
    ny, nx = shape
    rot = rng.uniform(0.0, np.pi)
    aspect = rng.uniform(0.8, 1.0)
    orders = np.arange(2, 7)
    amps = cfg.irregularity * rng.uniform(0.3, 1.0, orders.size) / np.sqrt(orders - 1)
    phases = rng.uniform(0.0, 2.0 * np.pi, orders.size)
    ax = cfg.fill * nx / 2.0
    ay = cfg.fill * ny / 2.0 * aspect

    def ratio(y: np.ndarray, x: np.ndarray) -> np.ndarray:
        """(elliptical radius / edge radius)² at pixel coordinates (< 1 inside)."""
        yc = y.astype(np.float32) - np.float32((ny - 1) / 2.0)
        xc = x.astype(np.float32) - np.float32((nx - 1) / 2.0)
        c, s = np.float32(np.cos(rot)), np.float32(np.sin(rot))
        u = (xc * c + yc * s) / np.float32(ax)
        v = (-xc * s + yc * c) / np.float32(ay)
        theta = np.arctan2(v, u)
        edge = np.ones_like(theta)
        for k, a, p in zip(orders, amps, phases):
            edge += np.float32(a) * np.cos(k * theta + np.float32(p))
        return (u * u + v * v) / (edge * edge)

    step = 8
    if min(ny, nx) < 64 * step:
        return ratio(np.arange(ny)[:, None], np.arange(nx)[None, :]) < 1.0
    # Large images: evaluate on a coarse grid, then refine only the pixels near the edge.
    # The ratio changes by less than ``margin`` within a coarse cell (its gradient is about
    # 2 / semi-axis per pixel), so cells far from 1 are decided by their coarse value.
    cy = np.arange(0, ny, step) + step // 2
    cx = np.arange(0, nx, step) + step // 2
    coarse = ratio(np.minimum(cy, ny - 1)[:, None], np.minimum(cx, nx - 1)[None, :])
    margin = 4.0 * step / min(ax, ay) + 0.05
    inside = np.repeat(np.repeat(coarse < 1.0, step, 0), step, 1)[:ny, :nx]
    band = np.abs(coarse - 1.0) < margin
    ys, xs = np.nonzero(np.repeat(np.repeat(band, step, 0), step, 1)[:ny, :nx])
    inside[ys, xs] = ratio(ys, xs) < 1.0
    return inside
