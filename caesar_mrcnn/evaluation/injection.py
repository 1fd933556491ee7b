"""Injection into real images: the pieces the injection benchmarks share, and the footprint
scoring of injected extended sources.

The benchmarks (``scripts/bench/inject_real.py``, ``scripts/bench/inject_extended.py``) add
sources of known flux density to real images where no emission is, run every finder on the
injected copies (:mod:`caesar_mrcnn.evaluation.compare_real`) and score the catalogues against
what was injected. This module holds what they have in common: which real images take part,
where the sky is clear, how an injected copy is written, how finder runs are cached between
invocations, and the robust scatter they quote.

An extended source has no single position to match within a radius: it is scored by its
**footprint**, the pixels where its noiseless model (convolved with the beam) exceeds 3 times
the local rms, grown by one beam FWHM. An entry lies on a source when its position falls on
that grown footprint; per source and finder this gives the number of entries on it, whether it
came out as one entry, and the sum of their flux densities (:func:`score_footprints`).
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from astropy.table import Table
from scipy import ndimage

REAL_FOLDERS = ("fields", "extended", "extended/vlass")
"""Folders of the real-data folder whose images take part."""

BUSY_NSIGMA = 3.0
"""A pixel this many local rms above the background holds emission: no injection near it."""


def default_real_dir() -> Path:
    """The real-data folder: ``$CAESAR_REAL_DATA``, else ``shared/real`` beside the checkout."""
    root = Path(__file__).resolve().parents[2]
    return Path(os.environ.get("CAESAR_REAL_DATA", root / ".." / "shared" / "real"))


def images_with_beam(real: Path) -> tuple[list[Path], list[str]]:
    """Image files of the real-data folders whose primary header gives BMAJ and BMIN, and the
    names of those left out because their WCS is not equatorial (the classical finders write
    galactic longitude and latitude into their RA and Dec columns)."""
    from astropy.io import fits
    from astropy.wcs import WCS

    from caesar_mrcnn.measure.sky import EQUATORIAL_FRAMES, sky_frame

    out, skipped = [], []
    for folder in REAL_FOLDERS:
        for path in sorted((real / folder).glob("*.fits")):
            with fits.open(path) as hdul:
                h = hdul[0].header
                if h.get("NAXIS", 0) >= 2 and "BMAJ" in h and "BMIN" in h:
                    if sky_frame(WCS(h).celestial) in EQUATORIAL_FRAMES:
                        out.append(path)
                    else:
                        skipped.append(path.name)
    return out, skipped


def add_injection_arguments(parser, *, what: str, per_image: int, out: str) -> None:
    """The options both injection benchmarks take: seeds, images, finders, caching.

    Parameters
    ----------
    parser : argparse.ArgumentParser
    what : str
        What the seed draws (its help text).
    per_image : int
        Default of ``--per-image``.
    out : str
        Default output folder.
    """
    parser.add_argument("--seed", required=True,
                        help=f"seed of {what}; a comma-separated list pools one injected copy "
                             "of each image per seed")
    parser.add_argument("--per-image", type=int, default=per_image,
                        help="injections per image, at most")
    parser.add_argument("--real", type=Path, default=None,
                        help="real-data folder (default $CAESAR_REAL_DATA or ../shared/real)")
    parser.add_argument("--weights", default=None, metavar="FILE",
                        help="caesar-mrcnn detector file (default: the shipped detector)")
    parser.add_argument("--finders", default="caesar-mrcnn,aegean,pybdsf")
    parser.add_argument("--images", default=None,
                        help="comma-separated substrings: only images whose name holds one")
    parser.add_argument("--cores", type=int, default=1,
                        help="processes for Aegean and PyBDSF")
    parser.add_argument("--out", type=Path, default=Path(out), help="output folder")
    parser.add_argument("--reuse", default="", metavar="FINDERS",
                        help="comma-separated finders whose catalogues a previous run wrote "
                             "under --out for the same injected images are read instead of "
                             "running them again")
    from caesar_mrcnn.detection.command import add_infer_overrides

    add_infer_overrides(parser)


def caesar_config(args, parser):
    """caesar-mrcnn's infer options for a benchmark run (``--set`` applied), or None when it
    is not among ``--finders``; a bad override ends the run through ``parser.error``."""
    from caesar_mrcnn.detection.command import infer_config_of

    if "caesar-mrcnn" not in args.finders.split(","):
        return None
    return infer_config_of(parser, args)


def chosen_images(args, parser) -> tuple[list[Path], list[str]]:
    """The images ``--real`` and ``--images`` select (see :func:`images_with_beam`); a
    parser error when none is left."""
    real = args.real or default_real_dir()
    paths, skipped = images_with_beam(real)
    if args.images:
        keys = args.images.split(",")
        paths = [q for q in paths if any(k in q.name for k in keys)]
    if not paths:
        parser.error(f"no real image with a beam under {real}; give --real DIR")
    return paths, skipped


def image_plane(data: np.ndarray) -> np.ndarray:
    """The 2-D view of a (1, 1, ny, nx) or (ny, nx) array (writes go through to ``data``)."""
    while data.ndim > 2:
        data = data[0]
    return data


def busy_pixels(data: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Where an image holds emission or no data.

    Parameters
    ----------
    data : numpy.ndarray, shape (ny, nx)
        The image (NaN where blank).

    Returns
    -------
    busy : numpy.ndarray of bool
        Pixels :data:`BUSY_NSIGMA` local rms above the background, and non-finite pixels.
    bkg, rms : numpy.ndarray
        Background and rms maps of
        :func:`caesar_mrcnn.measure.background.background_grid`.
    """
    from caesar_mrcnn.measure.background import background_grid

    shape = data.shape
    grid = background_grid(data, shape)
    bkg, rms = grid.window(0, shape[0], 0, shape[1])
    finite = np.isfinite(data)
    busy = (np.where(finite, data - bkg, 0.0) > BUSY_NSIGMA * rms) | ~finite
    return busy, bkg, rms


