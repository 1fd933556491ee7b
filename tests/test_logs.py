"""What commands print on stderr: one line per distinct problem, --quiet, warnings once."""

from __future__ import annotations

import io
import logging
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from astropy.io.fits.verify import VerifyWarning

from caesar_mrcnn.logs import HeldWarnings, configure_logging

REAL = Path(os.environ.get("CAESAR_MRCNN_REAL")
            or Path(__file__).resolve().parents[1] / ".." / "shared" / "real")
FIRST = REAL / "extended" / "mirabest_first" / "100_122.412+034.927_0.0825_0124.74.fits"


@pytest.fixture
def restore_logging():
    root = logging.getLogger()
    handlers, level, show = list(root.handlers), root.level, warnings.showwarning
    yield
    for h in list(root.handlers):
        if h not in handlers:
            root.removeHandler(h)
    root.setLevel(level)
    warnings.showwarning = show


def test_each_problem_once_and_warnings_as_single_lines(restore_logging):
    stream = io.StringIO()
    configure_logging(stream=stream)
    log = logging.getLogger("caesar_mrcnn.test")
    for _ in range(3):
        log.warning("%s: no beam", "a.fits")
    log.warning("%s: no beam", "b.fits")
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        for _ in range(2):
            warnings.warn("Unprintable\nstring", VerifyWarning, stacklevel=1)
    lines = stream.getvalue().splitlines()
    assert lines == ["WARNING: a.fits: no beam", "WARNING: b.fits: no beam",
                     "WARNING: VerifyWarning: Unprintable string"]


def test_held_warnings_print_on_success_and_vanish_on_failure(restore_logging):
    stream = io.StringIO()
    configure_logging(stream=stream)
    log = logging.getLogger("caesar_mrcnn.test")
    with HeldWarnings():
        log.warning("no WCS")
        assert stream.getvalue() == ""  # held while the run is not known to go on
    assert stream.getvalue().splitlines() == ["WARNING: no WCS"]
    with pytest.raises(ValueError):
        with HeldWarnings():
            log.warning("no beam")
            log.error("an error is never held")
            raise ValueError("the run cannot go on")
    assert stream.getvalue().splitlines() == ["WARNING: no WCS", "ERROR: an error is never held"]
    log.warning("no beam")  # dropped while held, so not yet counted as printed
    assert stream.getvalue().splitlines()[-1] == "WARNING: no beam"


@pytest.mark.parametrize("verbose, quiet, progress, shown", [
    (False, False, True, ["INFO", "WARNING", "ERROR"]),
    (False, False, False, ["WARNING", "ERROR"]),
    (False, True, True, ["ERROR"]),
    (True, False, False, ["DEBUG", "INFO", "WARNING", "ERROR"]),
])
def test_verbosity(restore_logging, verbose, quiet, progress, shown):
    stream = io.StringIO()
    configure_logging(verbose=verbose, quiet=quiet, progress=progress, stream=stream)
    log = logging.getLogger("caesar_mrcnn.test")
    for level in ("debug", "info", "warning", "error"):
        getattr(log, level)("%s message", level)
    assert [line.split(":")[0] for line in stream.getvalue().splitlines()] == shown


def _inspect(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "caesar_mrcnn.cli", *args, "inspect",
                           str(FIRST)], capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(not FIRST.is_file(), reason="real images folder not present")
def test_a_real_skyview_cutout_says_each_problem_once():
    proc = _inspect()
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) <= 3, proc.stderr
    assert sum("non-standard header cards ignored" in line for line in lines) == 1
    assert sum("beam from the FIRST survey default" in line for line in lines) == 1
    assert "beam from:     FIRST survey default" in proc.stdout
    quiet = _inspect("--quiet")
    assert quiet.returncode == 0 and quiet.stderr == "" and quiet.stdout == proc.stdout
