"""Read and write radio continuum FITS images: data, celestial WCS, restoring beam, NaN mask.

Radio images come as plain 2D images or as 3D/4D cubes whose frequency and Stokes axes have a
single plane. :func:`read_image` returns the 2D plane as float32 with NaN wherever a pixel is
blank or infinite (never zero-filled, so blanked regions stay distinguishable from zero flux).
:func:`open_image` gives a memory-mapped :class:`LazyImage` that reads rectangular windows of a
survey mosaic without loading it whole.

Every user-caused problem raises an :class:`~caesar_mrcnn.errors.InputImageError` subclass whose
one-line message names the file.
"""

from __future__ import annotations

import logging
import math
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.utils.exceptions import AstropyUserWarning
from astropy.wcs import WCS, FITSFixedWarning

from caesar_mrcnn.errors import (
    AllNaNError,
    EmptyImageError,
    ImageShapeError,
    InputImageError,
    NoImageHDUError,
    NotFitsError,
    TruncatedFitsError,
)
from caesar_mrcnn.io.atomic import atomic_path

log = logging.getLogger(__name__)

_FITS_BLOCK = 2880
_BITPIX_DTYPE = {8: "u1", 16: "i2", 32: "i4", 64: "i8", -32: "f4", -64: "f8"}
_IMAGE_HDU_TYPES = (fits.PrimaryHDU, fits.ImageHDU, fits.CompImageHDU)
# Axis-description keywords that belong to one FITS axis (dropped with that axis).
_AXIS_KEY = re.compile(
    r"^(CTYPE|CRPIX|CRVAL|CDELT|CUNIT|CROTA|CNAME|CRDER|CSYER)\d+[A-Z]?$"
    r"|^(PC|CD|PV|PS)\d+_\d+[A-Z]?$|^WCSAXES[A-Z]?$"
)
# AIPS writes the restoring beam only into HISTORY, e.g.
# "AIPS   CLEAN BMAJ=  1.3889E-03 BMIN=  1.3889E-03 BPA=   0.00".
_AIPS_BEAM = re.compile(
    r"BMAJ\s*=\s*([-+0-9.EeDd]+)\s+BMIN\s*=\s*([-+0-9.EeDd]+)(?:\s+BPA\s*=\s*([-+0-9.EeDd]+))?"
)


@dataclass(frozen=True)
class Beam:
    """Restoring beam: a 2D Gaussian.

    Attributes
    ----------
    bmaj_deg, bmin_deg : float
        Full widths at half maximum of the major and minor axes (deg).
    bpa_deg : float
        Position angle of the major axis, east of north (deg).
    """

    bmaj_deg: float
    bmin_deg: float
    bpa_deg: float

    def area_pix(self, pixel_scale_deg: tuple[float, float]) -> float:
        """Beam solid angle in pixels, ``pi * bmaj * bmin / (4 ln 2) / (dx * dy)``.

        Parameters
        ----------
        pixel_scale_deg : (float, float)
            ``(|dx|, |dy|)`` pixel size (deg/pixel).
        """
        dx, dy = (abs(float(v)) for v in pixel_scale_deg)
        return math.pi * self.bmaj_deg * self.bmin_deg / (4.0 * math.log(2.0)) / (dx * dy)


@dataclass
class RadioImage:
    """A 2D radio image in memory.

    Attributes
    ----------
    data : numpy.ndarray of float32, shape ``(ny, nx)``
        Pixel values in ``bunit``; NaN where blank or non-finite.
    header : astropy.io.fits.Header
        2D header (degenerate axes dropped, scaling keywords removed).
    wcs : astropy.wcs.WCS or None
        Celestial 2D WCS, None when the header has none.
    beam : Beam or None
        Restoring beam, None when the header has none.
    bunit : str
        Brightness unit, e.g. ``"JY/BEAM"`` (empty when absent).
    pixel_scale_deg : (float, float) or None
        ``(|dx|, |dy|)`` (deg/pixel) from the WCS.
    path : pathlib.Path or None
        File the image was read from.
    """

    data: np.ndarray
    header: fits.Header
    wcs: WCS | None
    beam: Beam | None
    bunit: str
    pixel_scale_deg: tuple[float, float] | None
    path: Path | None = None

    @property
    def shape(self) -> tuple[int, int]:
        """``(ny, nx)`` in pixels."""
        return tuple(self.data.shape)

    @property
    def valid(self) -> np.ndarray:
        """Boolean mask of finite (usable) pixels."""
        return np.isfinite(self.data)

    @property
    def beam_area_pix(self) -> float | None:
        """Beam solid angle (pixels), None without beam or pixel scale."""
        return _beam_area(self.beam, self.pixel_scale_deg)


