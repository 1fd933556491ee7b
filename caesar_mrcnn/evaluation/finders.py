"""Run the source finders (caesar-mrcnn, Aegean, PyBDSF) and bring their catalogues to one form.

Aegean and PyBDSF run on a copy of the image in a scratch folder: BANE writes its background and
noise maps, and PyBDSF its log, beside the input image, and a comparison must not litter the
user's data folder. Under NumPy 2, aegean runs through :mod:`aegean_compat` (see there why); the
catalogue's ``meta["notes"]`` then says how often that mattered.

Every finder's catalogue is returned with the same columns:

``ra, dec`` (deg), ``flux_jy`` (integrated, Jy), ``peak_jyb`` (Jy/beam), ``snr`` (peak over the
local noise), ``maj_arcsec, min_arcsec`` (FWHM of the fitted ellipse, arcsec; NaN if none),
``pa_deg`` (east of north), ``class`` (predicted class, ``""`` when the finder does not classify).
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from astropy.table import Table

from caesar_mrcnn.errors import CaesarError
from caesar_mrcnn.evaluation.reference import BOX_COLUMNS

CATALOG_COLUMNS = ("ra", "dec", "flux_jy", "peak_jyb", "snr", "maj_arcsec", "min_arcsec",
                   "pa_deg", "class")

FINDERS: tuple[str, ...] = ("caesar-mrcnn", "aegean", "pybdsf")
"""Finders known to the comparisons, in table order."""

CAESAR_ALL = "caesar-mrcnn (all)"
"""Row of caesar-mrcnn with every entry it reports."""
CAESAR_NO_SPURIOUS = "caesar-mrcnn (no spurious)"
"""Row of caesar-mrcnn with its ``spurious``-class entries left out."""

CAESAR_COMPONENTS = "caesar-mrcnn (components)"
"""Row of caesar-mrcnn with its entries and their components (the Gaussians or mask islands
of each entry, as Aegean reports components): a source grouped into a larger entry is still
measured and placed by its component."""

SYMMETRY_RULE = (f"{CAESAR_ALL}: every entry, as for Aegean and PyBDSF (which class nothing as "
                 f"an artefact); {CAESAR_NO_SPURIOUS}: its entries of class spurious left out.")
"""How the two caesar-mrcnn rows differ, printed next to every table that has them."""


def finder_rows(name: str, catalog: Table) -> list[tuple[str, Table]]:
    """The table rows one finder's catalogue gives: two for caesar-mrcnn (all entries; spurious
    left out), one for any other finder."""
    if name != "caesar-mrcnn":
        return [(name, catalog)]
    catalog = entries_of(catalog)
    keep = np.asarray(catalog["class"], dtype=str) != "spurious"
    return [(CAESAR_ALL, catalog), (CAESAR_NO_SPURIOUS, catalog[keep])]


def entries_of(catalog: Table) -> Table:
    """The catalogue entries of a caesar-mrcnn catalogue in the common form (its rows of
    ``level`` ``entry``; every row when it has no ``level`` column)."""
    if "level" not in catalog.colnames:
        return catalog
    return catalog[np.asarray(catalog["level"], dtype=str) == "entry"]


def row_names(finders: Sequence[str]) -> list[str]:
    """Row labels, in table order, of the given finders."""
    return [label for f in finders
            for label in ((CAESAR_ALL, CAESAR_NO_SPURIOUS) if f == "caesar-mrcnn" else (f,))]


class FinderError(CaesarError):
    """A classical source finder is not installed or failed on an image."""


def common_catalog(**cols) -> Table:
    """A catalogue in the common form from the given columns (:data:`CATALOG_COLUMNS`; any
    missing column is filled with NaN, or ``""`` for ``class``)."""
    n = len(next(iter(cols.values())))
    out = Table()
    for name in CATALOG_COLUMNS:
        if name == "class":
            out[name] = np.asarray(cols.get(name, [""] * n), dtype=str)
        else:
            out[name] = np.asarray(cols.get(name, np.full(n, np.nan)), dtype=float)
    return out


def empty_catalog() -> Table:
    """A catalogue with the common columns and no row."""
    return common_catalog(ra=np.zeros(0))


def catalog_column(table: Table, *names: str) -> np.ndarray:
    """The first of ``names`` present in ``table`` as a float array; NaN when none is."""
    for name in names:
        if name in table.colnames:
            return np.asarray(table[name], dtype=float)
    return np.full(len(table), np.nan)


def run_caesar_mrcnn(image: str | os.PathLike, detector=None, config=None, predictor=None
                     ) -> tuple[Table, float]:
    """caesar-mrcnn's ``infer`` on one image; its catalogue in the common form.

    Parameters
    ----------
    image : path-like
        FITS image.
    detector : caesar_mrcnn.detection.detector.Detector, optional
        Loaded detector (the shipped one when neither it nor ``predictor`` is given).
    config : caesar_mrcnn.detection.infer.InferConfig, optional
        Inference options.
    predictor : callable, optional
        Predictor run in place of a detector (tests, upper bounds).

    Returns
    -------
    catalog : astropy.table.Table
        Every entry, whatever its class (``spurious`` included; callers choose what to keep),
        then the entries' components (column ``level``: ``entry`` or ``component``; a
        component takes its entry's class), with the entries' bounding boxes in pixels
        (:data:`~caesar_mrcnn.evaluation.reference.BOX_COLUMNS`; -1 for components).
        :func:`finder_rows` gives the entries.
    wall_s : float
        Wall time of the inference (s; loading ``detector`` beforehand is not included).
    """
    from caesar_mrcnn.detection import infer

    t0 = time.perf_counter()
    result = infer.infer_image(image, detector=detector, predictor=predictor, config=config)
    wall = time.perf_counter() - t0
    cat, comps = result.table, result.components
    col = lambda *names: catalog_column(cat, *names)  # noqa: E731
    entries = common_catalog(ra=col("ra"), dec=col("dec"), flux_jy=col("int_flux", "flux"),
                             peak_jyb=col("peak_flux", "peak"), snr=col("snr"),
                             maj_arcsec=col("maj_fwhm"), min_arcsec=col("min_fwhm"),
                             pa_deg=col("pa"), **{"class": np.asarray(cat["class"], dtype=str)})
    entries["level"] = np.full(len(entries), "entry", dtype="U9")
    # Bounding boxes in the image's pixels (reference.cross_match counts a source inside one).
    for name in BOX_COLUMNS:
        entries[name] = np.asarray(cat[name], dtype=np.int64)
    parent = np.asarray(comps["source_index"], dtype=np.int64)
    ccol = lambda *names: catalog_column(comps, *names)  # noqa: E731
    with np.errstate(invalid="ignore", divide="ignore"):
        snr = ccol("peak_flux") / ccol("local_rms")
    parts = common_catalog(ra=ccol("ra"), dec=ccol("dec"), flux_jy=ccol("int_flux"),
                           peak_jyb=ccol("peak_flux"), snr=snr, maj_arcsec=ccol("maj_fwhm"),
                           min_arcsec=ccol("min_fwhm"), pa_deg=ccol("pa"),
                           **{"class": np.asarray(cat["class"], dtype=str)[parent]
                              if len(parent) else np.zeros(0, dtype=str)})
    parts["level"] = np.full(len(parts), "component", dtype="U9")
    for name in BOX_COLUMNS:
        parts[name] = np.full(len(parts), -1, dtype=np.int64)
    from astropy.table import vstack

    return vstack([entries, parts]) if len(parts) else entries, wall


def _script(name: str) -> str:
    # Console scripts of the running interpreter's environment first, then PATH.
    local = Path(sys.executable).parent / name
    found = str(local) if local.exists() else shutil.which(name)
    if not found:
        raise FinderError(f"{name}: console script not found; install the 'compare' extra "
                          "(pip install 'caesar-mrcnn[compare]')")
    return found


def available(finder: str) -> bool:
    """Whether a classical finder (``"aegean"`` or ``"pybdsf"``) can run here."""
    if finder == "aegean":
        try:
            _script("BANE")
            _script("aegean")
        except FinderError:
            return False
        return True
    if finder == "pybdsf":
        import importlib.util

        return importlib.util.find_spec("bdsf") is not None
    raise ValueError(f"unknown finder {finder!r}")


def _run(cmd: list[str], cwd: Path, what: str) -> str:
    """Run a finder's command; its stderr when it succeeds, FinderError when it fails."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        lines = (proc.stderr or proc.stdout).strip().splitlines() or ["no message"]
        # The last line naming an error says why; warnings may come after it.
        why = next((ln for ln in reversed(lines) if "Error" in ln), lines[-1])
        raise FinderError(f"{what} failed with status {proc.returncode}: {why.strip()}")
    return proc.stderr