def write_injected(path: Path, out: Path, add: Callable[[np.ndarray], None]) -> Path:
    """A copy of the FITS image ``path`` at ``out`` whose pixels ``add`` has changed.

    ``add`` receives the image plane (float32, writable) and adds the injected sources to it
    in place. Scaling keywords are dropped, as the pixels are now stored as floats.
    """
    from astropy.io import fits

    with fits.open(path) as hdul:
        hdu = hdul[0]
        data = np.array(hdu.data, dtype=np.float32)
        add(image_plane(data))
        header = hdu.header.copy()
        for key in ("BSCALE", "BZERO", "BLANK"):
            header.remove(key, ignore_missing=True)
        fits.PrimaryHDU(data, header).writeto(out, overwrite=True, output_verify="silentfix")
    return out


def robust_dex(ratio: np.ndarray) -> float:
    """Scatter of positive ratios: 1.4826 times the MAD of their log10 (dex); NaN below 3."""
    lg = np.log10(ratio[ratio > 0])
    return float(1.4826 * np.median(np.abs(lg - np.median(lg)))) if lg.size >= 3 else math.nan


def cache_file(out: Path, finder: str, image: Path, tag: str) -> Path:
    """Where a finder's catalogue of one injected image is kept under the output folder."""
    return out / "catalogs" / finder / f"{tag}_{image.stem}.ecsv"


def cached_runs(out: Path, finder: str, inputs, tag: str) -> tuple[list, list]:
    """The catalogues a previous run with the same seed wrote for ``finder``, and the images
    that have none (to run again)."""
    from caesar_mrcnn.evaluation import compare_real as cr

    runs, missing = [], []
    for im in inputs:
        f = cache_file(out, finder, im.path, tag)
        if f.exists():
            runs.append(cr.FinderRun(finder, im.path, catalog=Table.read(f)))
        else:
            missing.append(im)
    print(f"  {finder}: {len(runs)} catalogues of the previous run reused", file=sys.stderr)
    return runs, missing


