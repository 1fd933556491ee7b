"""The summary of a FITS image that ``caesar-mrcnn inspect`` prints: geometry, WCS, beam, noise."""

from __future__ import annotations

import math
import os

import numpy as np

from caesar_mrcnn.errors import AllNaNError
from caesar_mrcnn.io.fits import Beam, LazyImage, open_image

_FULL_READ_MAX_PIX = 4096 * 4096


_STATS_SAMPLE_PIX = 1_000_000


def _sample_pixels(img: LazyImage) -> tuple[np.ndarray, float, bool]:
    """Pixel sample for statistics: ``(values, valid_fraction, fraction_is_exact)``.

    Images up to 4096² pixels are read whole; bigger ones through every ``s``-th row only, so a
    survey mosaic is summarised without reading it all.
    """
    ny, nx = img.shape
    step = max(1, math.ceil(math.sqrt(ny * nx / _STATS_SAMPLE_PIX)))
    if ny * nx <= _FULL_READ_MAX_PIX:
        data = img.read()
        finite = np.isfinite(data)
        if not finite.any():
            raise AllNaNError(f"{img.path}: every pixel is NaN or infinite; nothing to analyse")
        sample = data[::step, ::step]
        return sample[np.isfinite(sample)], float(finite.mean()), True
    rows = [img.read_window(y, y + 1, 0, nx)[0, ::step] for y in range(0, ny, step)]
    sample = np.concatenate(rows)
    finite = np.isfinite(sample)
    return sample[finite], float(finite.mean()), False


def describe_image(path: str | os.PathLike, plane: int | None = None,
                   hdu: int | str | None = None, beam: Beam | None = None) -> str:
    """Human-readable summary of a FITS image (what ``caesar-mrcnn inspect`` prints).

    Lists the array shape and type, celestial frame, projection and centre, pixel scale
    (arcsec), restoring beam (arcsec and deg) and its area (pixels), BUNIT, the fraction of
    valid pixels and a sigma-clipped median and rms (3 sigma, on a subsample of at most about
    a million pixels).

    Raises
    ------
    InputImageError
        As :func:`read_image`.
    """
    from astropy.stats import sigma_clipped_stats

    with open_image(path, plane=plane, hdu=hdu, beam=beam) as img:
        ny, nx = img.shape
        lines = [f"file:          {img.path}",
                 f"hdu:           {img.hdu_index} ({img.header.get('EXTNAME', 'PRIMARY')})"]
        shape = f"{ny} x {nx} pixels (ny x nx)"
        if len(img.file_shape) != 2:
            shape += f"; file array {' x '.join(map(str, img.file_shape))}"
            if plane is not None:
                shape += f", plane {plane}"
        lines.append(f"shape:         {shape}")
        scaled = " with BSCALE/BZERO/BLANK" if img.file_scaled else ""
        lines.append(f"dtype:         {img.file_dtype.name} big-endian{scaled} in file "
                     f"(BITPIX {img.header_bitpix}), read as float32")
        lines += _describe_wcs(img)
        lines += _describe_beam(img)
        lines.append(f"bunit:         {img.bunit or '(none)'}")
        values, frac, exact = _sample_pixels(img)
        how = "" if exact else f" (estimated from a subsample of {values.size} pixels)"
        lines.append(f"valid pixels:  {100.0 * frac:.2f} %{how}")
        if values.size:
            _, median, rms = sigma_clipped_stats(values, sigma=3.0, maxiters=5)
            unit = f" {img.bunit}" if img.bunit else ""
            lines.append(f"median:        {median:.6g}{unit} (3-sigma clipped, "
                         f"{values.size} pixels)")
            lines.append(f"rms:           {rms:.6g}{unit}")
        else:
            lines.append("median, rms:   n/a (no valid pixel in the subsample)")
    return "\n".join(lines)


def _describe_wcs(img: LazyImage) -> list[str]:
    if img.wcs is None:
        return ["wcs:           none (pixel coordinates only)"]
    from astropy.wcs.utils import wcs_to_celestial_frame

    ny, nx = img.shape
    try:
        frame = wcs_to_celestial_frame(img.wcs).name
    except ValueError:
        frame = "unknown frame"
    proj = img.wcs.wcs.ctype[0][5:].strip("-") or "linear"
    lon, lat = img.wcs.all_pix2world([[(nx - 1) / 2.0, (ny - 1) / 2.0]], 0)[0]
    names = ("RA", "Dec") if frame in ("icrs", "fk5", "fk4", "fk4noeterms") else ("lon", "lat")
    dx, dy = img.pixel_scale_deg
    return [f"wcs:           frame {frame}, projection {proj}",
            f"centre:        {names[0]} {lon:.6f} deg, {names[1]} {lat:.6f} deg",
            f"pixel scale:   {dx * 3600:.4g} x {dy * 3600:.4g} arcsec (dx x dy)"]


def _describe_beam(img: LazyImage) -> list[str]:
    if img.beam is None:
        return ["beam:          none (no BMAJ/BMIN in the header; give --beam)"]
    b = img.beam
    out = [f"beam:          {b.bmaj_deg * 3600:.4g} x {b.bmin_deg * 3600:.4g} arcsec, "
           f"PA {b.bpa_deg:.4g} deg ({b.bmaj_deg:.4e} x {b.bmin_deg:.4e} deg)",
           f"beam from:     {getattr(img, 'beam_source', 'header')}"]
    area = img.beam_area_pix
    out.append(f"beam area:     {area:.4g} pixels" if area is not None
               else "beam area:     n/a (no pixel scale)")
    return out