def _beam_area(beam: Beam | None, scale: tuple[float, float] | None) -> float | None:
    if beam is None or scale is None:
        return None
    return beam.area_pix(scale)


def pixel_scale_deg(wcs: WCS) -> tuple[float, float]:
    """Pixel size ``(|dx|, |dy|)`` (deg/pixel) of a celestial WCS, along x then y."""
    from astropy.wcs.utils import proj_plane_pixel_scales

    sx, sy = proj_plane_pixel_scales(wcs)[:2]
    return (abs(float(sx)), abs(float(sy)))


# --- opening and validating -----------------------------------------------------------------


def _open_hdulist(path: Path, memmap: bool = True) -> tuple[fits.HDUList, bool, bool]:
    """Open ``path`` (memory-mapped by default) as ``(hdul, truncation_warned, compressed)``.

    ``compressed`` is true for gzip/bzip2 files, whose on-disk size says nothing about the
    FITS content. Every failure becomes a one-line InputImageError.
    """
    if not path.exists():
        raise InputImageError(f"{path}: file not found; check the image path")
    if not path.is_file():
        raise InputImageError(f"{path}: not a regular file; pass a FITS image")
    with open(path, "rb") as fh:
        head = fh.read(80)
    compressed = head.startswith((b"\x1f\x8b", b"BZh"))
    if not compressed and (not head.startswith(b"SIMPLE  =") or head[29:30] != b"T"):
        raise NotFitsError(f"{path}: not a FITS file (no SIMPLE = T card at the start); "
                           "pass a FITS image")
    size = path.stat().st_size
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", AstropyUserWarning)
        try:
            hdul = fits.open(path, memmap=memmap, mode="readonly", lazy_load_hdus=False)
        except (OSError, ValueError, IndexError) as exc:
            text = str(exc)
            if compressed or size % _FITS_BLOCK or "END" in text or "truncat" in text.lower():
                raise TruncatedFitsError(f"{path}: FITS header is incomplete ({exc}); "
                                         "the file is truncated or corrupt, copy it again") \
                    from None
            raise NotFitsError(f"{path}: cannot be read as FITS ({exc})") from None
    # astropy also warns when only the final padding is missing, which it reads fine; whether
    # the image data itself is complete is decided by _check_complete for the HDU in use.
    return hdul, any("truncat" in str(w.message).lower() for w in caught), compressed


def _check_complete(path: Path, hdu, truncation_warned: bool, compressed: bool) -> None:
    """Raise TruncatedFitsError when the file ends before the data of ``hdu`` does."""
    info = hdu.fileinfo()
    if info is None:
        return
    if compressed:
        if truncation_warned:
            raise TruncatedFitsError(f"{path}: compressed FITS file is truncated; copy it again")
        return
    if isinstance(hdu, fits.CompImageHDU):
        # the compressed size is not implied by the image header: trust astropy's check
        needed = int(info["datLoc"]) + int(info["datSpan"]) if truncation_warned else 0
    else:
        hdr = hdu.header
        npix = math.prod(int(hdr.get(f"NAXIS{k}", 0)) for k in range(1, hdr["NAXIS"] + 1))
        needed = int(info["datLoc"]) + abs(int(hdr["BITPIX"])) // 8 * npix
    size = path.stat().st_size
    if needed > size:
        raise TruncatedFitsError(f"{path}: file is truncated ({size} bytes, the image data "
                                 f"needs {needed}); copy it again")


def _is_scaled(hdu) -> bool:
    hdr = hdu.header
    return (not isinstance(hdu, fits.CompImageHDU)
            and ("BLANK" in hdr or hdr.get("BSCALE", 1) != 1 or hdr.get("BZERO", 0) != 0))


def _has_zero_axis(header: fits.Header) -> bool:
    naxis = int(header.get("NAXIS", 0))
    return naxis > 0 and any(int(header.get(f"NAXIS{k}", 0)) == 0 for k in range(1, naxis + 1))