_COMPAT_MARK = "caesar-mrcnn-compat: "


def _aegean_command(script: str) -> list[str]:
    """How to start aegean: through :mod:`aegean_compat` with the interpreter that runs the
    aegean console script, when that interpreter's NumPy lacks ``numpy.linalg.linalg``."""
    python = sys.executable
    with contextlib.suppress(OSError, UnicodeDecodeError):
        first = Path(script).read_text(errors="strict").splitlines()[0]
        if first.startswith("#!") and "python" in first and " " not in first[2:].strip():
            python = first[2:].strip()
    probe = subprocess.run([python, "-c", "import numpy; print(hasattr(numpy.linalg, 'linalg'))"],
                           capture_output=True, text=True)
    if probe.returncode != 0 or probe.stdout.strip() != "False":
        return [script]
    return [python, str(Path(__file__).with_name("aegean_compat.py"))]


def _aegean_radec(table: Table) -> tuple[np.ndarray, np.ndarray]:
    """ICRS RA, Dec (deg) of a classical finder's components: ``ra``/``dec`` as they are, or
    Galactic ``lon``/``lat`` converted (aegean writes those for a Galactic image, e.g.
    MAGPIS)."""
    if "ra" in table.colnames:
        return np.asarray(table["ra"], float), np.asarray(table["dec"], float)
    from astropy.coordinates import SkyCoord

    sky = SkyCoord(np.asarray(table["lon"], float), np.asarray(table["lat"], float),
                   unit="deg", frame="galactic").icrs
    return sky.ra.deg, sky.dec.deg