def run_finders_cached(images, finders: Sequence[str], out: Path, tag: str,
                       reuse: set[str], weights=None, config=None, cores: int = 1) -> list:
    """Every finder on every prepared image, each catalogue kept under ``out`` for a later
    ``--reuse``; the finders named in ``reuse`` read the kept catalogues where there are any.

    Returns
    -------
    list of caesar_mrcnn.evaluation.compare_real.FinderRun
    """
    from caesar_mrcnn.evaluation import compare_real as cr

    runs = []
    for finder in finders:
        cached, todo = (cached_runs(out, finder, images, tag) if finder in reuse
                        else ([], images))
        runs += cached
        if todo:
            runs += cr.run_finders(
                todo, [finder], weights, config, cores,
                progress=lambda f, im: print(f"  {f}: {im.name}", file=sys.stderr, flush=True))
    for run in runs:
        if run.ran:
            cache = cache_file(out, run.finder, run.image, tag)
            cache.parent.mkdir(parents=True, exist_ok=True)
            run.catalog.meta.pop("notes", None)
            run.catalog.write(cache, overwrite=True)
    return runs


# ---- extended sources: scoring by footprint ----

def footprint_labels(shape: tuple[int, int], footprints: Sequence[tuple[int, int, np.ndarray]],
                     grow_px: float) -> np.ndarray:
    """Which source each pixel belongs to: its footprint grown by ``grow_px`` pixels.

    Parameters
    ----------
    shape : tuple of int
        ``(ny, nx)`` of the image.
    footprints : sequence of (y0, x0, mask)
        Each source's footprint: a boolean mask whose first pixel is ``(y0, x0)``.
    grow_px : float
        Growth (pixels, Euclidean): one beam FWHM in the benchmark.

    Returns
    -------
    numpy.ndarray of int32, shape ``shape``
        The source's index (order of ``footprints``), -1 on no source. Where grown footprints
        overlap, the later source wins; the benchmark keeps them apart.
    """
    labels = np.full(shape, -1, dtype=np.int32)
    pad = int(math.ceil(grow_px)) + 1
    for k, (y0, x0, mask) in enumerate(footprints):
        h, w = mask.shape
        big = np.zeros((h + 2 * pad, w + 2 * pad), bool)
        big[pad:pad + h, pad:pad + w] = mask
        grown = ndimage.distance_transform_edt(~big) <= grow_px
        ya, xa = y0 - pad, x0 - pad
        ys = slice(max(ya, 0), min(ya + big.shape[0], shape[0]))
        xs = slice(max(xa, 0), min(xa + big.shape[1], shape[1]))
        labels[ys, xs][grown[ys.start - ya:ys.stop - ya, xs.start - xa:xs.stop - xa]] = k
    return labels