def _select_hdu(path: Path, hdul: fits.HDUList, hdu: int | str | None):
    """The image HDU to use: the one named, or the first one that holds image data."""
    if hdu is not None:
        try:
            chosen = hdul[hdu]
        except (KeyError, IndexError):
            names = ", ".join(f"{i}:{h.name}" for i, h in enumerate(hdul))
            raise NoImageHDUError(f"{path}: no HDU {hdu!r} (HDUs: {names}); choose another "
                                  "with --hdu") from None
        if not isinstance(chosen, _IMAGE_HDU_TYPES):
            raise NoImageHDUError(f"{path}: HDU {hdu!r} is a {type(chosen).__name__}, not an "
                                  "image; choose an image HDU with --hdu")
        if int(chosen.header.get("NAXIS", 0)) == 0 or _has_zero_axis(chosen.header):
            raise EmptyImageError(f"{path}: HDU {hdu!r} has no image data (NAXIS="
                                  f"{chosen.header.get('NAXIS', 0)} or a zero-length axis)")
        return chosen
    images = [h for h in hdul if isinstance(h, _IMAGE_HDU_TYPES)]
    for h in images:
        if int(h.header.get("NAXIS", 0)) > 0 and not _has_zero_axis(h.header):
            return h
    if any(_has_zero_axis(h.header) for h in images):
        raise EmptyImageError(f"{path}: the image has a zero-length axis; it holds no pixels")
    if len(hdul) <= 1:
        raise EmptyImageError(f"{path}: header without data (NAXIS = 0); the file holds no image")
    kinds = ", ".join(type(h).__name__ for h in hdul)
    raise NoImageHDUError(f"{path}: no HDU holds an image (found {kinds}); pass a FITS image")