def run_aegean(image: str | os.PathLike, workdir: str | os.PathLike, cores: int = 1
               ) -> tuple[Table, float]:
    """BANE then aegean on one image.

    Parameters
    ----------
    image : path-like
        FITS image (Jy/beam, with WCS and beam keywords).
    workdir : path-like
        Existing scratch folder; the image is copied there.
    cores : int
        Processes BANE and aegean may use.

    Returns
    -------
    catalog : astropy.table.Table
        Components in the common form (``snr`` = peak_flux / local_rms); ``meta["notes"]``
        lists workarounds that were needed (see :mod:`aegean_compat`).
    wall_s : float
        Wall time of BANE + aegean (s).
    """
    work = Path(workdir)
    img = work / "aegean_input.fits"
    shutil.copyfile(image, img)
    table = work / "aegean.fits"
    t0 = time.perf_counter()
    _run([_script("BANE"), "--cores", str(cores), str(img)], work, f"BANE on {image}")
    stderr = _run([*_aegean_command(_script("aegean")), "--autoload", "--cores", str(cores),
                   "--table", str(table), str(img)], work, f"aegean on {image}")
    wall = time.perf_counter() - t0
    notes = []
    uses = [int(line[len(_COMPAT_MARK):]) for line in stderr.splitlines()
            if line.startswith(_COMPAT_MARK) and line[len(_COMPAT_MARK):].strip().isdigit()]
    if uses and (uses[-1] > 0 or cores > 1):
        # Fits in aegean's worker processes (cores > 1) are not counted by the shim.
        times = f"{uses[-1]} times" if cores == 1 else "(times not counted with --cores > 1)"
        notes.append(f"aegean reached its singular-covariance error path {times}; that path "
                     "names numpy.linalg.linalg, which NumPy 2 removed, so aegean ran with the "
                     "alias restored in its own process (those components get Aegean's "
                     "fallback error bars; the fits are unchanged)")
    comp = work / "aegean_comp.fits"
    if not comp.exists():  # aegean writes no table when it finds nothing
        out = empty_catalog()
    else:
        t = Table.read(comp)
        with np.errstate(invalid="ignore", divide="ignore"):
            snr = np.asarray(t["peak_flux"], float) / np.asarray(t["local_rms"], float)
        ra, dec = _aegean_radec(t)
        out = common_catalog(ra=ra, dec=dec, flux_jy=t["int_flux"],
                             peak_jyb=t["peak_flux"], snr=snr, maj_arcsec=t["a"],
                             min_arcsec=t["b"], pa_deg=t["pa"])
    out.meta["notes"] = notes
    return out, wall


