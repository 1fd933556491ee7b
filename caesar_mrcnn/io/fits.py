"""Read and write radio continuum FITS images: data, celestial WCS, restoring beam, NaN mask.

Radio images come as plain 2D images or as 3D/4D cubes whose frequency and Stokes axes have a
single plane. :func:`read_image` returns the 2D plane as float32 with NaN wherever a pixel is
blank or infinite (never zero-filled, so blanked regions stay distinguishable from zero flux).
:func:`open_image` gives a memory-mapped :class:`LazyImage` that reads rectangular windows of a
survey mosaic without loading it whole.

Files as archives hand them out are read too: gzip/bzip2-compressed files (decompressed once,
:mod:`caesar_mrcnn.io.compressed`), tile-compressed HDUs (read tile by tile), the image in any
extension, integers with BSCALE/BZERO/BLANK (NaN-masked float), headers with unprintable or
repeated cards (dropped and counted once, :mod:`caesar_mrcnn.io.header_cards`). The restoring
beam comes from wherever real files keep it (:mod:`caesar_mrcnn.io.beam`).

Every user-caused problem raises an :class:`~caesar_mrcnn.errors.InputImageError` subclass whose
one-line message names the file. A header's word alone never makes the program allocate: the
data it claims must be in the file before any pixel is read.
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
import os
import re
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.io.fits.verify import VerifyWarning
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
from caesar_mrcnn.io.beam import Beam, parse_beam, resolve_beam
from caesar_mrcnn.io.compressed import compression_of, decompress_once, release
from caesar_mrcnn.io.header_cards import clean_header, describe_dropped

__all__ = ["Beam", "LazyImage", "RadioImage", "open_image", "parse_beam", "pixel_scale_deg",
           "read_image", "write_image"]

log = logging.getLogger(__name__)

_FITS_BLOCK = 2880
_BITPIX_DTYPE = {8: "u1", 16: "i2", 32: "i4", 64: "i8", -32: "f4", -64: "f8"}
_IMAGE_HDU_TYPES = (fits.PrimaryHDU, fits.ImageHDU, fits.CompImageHDU)
# Axis-description keywords that belong to one FITS axis (dropped with that axis).
_AXIS_KEY = re.compile(
    r"^(CTYPE|CRPIX|CRVAL|CDELT|CUNIT|CROTA|CNAME|CRDER|CSYER)\d+[A-Z]?$"
    r"|^(PC|CD|PV|PS)\d+_\d+[A-Z]?$|^WCSAXES[A-Z]?$"
)
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
        Restoring beam, None when none is known.
    bunit : str
        Brightness unit, e.g. ``"JY/BEAM"`` (empty when absent).
    pixel_scale_deg : (float, float) or None
        ``(|dx|, |dy|)`` (deg/pixel) from the WCS.
    path : pathlib.Path or None
        File the image was read from.
    beam_source : str
        Where the beam came from: ``"option"``, ``"header"``, ``"AIPS history"``,
        ``"CASA beam table"``, ``"<SURVEY> survey default"`` or ``"none"``.
    """

    data: np.ndarray
    header: fits.Header
    wcs: WCS | None
    beam: Beam | None
    bunit: str
    pixel_scale_deg: tuple[float, float] | None
    path: Path | None = None
    beam_source: str = "header"

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