def _celestial_wcs(path: Path, header: fits.Header) -> tuple[WCS | None, tuple[int, int] | None]:
    """Celestial WCS and the 0-based FITS axis numbers of its (lon, lat) axes, or Nones."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        try:
            full = WCS(header)
        except Exception as exc:  # astropy raises many types for malformed WCS keywords
            log.warning("%s: WCS keywords unusable (%s); pixel coordinates only", path, exc)
            return None, None
    if not full.has_celestial or full.wcs.lng < 0 or full.wcs.lat < 0:
        log.warning("%s: no celestial WCS in the header; pixel coordinates only", path)
        return None, None
    return full.celestial, (int(full.wcs.lng), int(full.wcs.lat))


def _read_beam(path: Path, header: fits.Header) -> Beam | None:
    bmaj, bmin = header.get("BMAJ"), header.get("BMIN")
    bpa = header.get("BPA", 0.0)
    if bmaj is None or bmin is None:
        for card in reversed(header.get("HISTORY", [])):
            m = _AIPS_BEAM.search(str(card))
            if m:
                bmaj, bmin = (float(v.replace("D", "E")) for v in m.groups()[:2])
                bpa = float(m.group(3).replace("D", "E")) if m.group(3) else 0.0
                break
    try:
        if bmaj is None or bmin is None:
            raise ValueError
        beam = Beam(float(bmaj), float(bmin), float(bpa or 0.0))
    except (TypeError, ValueError):
        log.warning("%s: no restoring beam (BMAJ/BMIN) in the header; beam-dependent "
                    "quantities are unavailable", path)
        return None
    if not (beam.bmaj_deg > 0 and beam.bmin_deg > 0):
        log.warning("%s: non-positive BMAJ/BMIN in the header; beam ignored", path)
        return None
    return beam


def _plane_key(path: Path, header: fits.Header, shape: tuple[int, ...],
               image_axes: tuple[int, int], plane: int | None) -> tuple:
    """Index tuple (numpy order) picking the 2D plane spanned by FITS axes ``image_axes``."""
    ndim = len(shape)
    key: list = [slice(None)] * ndim
    free = []
    for k in range(ndim):  # k: 0-based FITS axis
        if k in image_axes:
            continue
        n = shape[ndim - 1 - k]
        if n == 1:
            key[ndim - 1 - k] = 0
        else:
            free.append(k)
    if len(free) > 1:
        desc = ", ".join(f"axis {k + 1} ({header.get(f'CTYPE{k + 1}', '?')}, "
                         f"{shape[ndim - 1 - k]} planes)" for k in free)
        raise ImageShapeError(f"{path}: image is not 2D: several non-degenerate axes besides "
                              f"the celestial ones ({desc}); extract a 2D plane first")
    if free:
        k = free[0]
        n = shape[ndim - 1 - k]
        ctype = header.get(f"CTYPE{k + 1}", "unnamed")
        if plane is None:
            raise ImageShapeError(f"{path}: cube with {n} planes along axis {k + 1} ({ctype}); "
                                  f"pass plane=0..{n - 1} (--plane) to choose one")
        if not 0 <= int(plane) < n:
            raise ImageShapeError(f"{path}: plane {plane} out of range for axis {k + 1} "
                                  f"({ctype}, {n} planes); use 0..{n - 1}")
        key[ndim - 1 - k] = int(plane)
    elif plane not in (None, 0):
        raise ImageShapeError(f"{path}: plane {plane} requested but the image has a single "
                              "plane; drop --plane")
    return tuple(key)


def _header_2d(header: fits.Header, wcs: WCS | None, ny: int, nx: int, squeeze: bool
               ) -> fits.Header:
    """Header of the 2D plane: structural and scaling keywords reset, dropped axes removed."""
    rest = header.copy()
    rest.strip()
    for name in ("BLANK", "CHECKSUM", "DATASUM"):
        rest.remove(name, ignore_missing=True, remove_all=True)
    if squeeze:
        for name in [k for k in rest.keys() if _AXIS_KEY.match(k)]:
            rest.remove(name, ignore_missing=True, remove_all=True)
        if wcs is not None:
            rest.update(wcs.to_header())
    out = fits.Header([("NAXIS", 2), ("NAXIS1", nx), ("NAXIS2", ny)])
    out.extend(rest, unique=False)
    return out


class LazyImage:
    """A memory-mapped FITS image whose 2D plane is read window by window.

    Use as a context manager (or call :meth:`close`)::

        with open_image("mosaic.fits") as img:
            tile = img.read_window(0, 512, 0, 512)

    Attributes
    ----------
    shape : (int, int)
        ``(ny, nx)`` of the 2D plane.
    file_shape : tuple of int
        Shape of the HDU's data array in the file (numpy order, cubes included).
    file_dtype : numpy.dtype
        Pixel type stored in the file (big-endian, before BSCALE/BZERO and float32).
    header_bitpix : int
        BITPIX of the image in the file.
    file_scaled : bool
        Whether BSCALE/BZERO/BLANK apply to the stored values.
    hdu_index : int
        Index of the HDU read.
    header, wcs, beam, bunit, pixel_scale_deg, path
        As in :class:`RadioImage`.
    """

    def __init__(self, path: str | os.PathLike, plane: int | None = None,
                 hdu: int | str | None = None) -> None:
        self.path = Path(path)
        self._hdul, warned, compressed = _open_hdulist(self.path)
        try:
            self._hdu = _select_hdu(self.path, self._hdul, hdu)
            if _is_scaled(self._hdu):
                # astropy cannot memory-map scaled integers; sections then seek and read instead
                self._hdul.close()
                self._hdul, warned, compressed = _open_hdulist(self.path, memmap=False)
                self._hdu = _select_hdu(self.path, self._hdul, hdu)
            _check_complete(self.path, self._hdu, warned, compressed)
            raw_header = self._hdu.header
            full_shape = tuple(int(n) for n in self._hdu.shape)
            if len(full_shape) < 2:
                raise ImageShapeError(f"{self.path}: image has {len(full_shape)} axis; a 2D "
                                      "image is required")
            self.wcs, cel_axes = _celestial_wcs(self.path, raw_header)
            image_axes = cel_axes if cel_axes is not None else (0, 1)
            self._key = _plane_key(self.path, raw_header, full_shape, image_axes, plane)
            ndim = len(full_shape)
            # numpy axis of y is the one for the higher FITS axis number
            self._yaxis = ndim - 1 - max(image_axes)
            self._xaxis = ndim - 1 - min(image_axes)
            self.shape = (full_shape[self._yaxis], full_shape[self._xaxis])
            self.file_shape = full_shape
            self.file_dtype = np.dtype(_BITPIX_DTYPE[int(raw_header["BITPIX"])]).newbyteorder(">")
            self.file_scaled = _is_scaled(self._hdu)
            self.header_bitpix = int(raw_header["BITPIX"])
            self.hdu_index = self._hdul.index_of(self._hdu)
            self.header = _header_2d(raw_header, self.wcs, *self.shape,
                                     squeeze=ndim != 2)
            self.beam = _read_beam(self.path, raw_header)
            self.bunit = str(raw_header.get("BUNIT", "")).strip()
            self.pixel_scale_deg = pixel_scale_deg(self.wcs) if self.wcs is not None else None
        except BaseException:
            self._hdul.close()
            raise

    @property
    def beam_area_pix(self) -> float | None:
        """Beam solid angle (pixels), None without beam or pixel scale."""
        return _beam_area(self.beam, self.pixel_scale_deg)

    def read_window(self, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
        """Pixels ``[y0:y1, x0:x1]`` of the 2D plane, clipped to the image.

        Only the requested rows and columns are read from the file.

        Returns
        -------
        numpy.ndarray of float32, shape ``(y1 - y0, x1 - x0)`` after clipping
            NaN where blank or non-finite.
        """
        if self._hdul is None:
            raise ValueError(f"{self.path}: image is closed")
        ny, nx = self.shape
        y0, y1 = max(int(y0), 0), min(int(y1), ny)
        x0, x1 = max(int(x0), 0), min(int(x1), nx)
        if y1 <= y0 or x1 <= x0:
            return np.empty((max(y1 - y0, 0), max(x1 - x0, 0)), dtype=np.float32)
        key = list(self._key)
        key[self._yaxis] = slice(y0, y1)
        key[self._xaxis] = slice(x0, x1)
        try:
            raw = self._hdu.section[tuple(key)]
        except (OSError, ValueError) as exc:
            raise TruncatedFitsError(f"{self.path}: cannot read pixels ({exc}); the file is "
                                     "truncated or corrupt") from None
        out = np.array(raw, dtype=np.float32, copy=True)
        out[~np.isfinite(out)] = np.nan
        return out

    def read(self) -> np.ndarray:
        """The whole 2D plane (float32, NaN where invalid)."""
        return self.read_window(0, self.shape[0], 0, self.shape[1])

    def close(self) -> None:
        """Release the file."""
        if self._hdul is not None:
            self._hdul.close()
            self._hdul = None

    def __enter__(self) -> LazyImage:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_image(path: str | os.PathLike, plane: int | None = None,
               hdu: int | str | None = None) -> LazyImage:
    """Open a FITS image lazily (memory-mapped); see :class:`LazyImage`.

    Parameters
    ----------
    path : path-like
        FITS file.
    plane : int, optional
        Index along the one non-degenerate non-celestial axis of a cube (frequency, Stokes).
    hdu : int or str, optional
        HDU index or name; default the first HDU holding an image.

    Raises
    ------
    InputImageError
        Or a subclass: NotFitsError, TruncatedFitsError, NoImageHDUError, EmptyImageError,
        ImageShapeError.
    """
    return LazyImage(path, plane=plane, hdu=hdu)


def read_image(path: str | os.PathLike, plane: int | None = None,
               hdu: int | str | None = None) -> RadioImage:
    """Read the 2D plane of a FITS image into memory.

    Parameters are those of :func:`open_image`.

    Raises
    ------
    InputImageError
        As :func:`open_image`, plus AllNaNError when no pixel is finite.
    """
    with open_image(path, plane=plane, hdu=hdu) as lazy:
        data = lazy.read()
        if not np.isfinite(data).any():
            raise AllNaNError(f"{lazy.path}: every pixel is NaN or infinite; nothing to analyse")
        return RadioImage(data=data, header=lazy.header, wcs=lazy.wcs, beam=lazy.beam,
                          bunit=lazy.bunit, pixel_scale_deg=lazy.pixel_scale_deg,
                          path=lazy.path)


def write_image(path: str | os.PathLike, data: np.ndarray,
                header: fits.Header | None = None, dtype: np.dtype | type = np.float32) -> None:
    """Write a 2D array as a FITS image (float32 by default), atomically.

    Parameters
    ----------
    path : path-like
        Output file (replaced if it exists, only once complete).
    data : numpy.ndarray, shape ``(ny, nx)``
        Pixel values; NaN is kept.
    header : astropy.io.fits.Header, optional
        Keywords to keep (WCS, beam, BUNIT ...); structural and scaling keywords are reset.
    dtype : numpy dtype
        Pixel type in the file; ``numpy.uint8`` suits masks (BITPIX 8, a quarter the size).
    """
    arr = np.asarray(data, dtype=dtype)
    hdr = fits.Header() if header is None else header.copy()
    hdr.strip()
    for name in ("BLANK", "CHECKSUM", "DATASUM"):
        hdr.remove(name, ignore_missing=True, remove_all=True)
    hdu = fits.PrimaryHDU(data=arr, header=hdr)
    with atomic_path(path) as tmp:
        hdu.writeto(tmp)
