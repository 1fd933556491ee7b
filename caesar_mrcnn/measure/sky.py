"""Sky geometry of pixel positions: celestial frame, RA/Dec, the local WCS Jacobian, IAU names."""

from __future__ import annotations

from typing import Any

import numpy as np

EQUATORIAL_FRAMES = ("icrs", "fk5", "fk4")


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
    if frame in EQUATORIAL_FRAMES:
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