class _Source:
    """The bytes of a FITS file: the file itself, or its decompressed content.

    Attributes
    ----------
    size : int
        Bytes of FITS content (after decompression).
    compressed : bool
        Whether the file on disk is gzip/bzip2-compressed.
    """

    def __init__(self, path: Path) -> None:
        if not path.exists():
            raise InputImageError(f"{path}: file not found; check the image path")
        if not path.is_file():
            raise InputImageError(f"{path}: not a regular file; pass a FITS image")
        self.path = path
        self._tmp: str | None = None
        with open(path, "rb") as fh:
            head = fh.read(80)
        self.compressed = compression_of(head) is not None
        if self.compressed:
            self._content, self.size = decompress_once(path)
            if isinstance(self._content, str):
                self._tmp = self._content
                with open(self._tmp, "rb") as fh:
                    head = fh.read(80)
            else:
                head = self._content.getvalue()[:80]
        else:
            self._content, self.size = str(path), path.stat().st_size
        if not head.startswith(b"SIMPLE  =") or head[29:30] != b"T":
            self.release()
            raise NotFitsError(f"{path}: not a FITS file (no SIMPLE = T card at the start); "
                               "pass a FITS image")
        try:
            self.check_structure()
        except BaseException:
            self.release()
            raise

    def _fileobj(self):
        if isinstance(self._content, io.BytesIO):
            self._content.seek(0)
            return contextlib.nullcontext(self._content)
        return open(self._content, "rb")

    def check_structure(self, max_hdus: int = 1000) -> None:
        """Check the layout keywords of every header before astropy reads the file.

        astropy trusts BITPIX, NAXIS and NAXISn: a negative axis length makes it step back
        and read the same HDUs forever. Headers are walked here from their own keywords (no
        data is read); one with impossible values is a one-line error. Whatever does not
        parse as a header is left to astropy.
        """
        offset = 0
        with self._fileobj() as fh:
            for _ in range(max_hdus):
                if offset >= self.size:
                    return
                fh.seek(offset)
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        header = fits.Header.fromfile(fh)
                except Exception:  # not a header: astropy reports it (or ignores padding)
                    return
                start = fh.tell()
                offset = start + _data_bytes(self.path, header)
                offset += -offset % _FITS_BLOCK

    def open(self, memmap: bool = True) -> tuple[fits.HDUList, bool]:
        """``(hdul, truncation_warned)``; every failure becomes a one-line InputImageError."""
        content = self._content
        if isinstance(content, io.BytesIO):
            content.seek(0)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", AstropyUserWarning)
            warnings.simplefilter("ignore", VerifyWarning)
            try:
                hdul = fits.open(content, memmap=memmap, mode="readonly",
                                 lazy_load_hdus=False)
            except Exception as exc:  # astropy raises many types for malformed files
                text = " ".join(str(exc).split()) or type(exc).__name__
                claimed = self._claimed_bytes()
                if claimed is not None and claimed > self.size:
                    raise TruncatedFitsError(f"{self.path}: file is truncated (the header "
                                             f"claims {claimed} bytes, the file has "
                                             f"{self.size}); copy it again") from None
                if self.size % _FITS_BLOCK or "END" in text or "truncat" in text.lower():
                    raise TruncatedFitsError(f"{self.path}: FITS header is incomplete "
                                             f"({text}); the file is truncated or corrupt, "
                                             "copy it again") from None
                raise NotFitsError(f"{self.path}: cannot be read as FITS ({text})") from None
        # astropy also warns when only the final padding is missing, which it reads fine; whether
        # the image data itself is complete is decided by _check_complete for the HDU in use.
        return hdul, any("truncat" in str(w.message).lower() for w in caught)

    def _claimed_bytes(self) -> int | None:
        """Header plus data size the first header claims, None when it does not parse."""
        content = self._content
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                if isinstance(content, io.BytesIO):
                    content.seek(0)
                    header = fits.Header.fromfile(content)
                    start = content.tell()
                else:
                    with open(content, "rb") as fh:
                        header = fits.Header.fromfile(fh)
                        start = fh.tell()
            naxis = int(header["NAXIS"])
            npix = math.prod(int(header[f"NAXIS{k}"]) for k in range(1, naxis + 1)) \
                if naxis else 0
            return start + abs(int(header["BITPIX"])) // 8 * npix
        except Exception:  # a header that does not even parse claims nothing
            return None

    def release(self) -> None:
        """Remove the temporary file of a large decompressed file (once it is open)."""
        release(self._tmp)
        self._tmp = None


def _data_bytes(path: Path, header: fits.Header) -> int:
    """Bytes of data a header announces, after checking its layout keywords are possible."""
    def integer(key: str, default=None) -> int:
        value = header.get(key, default)
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise TruncatedFitsError(f"{path}: header keyword {key} = {value!r} is not an "
                                     "integer; the file is corrupt")
        return int(value)

    bitpix = integer("BITPIX")
    naxis = integer("NAXIS")
    if bitpix not in _BITPIX_DTYPE:
        raise TruncatedFitsError(f"{path}: BITPIX = {bitpix} is not a FITS pixel type; the "
                                 "file is corrupt")
    if not 0 <= naxis <= 999:
        raise TruncatedFitsError(f"{path}: NAXIS = {naxis} is outside 0..999; the file is "
                                 "corrupt")
    sizes = [integer(f"NAXIS{k}") for k in range(1, naxis + 1)]
    if any(n < 0 for n in sizes):
        raise TruncatedFitsError(f"{path}: negative axis length in the header (NAXISn = "
                                 f"{sizes}); the file is corrupt")
    pcount, gcount = integer("PCOUNT", 0), integer("GCOUNT", 1)
    if pcount < 0 or gcount < 0:
        raise TruncatedFitsError(f"{path}: negative PCOUNT/GCOUNT in the header; the file is "
                                 "corrupt")
    if not naxis:
        return 0
    groups = header.get("GROUPS") is True and sizes[0] == 0
    npix = math.prod(sizes[1:] if groups else sizes)
    return abs(bitpix) // 8 * gcount * (pcount + npix)


