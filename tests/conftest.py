"""Suite-wide rule: under ``CI=true`` a test skipped for a missing real client fails instead.

Tests of the interfaces to SAOImage DS9, STILTS, Horovod (and its launchers), Aegean and PyBDSF
skip on a machine without those programs, so that the suite runs anywhere; on CI, where they
are installed on purpose, such a skip would hide a broken installation, so it is turned into a
failure naming the missing client. Any skip reason that names one of the clients counts, whether
it came from ``pytest.skip``, ``skipif`` or ``importorskip``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS

REAL_CLIENTS = re.compile(r"\b(ds9|saoimage|xpa\w*|stilts|horovod\w*|mpirun|aegean|bane|"
                          r"pybdsf|bdsf)\b", re.IGNORECASE)
"""Skip reasons that mean a real client is missing."""


def on_ci() -> bool:
    """True when the suite runs on continuous integration (``CI=true``)."""
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def _skip_reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2])
    return str(longrepr)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if not (report.skipped and on_ci()) or hasattr(report, "wasxfail"):
        return
    reason = _skip_reason(report)
    if REAL_CLIENTS.search(reason):
        report.outcome = "failed"
        report.longrepr = (f"CI=true and a real client is missing, so this test may not skip: "
                           f"{reason.removeprefix('Skipped: ')}")


# --- the installed command as a process -------------------------------------------------------


class Cli:
    """The installed ``caesar-mrcnn`` entry point of this environment (``pip install -e .``
    puts it beside python), run as its own process: ``cli("infer", ...)``."""

    path = Path(sys.executable).parent / "caesar-mrcnn"

    def __call__(self, *args: str | os.PathLike, cwd: str | os.PathLike | None = None,
                 timeout: float = 600, env: dict[str, str] | None = None
                 ) -> subprocess.CompletedProcess:
        """Run ``caesar-mrcnn ARGS``; stdout and stderr captured as text."""
        assert self.path.is_file(), f"{self.path} is missing; install the package (make setup)"
        return subprocess.run([str(self.path), *map(str, args)], capture_output=True,
                              text=True, cwd=cwd, timeout=timeout, env=env)

    @staticmethod
    def error_line(proc: subprocess.CompletedProcess, *, only: bool = True) -> str:
        """The one error line of a failed run, checked: non-zero exit, no traceback, one
        ``caesar-mrcnn: error:`` line, last on stderr, and (``only``) nothing else there."""
        err = proc.stderr
        assert proc.returncode != 0, (proc.returncode, err)
        assert "Traceback" not in err, err
        lines = [line for line in err.splitlines() if line.strip()]
        assert lines and lines[-1].startswith("caesar-mrcnn: error: "), err
        assert sum("caesar-mrcnn: error:" in line for line in lines) == 1, err
        if only:
            assert len(lines) == 1, err
        return lines[-1]


@pytest.fixture(scope="session")
def cli() -> Cli:
    """The installed command, run as a process (see :class:`Cli`)."""
    return Cli()


# --- FITS files with a given kind of trouble ---------------------------------------------------


def _radio_header(naxis: int = 2, centre: float = 32.0) -> fits.Header:
    """A SIN-projected header with 1.5" pixels and a 6" beam; FREQ and STOKES axes when
    ``naxis`` is 3 or 4."""
    w = WCS(naxis=naxis)
    w.wcs.ctype = ["RA---SIN", "DEC--SIN", "FREQ", "STOKES"][:naxis]
    w.wcs.crval = [83.6, 22.0, 1.4e9, 1.0][:naxis]
    w.wcs.crpix = [centre, centre, 1.0, 1.0][:naxis]
    w.wcs.cdelt = [-1.5 / 3600, 1.5 / 3600, 1e6, 1.0][:naxis]
    hdr = w.to_header()
    hdr["BMAJ"], hdr["BMIN"], hdr["BPA"] = 6 / 3600, 6 / 3600, 0.0
    hdr["BUNIT"] = "JY/BEAM"
    return hdr


def write_trouble_fits(kind: str, folder: Path, size: int = 64) -> Path:
    """``folder/KIND.fits``: a good ``size``² noise image (``good``) or one kind of trouble —
    ``text``, ``truncated``, ``table``, ``header_only``, ``all_nan``, ``cube3d``, ``cube4d``,
    ``empty``, ``no_wcs_no_beam``; ``missing`` names a file that is not written."""
    path = Path(folder) / f"{kind}.fits"
    noise = np.random.default_rng(0).normal(0, 1e-4, (size, size)).astype(np.float32)
    header = _radio_header(centre=size / 2)
    if kind == "good":
        fits.PrimaryHDU(noise, header).writeto(path)
    elif kind == "text":
        path.write_text("SIMPLE? no, a note\n")
    elif kind == "truncated":
        big = np.random.default_rng(0).normal(0, 1e-4, (64, 64)).astype(np.float32)
        fits.PrimaryHDU(big, _radio_header()).writeto(path)
        path.write_bytes(path.read_bytes()[:-7000])
    elif kind == "table":
        col = fits.Column(name="x", format="E", array=np.zeros(3))
        fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns([col])]).writeto(path)
    elif kind == "header_only":
        fits.PrimaryHDU(header=header).writeto(path)
    elif kind == "all_nan":
        fits.PrimaryHDU(np.full((size, size), np.nan, np.float32), header).writeto(path)
    elif kind == "cube3d":
        fits.PrimaryHDU(np.stack([noise, noise]), _radio_header(3, size / 2)).writeto(path)
    elif kind == "cube4d":
        fits.PrimaryHDU(np.stack([np.stack([noise, noise])] * 2),
                        _radio_header(4, size / 2)).writeto(path)
    elif kind == "empty":
        fits.PrimaryHDU(np.zeros((0, 8), np.float32), header).writeto(path)
    elif kind == "no_wcs_no_beam":
        fits.PrimaryHDU(noise).writeto(path)
    elif kind != "missing":
        raise AssertionError(kind)
    return path


@pytest.fixture(scope="session")
def trouble_fits():
    """Writer of FITS files with a given kind of trouble (see :func:`write_trouble_fits`)."""
    return write_trouble_fits
