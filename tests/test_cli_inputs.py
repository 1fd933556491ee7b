"""``caesar-mrcnn inspect`` on good and bad FITS files, through the installed command run as a
process: one-line errors, non-zero exit, nothing on stdout."""

from __future__ import annotations

import os

import pytest


@pytest.mark.parametrize("kind", ["text", "truncated", "table", "header_only", "all_nan", "cube4d",
                                  "empty", "missing"])
def test_inspect_bad_input_one_line_error(tmp_path, cli, trouble_fits, kind):
    path = trouble_fits(kind, tmp_path, size=16)
    proc = cli("inspect", path)
    assert proc.stdout == ""
    assert str(path) in cli.error_line(proc, only=kind not in ("all_nan", "cube4d"))


def test_inspect_good_image_and_cube_plane(tmp_path, cli, trouble_fits):
    path = trouble_fits("good", tmp_path, size=16)
    proc = cli("inspect", path)
    assert proc.returncode == 0 and proc.stderr == ""
    assert "16 x 16 pixels" in proc.stdout and "1.5 x 1.5 arcsec" in proc.stdout
    assert "JY/BEAM" in proc.stdout
    cube = trouble_fits("cube3d", tmp_path, size=16)
    proc = cli("inspect", cube, "--plane", "1", "--hdu", "0")
    assert proc.returncode == 0 and "plane 1" in proc.stdout
    # the same options from a file and from --set
    options = tmp_path / "inspect.yaml"
    options.write_text("plane: 1\nhdu: 0\n")
    assert "plane 1" in cli("inspect", cube, "--config", options).stdout
    assert "plane 1" in cli("inspect", cube, "--set", "plane=1").stdout


def test_inspect_without_wcs_or_beam_says_so_and_takes_beam(tmp_path, cli, trouble_fits):
    path = trouble_fits("no_wcs_no_beam", tmp_path, size=16)
    proc = cli("inspect", path)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr
    assert "wcs:           none" in proc.stdout and "give --beam" in proc.stdout
    assert "no restoring beam" in proc.stderr and "no celestial WCS" in proc.stderr
    proc = cli("inspect", path, "--beam", "5.4")
    assert proc.returncode == 0 and "5.4 x 5.4 arcsec" in proc.stdout
    assert "--beam" in cli.error_line(cli("inspect", path, "--beam", "0,x"), only=False)


def test_a_tensorflow_command_fails_in_one_line_too(tmp_path, cli, trouble_fits):
    """TensorFlow's native start-up notices must not bury the error (nor need an env var):
    an infer whose weights are corrupt fails after TensorFlow has started."""
    path = trouble_fits("good", tmp_path, size=16)
    weights = tmp_path / "detector.npz"
    weights.write_bytes(b"PK\x03\x04 truncated")
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    proc = cli("infer", path, "--regions", tmp_path / "out.reg", "--weights", weights, env=env)
    assert str(weights) in cli.error_line(proc)
    assert not (tmp_path / "out.reg").exists()
