"""Run the classical source finders Aegean and PyBDSF and bring their catalogues to one form.

Both finders run on a copy of the image in a scratch folder: BANE writes its background and
noise maps, and PyBDSF its log, beside the input image, and a comparison must not litter the
user's data folder.

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
from pathlib import Path

import numpy as np
from astropy.table import Table

from caesar_mrcnn.errors import CaesarError

CATALOG_COLUMNS = ("ra", "dec", "flux_jy", "peak_jyb", "snr", "maj_arcsec", "min_arcsec",
                   "pa_deg", "class")


class FinderError(CaesarError):
    """A classical source finder is not installed or failed on an image."""


def _table(**cols) -> Table:
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
    return _table(ra=np.zeros(0))


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


def _run(cmd: list[str], cwd: Path, what: str) -> None:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no message"]
        raise FinderError(f"{what} failed with status {proc.returncode}: {tail[0]}")


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
        Components in the common form (``snr`` = peak_flux / local_rms).
    wall_s : float
        Wall time of BANE + aegean (s).
    """
    work = Path(workdir)
    img = work / "aegean_input.fits"
    shutil.copyfile(image, img)
    table = work / "aegean.fits"
    t0 = time.perf_counter()
    _run([_script("BANE"), "--cores", str(cores), str(img)], work, f"BANE on {image}")
    _run([_script("aegean"), "--autoload", "--cores", str(cores), "--table", str(table),
          str(img)], work, f"aegean on {image}")
    wall = time.perf_counter() - t0
    comp = work / "aegean_comp.fits"
    if not comp.exists():  # aegean writes no table when it finds nothing
        return empty_catalog(), wall
    t = Table.read(comp)
    with np.errstate(invalid="ignore", divide="ignore"):
        snr = np.asarray(t["peak_flux"], float) / np.asarray(t["local_rms"], float)
    return _table(ra=t["ra"], dec=t["dec"], flux_jy=t["int_flux"], peak_jyb=t["peak_flux"],
                  snr=snr, maj_arcsec=t["a"], min_arcsec=t["b"], pa_deg=t["pa"]), wall


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
    return _table(ra=t["RA"], dec=t["DEC"], flux_jy=t["Total_flux"], peak_jyb=t["Peak_flux"],
                  snr=snr, maj_arcsec=np.asarray(t["Maj"], float) * deg,
                  min_arcsec=np.asarray(t["Min"], float) * deg, pa_deg=t["PA"]), wall
