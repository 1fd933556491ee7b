"""``caesar-mrcnn inspect`` on good and bad FITS files, through the installed command run as a
process: one-line errors, non-zero exit, nothing on stdout."""

from __future__ import annotations

import os

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS


def _header(naxis: int = 2) -> fits.Header:
    w = WCS(naxis=naxis)
    w.wcs.ctype = ["RA---SIN", "DEC--SIN", "FREQ", "STOKES"][:naxis]
    w.wcs.crval = [83.6, 22.0, 1.4e9, 1.0][:naxis]
    w.wcs.crpix = [8.0, 8.0, 1.0, 1.0][:naxis]
    w.wcs.cdelt = [-1.5 / 3600, 1.5 / 3600, 1e6, 1.0][:naxis]
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
    elif kind == "cube4d":
        fits.PrimaryHDU(np.stack([np.stack([_noise(), _noise()])] * 2), _header(4)).writeto(path)
    elif kind == "no_wcs_no_beam":
        fits.PrimaryHDU(_noise()).writeto(path)
    elif kind == "empty":
        fits.PrimaryHDU(np.zeros((0, 8), np.float32), _header()).writeto(path)
    elif kind != "missing":
        raise AssertionError(kind)
    return path


@pytest.mark.parametrize("kind", ["text", "truncated", "table", "header_only", "all_nan", "cube4d",
                                  "empty", "missing"])
def test_inspect_bad_input_one_line_error(tmp_path, cli, kind):
    path = _write_bad(kind, tmp_path)
    proc = cli("inspect", path)
    assert proc.stdout == ""
    assert str(path) in cli.error_line(proc, only=kind not in ("all_nan", "cube4d"))


def test_inspect_good_image_and_cube_plane(tmp_path, cli):
    path = tmp_path / "good.fits"
    fits.PrimaryHDU(_noise(), _header()).writeto(path)
    proc = cli("inspect", path)
    assert proc.returncode == 0 and proc.stderr == ""
    assert "16 x 16 pixels" in proc.stdout and "1.5 x 1.5 arcsec" in proc.stdout
    assert "JY/BEAM" in proc.stdout
    cube = _write_bad("cube", tmp_path)
    proc = cli("inspect", cube, "--plane", "1", "--hdu", "0")
    assert proc.returncode == 0 and "plane 1" in proc.stdout
    # the same options from a file and from --set
    options = tmp_path / "inspect.yaml"
    options.write_text("plane: 1\nhdu: 0\n")
    assert "plane 1" in cli("inspect", cube, "--config", options).stdout
    assert "plane 1" in cli("inspect", cube, "--set", "plane=1").stdout


def test_inspect_without_wcs_or_beam_says_so_and_takes_beam(tmp_path, cli):
    path = _write_bad("no_wcs_no_beam", tmp_path)
    proc = cli("inspect", path)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr
    assert "wcs:           none" in proc.stdout and "give --beam" in proc.stdout
    assert "no restoring beam" in proc.stderr and "no celestial WCS" in proc.stderr
    proc = cli("inspect", path, "--beam", "5.4")
    assert proc.returncode == 0 and "5.4 x 5.4 arcsec" in proc.stdout
    assert "--beam" in cli.error_line(cli("inspect", path, "--beam", "0,x"), only=False)


def test_a_tensorflow_command_fails_in_one_line_too(tmp_path, cli):
    """TensorFlow's native start-up notices must not bury the error (nor need an env var):
    an infer whose weights are corrupt fails after TensorFlow has started."""
    path = tmp_path / "good.fits"
    fits.PrimaryHDU(_noise(), _header()).writeto(path)
    weights = tmp_path / "detector.npz"
    weights.write_bytes(b"PK\x03\x04 truncated")
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    proc = cli("infer", path, "--regions", tmp_path / "out.reg", "--weights", weights, env=env)
    assert str(weights) in cli.error_line(proc)
    assert not (tmp_path / "out.reg").exists()