def _check_complete(source: _Source, hdu, truncation_warned: bool) -> None:
    """Raise TruncatedFitsError when the file ends before the data of ``hdu`` does.

    Checked from the header and the file size alone, before any pixel is read, so a header
    claiming absurd axes never leads to an allocation.
    """
    path = source.path
    info = hdu.fileinfo()
    if info is None:
        return
    if isinstance(hdu, fits.CompImageHDU):
        _check_tiles(path, hdu)
        # the compressed size is not implied by the image header: the table's own size
        hdr = _table_header(hdu)
        table_bytes = int(hdr.get("NAXIS1", 0)) * int(hdr.get("NAXIS2", 0)) \
            + int(hdr.get("PCOUNT", 0))
        needed = int(info["datLoc"]) + table_bytes
    else:
        hdr = hdu.header
        npix = math.prod(int(hdr.get(f"NAXIS{k}", 0)) for k in range(1, hdr["NAXIS"] + 1))
        needed = int(info["datLoc"]) + abs(int(hdr["BITPIX"])) // 8 * npix
    if needed > source.size:
        what = "decompressed content" if source.compressed else "file"
        raise TruncatedFitsError(f"{path}: file is truncated ({what} has {source.size} bytes, "
                                 f"the image data needs {needed}); copy it again")


def _table_header(hdu) -> fits.Header:
    """The binary-table header (ZNAXISn, ZTILEn, NAXIS2 rows) of a tile-compressed HDU."""
    table = getattr(hdu, "_bintable", None)
    if table is not None:
        return table.header
    return getattr(hdu, "_header", hdu.header)


