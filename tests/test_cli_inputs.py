"""``caesar-mrcnn inspect`` on good and bad FITS files: one-line errors, non-zero exit."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS

from caesar_mrcnn.cli import main


def _header(naxis: int = 2) -> fits.Header:
    w = WCS(naxis=naxis)
    w.wcs.ctype = ["RA---SIN", "DEC--SIN", "FREQ"][:naxis]
    w.wcs.crval = [83.6, 22.0, 1.4e9][:naxis]
    w.wcs.crpix = [8.0, 8.0, 1.0][:naxis]
    w.wcs.cdelt = [-1.5 / 3600, 1.5 / 3600, 1e6][:naxis]
    hdr = w.to_header()
    hdr["BMAJ"], hdr["BMIN"], hdr["BPA"] = 6 / 3600, 6 / 3600, 0.0
    hdr["BUNIT"] = "JY/BEAM"
    return hdr


def _noise(shape=(16, 16)) -> np.ndarray:
    return np.random.default_rng(3).normal(0.0, 1e-4, size=shape).astype(np.float32)


def _write_bad(kind: str, folder):
    path = folder / f"{kind}.fits"
    if kind == "text":
        path.write_text("SIMPLE? no, a note\n")
    elif kind == "truncated":
        fits.PrimaryHDU(_noise((64, 64)), _header()).writeto(path)
        path.write_bytes(path.read_bytes()[:-7000])
    elif kind == "table":
        col = fits.Column(name="x", format="E", array=np.zeros(3))
        fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns([col])]).writeto(path)
    elif kind == "header_only":
        fits.PrimaryHDU(header=_header()).writeto(path)
    elif kind == "all_nan":
        fits.PrimaryHDU(np.full((8, 8), np.nan, np.float32), _header()).writeto(path)
    elif kind == "cube":
        fits.PrimaryHDU(np.stack([_noise(), _noise()]), _header(3)).writeto(path)
    elif kind == "empty":
        fits.PrimaryHDU(np.zeros((0, 8), np.float32), _header()).writeto(path)
    elif kind != "missing":
        raise AssertionError(kind)
    return path


@pytest.mark.parametrize("kind", ["text", "truncated", "table", "header_only", "all_nan", "cube",
                                  "empty", "missing"])
def test_inspect_bad_input_one_line_error(tmp_path, capsys, kind):
    path = _write_bad(kind, tmp_path)
    status = main(["inspect", str(path)])
    out, err = capsys.readouterr()
    assert status != 0
    assert out == ""
    errors = [line for line in err.splitlines() if line.startswith("caesar-mrcnn: error:")]
    assert len(errors) == 1 and str(path) in errors[0]
    assert "Traceback" not in err


def test_inspect_good_image_and_cube_plane(tmp_path, capsys):
    path = tmp_path / "good.fits"
    fits.PrimaryHDU(_noise(), _header()).writeto(path)
    assert main(["inspect", str(path)]) == 0
    out = capsys.readouterr().out
    assert "16 x 16 pixels" in out and "1.5 x 1.5 arcsec" in out and "JY/BEAM" in out
    cube = _write_bad("cube", tmp_path)
    assert main(["inspect", str(cube), "--plane", "1", "--hdu", "0"]) == 0
    assert "plane 1" in capsys.readouterr().out


def test_inspect_as_a_process(tmp_path):
    path = _write_bad("truncated", tmp_path)
    proc = subprocess.run([sys.executable, "-m", "caesar_mrcnn.cli", "inspect", str(path)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert proc.stderr.strip().count("\n") == 0
    assert str(path) in proc.stderr and "truncated" in proc.stderr


def test_a_tensorflow_command_fails_in_one_line_too(tmp_path):
    """TensorFlow's native start-up notices must not bury the error (nor need an env var)."""
    import os

    path = _write_bad("truncated", tmp_path)
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    proc = subprocess.run([sys.executable, "-m", "caesar_mrcnn.cli", "infer", str(path),
                           "--regions", str(tmp_path / "out.reg")],
                          capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode != 0
    assert proc.stderr.strip().count("\n") == 0, proc.stderr
    assert str(path) in proc.stderr and "truncated" in proc.stderr
    assert not (tmp_path / "out.reg").exists()