def _is_galactic(image: Path) -> bool:
    """The image's first axis is Galactic longitude (``GLON-...``)."""
    from astropy.io import fits

    return str(fits.getheader(image).get("CTYPE1", "")).upper().startswith("GLON")


def _frequency_hz(image: Path) -> float:
    from astropy.io import fits

    header = fits.getheader(image)
    for key in ("RESTFRQ", "RESTFREQ", "FREQ"):
        if key in header:
            return float(header[key])
    for axis in range(3, int(header.get("NAXIS", 2)) + 1):
        if str(header.get(f"CTYPE{axis}", "")).startswith("FREQ"):
            return float(header[f"CRVAL{axis}"])
    # PyBDSF insists on a frequency even for one channel; it only labels the output then.
    return 1.4e9


def run_pybdsf(image: str | os.PathLike, workdir: str | os.PathLike, cores: int = 1
               ) -> tuple[Table, float]:
    """PyBDSF ``process_image`` on one image; its source list (srl) in the common form.

    Parameters and returns as :func:`run_aegean` (``snr`` = Peak_flux / Isl_rms; sizes are
    PyBDSF's fitted FWHM, converted from deg to arcsec).
    """
    try:
        import bdsf
    except ImportError:
        raise FinderError("bdsf (PyBDSF) is not installed; install the 'compare' extra "
                          "(pip install 'caesar-mrcnn[compare]')") from None
    work = Path(workdir)
    img = work / "pybdsf_input.fits"
    shutil.copyfile(image, img)
    out = work / "pybdsf_srl.fits"
    t0 = time.perf_counter()
    # PyBDSF logs its progress to the "PyBDSF" logger (and the console); keep it in its log file
    # instead of the caller's logging, and restore the logger afterwards.
    bdsf_log = logging.getLogger("PyBDSF")
    propagate = bdsf_log.propagate
    bdsf_log.propagate = False
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            result = bdsf.process_image(str(img), quiet=True, ncores=cores,
                                        frequency=_frequency_hz(img))
            wrote = result.write_catalog(outfile=str(out), format="fits", catalog_type="srl",
                                         clobber=True)
    except Exception as exc:  # PyBDSF raises bare RuntimeError/ValueError on bad images
        raise FinderError(f"PyBDSF failed on {image}: {str(exc).splitlines()[0]}") from exc
    finally:
        bdsf_log.propagate = propagate
    wall = time.perf_counter() - t0
    if wrote is False or not out.exists():  # no source found: PyBDSF writes nothing
        return empty_catalog(), wall
    t = Table.read(out)
    deg = 3600.0
    with np.errstate(invalid="ignore", divide="ignore"):
        snr = np.asarray(t["Peak_flux"], float) / np.asarray(t["Isl_rms"], float)
    ra, dec = np.asarray(t["RA"], float), np.asarray(t["DEC"], float)
    if _is_galactic(img):
        # PyBDSF writes the image's own longitude and latitude under RA and DEC
        ra, dec = _aegean_radec(Table({"lon": ra, "lat": dec}))
    return common_catalog(ra=ra, dec=dec, flux_jy=t["Total_flux"],
                          peak_jyb=t["Peak_flux"], snr=snr,
                          maj_arcsec=np.asarray(t["Maj"], float) * deg,
                          min_arcsec=np.asarray(t["Min"], float) * deg, pa_deg=t["PA"]), wall