def sources_of_entries(labels: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The source (label) each entry's position ``(x, y)`` (pixels, 0-based) falls on; -1 when
    none, off the image, or not finite."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    out = np.full(x.shape, -1, dtype=np.int64)
    ok = np.isfinite(x) & np.isfinite(y)
    col = np.floor(np.where(ok, x, -1.0) + 0.5).astype(np.int64)
    row = np.floor(np.where(ok, y, -1.0) + 0.5).astype(np.int64)
    ok &= (col >= 0) & (col < labels.shape[1]) & (row >= 0) & (row < labels.shape[0])
    out[ok] = labels[row[ok], col[ok]]
    return out


def score_footprints(n_sources: int, on: np.ndarray, flux: np.ndarray,
                     classes: np.ndarray | None = None) -> Table:
    """Per source: the entries of one catalogue that lie on it.

    Parameters
    ----------
    n_sources : int
        Number of injected sources.
    on : numpy.ndarray of int
        Per entry, the source it lies on (:func:`sources_of_entries`; -1 none).
    flux : numpy.ndarray
        Per entry, its integrated flux density (Jy); a NaN counts as 0.
    classes : numpy.ndarray of str, optional
        Per entry, its class (finders that classify).

    Returns
    -------
    astropy.table.Table
        One row per source: ``n_on`` (entries on it), ``found`` (at least one),
        ``one_entry`` (exactly one), ``one_class`` (the class of that one entry, else ``""``),
        ``flux_sum`` (Jy, sum over the entries on it; 0 when none).
    """
    on = np.asarray(on, dtype=np.int64)
    flux = np.nan_to_num(np.asarray(flux, float), nan=0.0)
    hit = on >= 0
    n_on = np.bincount(on[hit], minlength=n_sources)[:n_sources]
    flux_sum = np.bincount(on[hit], weights=flux[hit], minlength=n_sources)[:n_sources]
    one_class = np.full(n_sources, "", dtype="U24")
    if classes is not None:
        classes = np.asarray(classes, dtype=str)
        for j in np.flatnonzero(hit):
            if n_on[on[j]] == 1:
                one_class[on[j]] = classes[j]
    return Table({"n_on": n_on, "found": n_on > 0, "one_entry": n_on == 1,
                  "one_class": one_class, "flux_sum": flux_sum})


def summarise_footprints(per_source: Table, samples: Sequence[tuple[str, np.ndarray]],
                         extended_classes: Sequence[str] = ("extended", "extended-multisland"),
                         classifying: Sequence[str] = (), flux_only: Sequence[str] = ()
                         ) -> Table:
    """Rates and flux ratios per finder row and sample of sources.

    Parameters
    ----------
    per_source : astropy.table.Table
        One row per source and finder row: ``finder`` plus the columns of
        :func:`score_footprints` and ``flux`` (the true integrated flux density, Jy).
    samples : sequence of (str, bool array)
        Named selections of ``per_source``'s rows (e.g. all, one family, one SNR bin).
    extended_classes : sequence of str
        Classes that count as extended for ``one_extended``.
    classifying : sequence of str
        Finder rows whose classes are read (``one_extended`` is NaN for the others).
    flux_only : sequence of str
        Finder rows whose entries are not catalogue entries (components): their grouping
        columns are NaN.

    Returns
    -------
    astropy.table.Table
        ``finder, sample, n, found, one_entry, one_extended, entries_mean`` (mean number of
        entries on a found source), ``flux_median`` (flux sum over true flux of the found
        sources) and ``flux_scatter_dex`` (:func:`robust_dex`).
    """
    rows = []
    finders = list(dict.fromkeys(np.asarray(per_source["finder"], dtype=str)))
    for name, sel in samples:
        for finder in finders:
            t = per_source[np.asarray(sel) & (np.asarray(per_source["finder"], str) == finder)]
            n = len(t)
            found = np.asarray(t["found"], bool)
            ratio = np.asarray(t["flux_sum"], float)[found] / np.asarray(t["flux"], float)[found]
            grouping = finder not in flux_only
            ext = np.isin(np.asarray(t["one_class"], str), list(extended_classes))
            rows.append(dict(
                finder=finder, sample=name, n=n,
                found=found.mean() if n else math.nan,
                one_entry=float(np.mean(t["one_entry"])) if n and grouping else math.nan,
                one_extended=(float(np.mean(ext & np.asarray(t["one_entry"], bool)))
                              if n and grouping and finder in classifying else math.nan),
                entries_mean=(float(np.mean(np.asarray(t["n_on"])[found]))
                              if found.any() and grouping else math.nan),
                flux_median=float(np.median(ratio)) if ratio.size else math.nan,
                flux_scatter_dex=robust_dex(ratio)))
    return Table(rows=rows)
