"""Unlabelled SNR cutouts from real radio images, for pretraining.

Each image is read once; its background and rms are estimated on a coarse grid of boxes
(sigma-clipped median and MAD-based rms per box, bilinearly interpolated back to every pixel,
:func:`background_rms`), giving ``snr = (image - background) / rms``. The SNR map is resampled
to :data:`~ssl_backbones.radio_input.REFERENCE_BEAM_PIX` pixels per beam FWHM using the header
beam (``BMAJ``, ``BMIN``; images without a beam are skipped), and square cutouts are taken at
random positions and centred on sources (peaks above ``source_snr``).

Images that serve as evaluation data are never read: :data:`EXCLUDED` lists them by file-name
pattern (fields with reference catalogues, the MiraBest FIRST cutouts and the FITS images of
the MiraBest test batch). The detector's real-noise backgrounds (``caesar_mrcnn.sim.real_noise``)
refuse the same images. This module does not depend on ``caesar_mrcnn``.
"""

from __future__ import annotations

import fnmatch
import logging
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ssl_backbones.errors import PretrainConfigError

log = logging.getLogger(__name__)

EXCLUDED: tuple[str, ...] = (
    "lotss_dr1_*",                 # two LoTSS DR1 cutouts with the DR1 source catalogue
    "parkes_chipass_1904-66*",     # Parkes CHIPASS field with an Aegean catalogue
    "wsrt_abell2255*",             # WSRT Abell 2255 with PyBDSF catalogues
    "mirabest_first",              # folder of the 30 MiraBest FIRST cutouts
    "mirabest_first/*",
    "mirabest_test",               # folder of 73 MiraBest Confident test-batch galaxies (FITS)
    "mirabest_test/*",
    "*_labels.csv",
    "mirabest",                    # the labelled MiraBest batches (test batch inside)
)
"""File or folder name patterns never used for pretraining: evaluation images."""

FITS_SUFFIXES = (".fits", ".fit", ".fts", ".fits.gz")


def is_excluded(path: str | Path) -> bool:
    """True when ``path`` (or one of its parent folders) matches :data:`EXCLUDED`."""
    p = Path(path)
    names = [p.name, *(q.name for q in p.parents)]
    rel = f"{p.parent.name}/{p.name}"
    return any(fnmatch.fnmatch(n, pat) for n in names for pat in EXCLUDED) or any(
        fnmatch.fnmatch(rel, pat) for pat in EXCLUDED)


def find_images(paths: Sequence[str | Path]) -> list[Path]:
    """FITS images under ``paths`` (files, or folders searched recursively), excluded ones
    dropped; sorted."""
    found: list[Path] = []
    for p in map(Path, paths):
        if is_excluded(p):
            log.info("%s: evaluation data, not used for pretraining", p)
            continue
        if p.is_file():
            found.append(p)
        elif p.is_dir():
            for q in sorted(p.rglob("*")):
                if q.is_file() and q.name.lower().endswith(FITS_SUFFIXES) and not any(
                        is_excluded(a) for a in (q, *q.relative_to(p).parents)):
                    found.append(q)
        else:
            raise PretrainConfigError(f"data.sources: {p}: no such file or folder")
    return sorted(set(found))


def read_image(path: Path) -> tuple[np.ndarray, float | None]:
    """2-D image (float32, NaN kept) and its beam FWHM in pixels (None when unknown, or for a
    table-only file)."""
    from astropy.io import fits

    try:
        with fits.open(path) as hdul:
            hdu = next((h for h in hdul if getattr(h, "data", None) is not None
                        and getattr(h.data, "ndim", 0) >= 2 and h.is_image), None)
            if hdu is None:
                return np.zeros((0, 0), np.float32), None
            data = np.squeeze(np.asarray(hdu.data, dtype=np.float32))
            hdr = hdu.header
    except (OSError, ValueError, TypeError) as exc:
        raise PretrainConfigError(f"{path}: cannot read as FITS ({exc}); check the file"
                                  ) from None
    if data.ndim != 2:
        return np.zeros((0, 0), np.float32), None
    return data, beam_pixels(hdr)