def _check_tiles(path: Path, hdu) -> None:
    """A tile-compressed HDU must hold one table row per tile its header implies."""
    hdr = _table_header(hdu)
    try:
        naxis = int(hdr["ZNAXIS"])
        sizes = [int(hdr[f"ZNAXIS{k}"]) for k in range(1, naxis + 1)]
        tiles = [int(hdr.get(f"ZTILE{k}", sizes[0] if k == 1 else 1))
                 for k in range(1, naxis + 1)]
        rows = int(hdr["NAXIS2"])
    except (KeyError, ValueError, TypeError):
        raise TruncatedFitsError(f"{path}: tile-compressed image header is incomplete "
                                 "(ZNAXISn/ZTILEn); the file is corrupt") from None
    if any(n < 0 for n in sizes) or any(t < 1 for t in tiles):
        raise TruncatedFitsError(f"{path}: tile-compressed image header has invalid axis or "
                                 "tile sizes; the file is corrupt")
    needed = math.prod(-(-n // t) for n, t in zip(sizes, tiles))
    if needed > rows:
        raise TruncatedFitsError(f"{path}: tile-compressed image claims {needed} tiles but "
                                 f"holds {rows}; the file is truncated or corrupt")


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


def _plane_index(header: fits.Header, key: tuple, ndim: int) -> dict[str, int]:
    """Index of the plane in use along the spectral (``CHAN``) and Stokes (``POL``) axes."""
    out = {"CHAN": 0, "POL": 0}
    for k in range(ndim):  # k: 0-based FITS axis
        index = key[ndim - 1 - k]
        if isinstance(index, int):
            ctype = str(header.get(f"CTYPE{k + 1}", "")).upper()
            out["POL" if ctype.startswith("STOKES") else "CHAN"] = index
    return out


def _centre_dec(wcs: WCS | None, shape: tuple[int, int]) -> float | None:
    """Declination (deg, ICRS) of the image centre, None without a usable WCS."""
    if wcs is None:
        return None
    try:
        from astropy.wcs.utils import pixel_to_skycoord

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            dec = float(pixel_to_skycoord(shape[1] / 2.0, shape[0] / 2.0, wcs).icrs.dec.deg)
    except Exception:  # any WCS that cannot say where its centre is
        return None
    return dec if math.isfinite(dec) else None


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
    header, wcs, beam, beam_source, bunit, pixel_scale_deg, path
        As in :class:`RadioImage`.
    """

    def __init__(self, path: str | os.PathLike, plane: int | None = None,
                 hdu: int | str | None = None, beam: Beam | None = None) -> None:
        self.path = Path(path)
        self._hdul = None
        source = _Source(self.path)
        try:
            self._hdul, warned = source.open()
            self._hdu = _select_hdu(self.path, self._hdul, hdu)
            if _is_scaled(self._hdu):
                # astropy cannot memory-map scaled integers; sections then seek and read instead
                self._hdul.close()
                self._hdul, warned = source.open(memmap=False)
                self._hdu = _select_hdu(self.path, self._hdul, hdu)
            _check_complete(source, self._hdu, warned)
            raw_header, dropped = clean_header(self._hdu.header)
            if dropped:
                log.warning("%s: %s", self.path, describe_dropped(dropped))
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
            self.beam, self.beam_source = resolve_beam(
                self.path, raw_header, override=beam, hdul=self._hdul,
                plane_index=_plane_index(raw_header, self._key, ndim),
                centre_dec_deg=_centre_dec(self.wcs, self.shape))
            self.bunit = str(raw_header.get("BUNIT", "")).strip()
            self.pixel_scale_deg = pixel_scale_deg(self.wcs) if self.wcs is not None else None
        except BaseException:
            if self._hdul is not None:
                self._hdul.close()
            raise
        finally:
            source.release()

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
            with warnings.catch_warnings():
                # scaling overflows and invalid values of damaged data end up as NaN below
                warnings.simplefilter("ignore", RuntimeWarning)
                raw = self._hdu.section[tuple(key)]
                out = np.array(raw, dtype=np.float32, copy=True)
        except (OSError, ValueError, EOFError, zlib.error) as exc:
            text = " ".join(str(exc).split())
            raise TruncatedFitsError(f"{self.path}: cannot read pixels ({text}); the file is "
                                     "truncated or corrupt") from None
        except Exception as exc:  # a damaged compressed tile fails inside astropy's codecs
            if not isinstance(self._hdu, fits.CompImageHDU):
                raise
            text = " ".join(str(exc).split()) or type(exc).__name__
            raise TruncatedFitsError(f"{self.path}: cannot decompress a tile ({text}); the "
                                     "file is corrupt, copy it again") from None
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
               hdu: int | str | None = None, beam: Beam | None = None) -> LazyImage:
    """Open a FITS image lazily (memory-mapped); see :class:`LazyImage`.

    Parameters
    ----------
    path : path-like
        FITS file.
    plane : int, optional
        Index along the one non-degenerate non-celestial axis of a cube (frequency, Stokes).
    hdu : int or str, optional
        HDU index or name; default the first HDU holding an image.
    beam : Beam, optional
        Restoring beam given by the user (``--beam``, see :func:`parse_beam`); wins over the
        header, AIPS history, CASA beam table and survey defaults.

    Raises
    ------
    InputImageError
        Or a subclass: NotFitsError, TruncatedFitsError, NoImageHDUError, EmptyImageError,
        ImageShapeError.
    """
    return LazyImage(path, plane=plane, hdu=hdu, beam=beam)


def read_image(path: str | os.PathLike, plane: int | None = None,
               hdu: int | str | None = None, beam: Beam | None = None) -> RadioImage:
    """Read the 2D plane of a FITS image into memory.

    Parameters are those of :func:`open_image`.

    Raises
    ------
    InputImageError
        As :func:`open_image`, plus AllNaNError when no pixel is finite.
    """
    with open_image(path, plane=plane, hdu=hdu, beam=beam) as lazy:
        data = lazy.read()
        if not np.isfinite(data).any():
            raise AllNaNError(f"{lazy.path}: every pixel is NaN or infinite; nothing to analyse")
        return RadioImage(data=data, header=lazy.header, wcs=lazy.wcs, beam=lazy.beam,
                          bunit=lazy.bunit, pixel_scale_deg=lazy.pixel_scale_deg,
                          path=lazy.path, beam_source=lazy.beam_source)


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