def beam_pixels(header) -> float | None:
    """Beam FWHM in pixels, sqrt(BMAJ * BMIN) / pixel size, from a FITS header."""
    bmaj, bmin = header.get("BMAJ"), header.get("BMIN")
    pix = header.get("CDELT2") or header.get("CD2_2")
    if not (bmaj and bmin and pix):
        return None
    return math.sqrt(float(bmaj) * float(bmin)) / abs(float(pix))


def robust_stats(values: np.ndarray, iters: int = 3) -> tuple[float, float]:
    """Median and MAD-based rms of finite values, with 3-sigma clipping."""
    v = values[np.isfinite(values)]
    if v.size < 10:
        return float("nan"), float("nan")
    med, rms = float(np.median(v)), 1.4826 * float(np.median(np.abs(v - np.median(v))))
    for _ in range(iters):
        if rms <= 0:
            break
        keep = np.abs(v - med) < 3.0 * rms
        if keep.sum() < 10:
            break
        med = float(np.median(v[keep]))
        rms = 1.4826 * float(np.median(np.abs(v[keep] - med)))
    return med, rms


def background_rms(image: np.ndarray, box: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Background and rms maps (image units) from sigma-clipped statistics in boxes of
    ``box`` pixels, bilinearly interpolated between box centres.

    Boxes with too few finite pixels, or a non-positive rms, take the median of the others.
    """
    from scipy import ndimage

    ny, nx = image.shape
    gy, gx = max(1, round(ny / box)), max(1, round(nx / box))
    ey = np.linspace(0, ny, gy + 1).astype(int)
    ex = np.linspace(0, nx, gx + 1).astype(int)
    bg = np.full((gy, gx), np.nan)
    rms = np.full((gy, gx), np.nan)
    for i in range(gy):
        for j in range(gx):
            bg[i, j], rms[i, j] = robust_stats(image[ey[i]:ey[i + 1], ex[j]:ex[j + 1]])
    good = np.isfinite(rms) & (rms > 0)
    if not good.any():
        return np.zeros_like(image), np.full_like(image, np.nan)
    bg[~good] = np.median(bg[good])
    rms[~good] = np.median(rms[good])
    # A 3x3 median of the grid keeps one bright source from raising the rms of its box alone.
    if gy >= 3 and gx >= 3:
        rms = ndimage.median_filter(rms, size=3, mode="nearest")
        bg = ndimage.median_filter(bg, size=3, mode="nearest")
    zy, zx = ny / gy, nx / gx
    yy = (np.arange(ny) + 0.5) / zy - 0.5
    xx = (np.arange(nx) + 0.5) / zx - 0.5
    coords = np.meshgrid(np.clip(yy, 0, gy - 1), np.clip(xx, 0, gx - 1), indexing="ij")
    bg_map = ndimage.map_coordinates(bg, coords, order=1, mode="nearest")
    rms_map = ndimage.map_coordinates(rms, coords, order=1, mode="nearest")
    return bg_map.astype(np.float32), rms_map.astype(np.float32)


def snr_map(image: np.ndarray, beam_pix: float | None, box_beams: float = 12.0) -> np.ndarray:
    """Background-subtracted image in units of its local rms (NaN kept)."""
    box = int(max(32, round(box_beams * (beam_pix or 4.0))))
    bg, rms = background_rms(image, box)
    with np.errstate(invalid="ignore", divide="ignore"):
        return ((image - bg) / rms).astype(np.float32)


def source_peaks(snr: np.ndarray, threshold: float, min_separation: int) -> np.ndarray:
    """``[K, 2]`` (y, x) of local maxima above ``threshold`` (brightest first)."""
    from scipy import ndimage

    s = np.where(np.isfinite(snr), snr, -np.inf)
    peak = (s == ndimage.maximum_filter(s, size=2 * min_separation + 1)) & (s > threshold)
    ys, xs = np.nonzero(peak)
    order = np.argsort(-s[ys, xs])
    return np.stack([ys[order], xs[order]], axis=1)


def field_cutouts(path: Path, size: int, per_image: int, centred_fraction: float,
                  rng: np.random.Generator, source_snr: float = 8.0,
                  max_nan_fraction: float = 0.5) -> np.ndarray:
    """Reference-sampled SNR cutouts ``[n, size, size]`` of one image (NaN kept); empty when
    the image has no beam or is smaller than a cutout.

    ``n`` is at most ``per_image``, and at most 4 cutouts per cutout area of the image, so
    small images are not repeated many times over; ``centred_fraction`` of them are centred on
    source peaks (as many as there are).
    """
    from ssl_backbones.mirabest import resample
    from ssl_backbones.radio_input import resample_factor

    image, beam = read_image(path)
    if image.size == 0 or beam is None:
        log.info("%s: no 2-D image with a beam (BMAJ/BMIN); skipped", path)
        return np.zeros((0, size, size), np.float32)
    snr = snr_map(image, beam)
    zoom = resample_factor(beam)
    if zoom != 1.0:
        nan = ~np.isfinite(snr)
        snr = resample(np.where(nan, 0.0, snr)[None], zoom)[0]
        if nan.any():
            snr[resample(nan[None].astype(np.float32), zoom)[0] > 0.5] = np.nan
    ny, nx = snr.shape
    if ny < size or nx < size:
        log.info("%s: %dx%d px after resampling, smaller than %d; skipped", path, nx, ny, size)
        return np.zeros((0, size, size), np.float32)
    n_total = max(1, min(per_image, int(4 * ny * nx / size**2)))
    n_centred = int(round(n_total * centred_fraction))
    n_random = n_total - n_centred
    half = size // 2
    centres = [(int(y), int(x)) for y, x in zip(rng.integers(half, ny - size + half + 1,
                                                             3 * n_random),
                                                rng.integers(half, nx - size + half + 1,
                                                             3 * n_random))][: 3 * n_random]
    peaks = source_peaks(snr, source_snr, max(2, int(2 * (beam * zoom))))
    out: list[np.ndarray] = []
    n_centred = min(n_centred, len(peaks))
    for cands, want in (([tuple(p) for p in peaks], n_centred),
                        (centres, n_total - n_centred)):
        got = 0
        for y, x in cands:
            if got >= want:
                break
            y0 = int(np.clip(y - half, 0, ny - size))
            x0 = int(np.clip(x - half, 0, nx - size))
            win = snr[y0:y0 + size, x0:x0 + size]
            if np.mean(~np.isfinite(win)) > max_nan_fraction:
                continue
            out.append(win.copy())
            got += 1
    return np.stack(out).astype(np.float32) if out else np.zeros((0, size, size), np.float32)


def load_field_cutouts(paths: Sequence[str | Path], size: int, per_image: int, seed: int,
                       centred_fraction: float = 0.5, source_snr: float = 8.0,
                       max_nan_fraction: float = 0.5) -> tuple[np.ndarray, list[Path]]:
    """Cutouts from every usable real image under ``paths`` (see :func:`field_cutouts`).

    See :func:`field_cutouts` for how many come from each image.

    Returns
    -------
    cutouts : numpy.ndarray
        ``[N, size, size]`` float32 SNR.
    files : list of Path
        The images that gave cutouts.
    """
    rng = np.random.default_rng(seed)
    arrays, used = [], []
    for path in find_images(paths):
        cut = field_cutouts(path, size, per_image, centred_fraction, rng, source_snr,
                            max_nan_fraction)
        if len(cut):
            arrays.append(cut)
            used.append(path)
            log.info("%s: %d cutouts", path.name, len(cut))
    if not arrays:
        raise PretrainConfigError(
            f"data.sources: no usable real image under {', '.join(map(str, paths))} (need 2-D "
            "FITS images with BMAJ/BMIN, larger than a cutout)")
    return np.concatenate(arrays), used
