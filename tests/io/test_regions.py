"""DS9 region files: contours, regions-library round trip, and SAOImage DS9 itself."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
import uuid

import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.wcs import WCS
from regions import PolygonPixelRegion, PolygonSkyRegion

from caesar_mrcnn.classes import CLASS_COLOURS
from caesar_mrcnn.data.dataset import Annotation
from caesar_mrcnn.errors import OutputError
from caesar_mrcnn.io.fits import write_image
from caesar_mrcnn.io.regions import mask_contours, read_regions, write_regions


def make_wcs(radesys="ICRS"):
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---SIN", "DEC--SIN"]
    w.wcs.crval = [150.0, -30.0]
    w.wcs.crpix = [50, 40]
    w.wcs.cdelt = [-2 / 3600, 2 / 3600]
    w.wcs.radesys = radesys
    if radesys == "FK5":
        w.wcs.equinox = 2000.0
    return w


def objects():
    ring = np.ones((12, 12), bool)
    ring[4:8, 4:8] = False          # a hole: not written as a polygon
    pair = np.zeros((6, 14), bool)
    pair[1:5, 1:5] = True
    pair[1:5, 9:13] = True          # two islands: two polygons
    return [Annotation("compact", (10, 10, 22, 22), ring, {"name": "J1"}),
            Annotation("extended-multisland", (40, 50, 46, 64), pair, {"name": "J2"}),
            Annotation("spurious", (60, 5, 61, 6), np.ones((1, 1), bool), {"name": "J3"})]


def test_contours_outline_the_mask():
    contours = mask_contours(objects()[0])
    assert len(contours) == 1
    poly = contours[0]
    # outer boundary of pixels 10..21 lies half a pixel outside the pixel centres
    assert poly[:, 0].min() == pytest.approx(9.5) and poly[:, 0].max() == pytest.approx(21.5)
    assert poly[:, 1].min() == pytest.approx(9.5) and poly[:, 1].max() == pytest.approx(21.5)
    assert len(mask_contours(objects()[1])) == 2
    assert len(mask_contours(objects()[2])) == 1


@pytest.mark.parametrize("radesys,frame", [("ICRS", "icrs"), ("FK5", "fk5")])
def test_round_trip_regions_library(tmp_path, radesys, frame):
    wcs = make_wcs(radesys)
    out = tmp_path / "out.reg"
    n = write_regions(out, objects(), ["J1", "J2", "J3"], wcs)
    assert n == 4
    regs = read_regions(out)
    assert len(regs) == 4
    assert all(isinstance(r, PolygonSkyRegion) for r in regs)
    assert [r.meta["text"] for r in regs] == ["J1", "J2", "J2", "J3"]
    assert [r.meta["tag"] for r in regs] == [["compact"], ["extended-multisland"],
                                              ["extended-multisland"], ["spurious"]]
    assert regs[0].visual["edgecolor"] == CLASS_COLOURS["compact"]
    assert regs[0].vertices.frame.name == frame
    # vertices map back onto the contour in pixels
    x, y = wcs.world_to_pixel(regs[0].vertices)
    assert x.min() == pytest.approx(9.5, abs=1e-4) and y.max() == pytest.approx(21.5, abs=1e-4)


def test_pixel_regions_without_wcs(tmp_path, caplog):
    out = tmp_path / "pix.reg"
    with caplog.at_level("WARNING"):
        write_regions(out, objects()[:1])
    assert "pixel coordinates" in caplog.text
    regs = read_regions(out)
    assert len(regs) == 1 and isinstance(regs[0], PolygonPixelRegion)
    assert regs[0].vertices.x.min() == pytest.approx(9.5)
    lines = out.read_text().splitlines()
    assert "image" in lines
    # DS9 image coordinates are 1-based
    values = [float(v) for v in lines[-1][len("polygon("):lines[-1].index(")")].split(",")]
    assert min(values[0::2]) == pytest.approx(10.5) and max(values[1::2]) == pytest.approx(22.5)


def test_empty_region_file_is_valid(tmp_path):
    out = tmp_path / "empty.reg"
    assert write_regions(out, [], [], make_wcs()) == 0
    assert len(read_regions(out)) == 0
    assert out.read_text().startswith("# Region file format: DS9")


def test_missing_folder_is_an_output_error(tmp_path):
    with pytest.raises(OutputError, match="does not exist"):
        write_regions(tmp_path / "nope" / "x.reg", objects(), None, make_wcs())
    assert list(tmp_path.iterdir()) == []


# --- SAOImage DS9 ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ds9(tmp_path_factory):
    """A headless DS9 reachable through XPA under a unique title."""
    if not (shutil.which("ds9") and shutil.which("xvfb-run") and shutil.which("xpaset")):
        pytest.skip("SAOImage DS9, xvfb-run or XPA tools not installed")
    title = f"cmreg{uuid.uuid4().hex[:8]}"
    env = dict(os.environ, XPA_METHOD="local")
    log = open(tmp_path_factory.mktemp("ds9") / "ds9.log", "w")
    proc = subprocess.Popen(["xvfb-run", "-a", "ds9", "-xpa", "local", "-title", title],
                            stdout=log, stderr=subprocess.STDOUT, env=env,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            got = subprocess.run(["xpaaccess", "-n", title], env=env, capture_output=True,
                                 text=True)
            if got.stdout.strip() not in ("", "0"):
                break
            time.sleep(0.3)
        else:
            pytest.fail("DS9 did not answer on XPA within 60 s")

        def xpa(*args, get=False):
            cmd = ["xpaget" if get else "xpaset", *([] if get else ["-p"]), title, *args]
            return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)

        yield xpa
    finally:
        subprocess.run(["xpaset", "-p", title, "exit"], env=env, capture_output=True,
                       timeout=30)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=15)
        log.close()


@pytest.mark.clients
def test_ds9_loads_regions_on_the_image(ds9, tmp_path):
    wcs = make_wcs("FK5")
    image = tmp_path / "img.fits"
    write_image(image, np.zeros((80, 100), np.float32), wcs.to_header())
    out = tmp_path / "out.reg"
    write_regions(out, objects(), ["J1", "J2", "J3"], wcs)
    assert ds9("fits", str(image)).returncode == 0
    assert ds9("regions", "delete", "all").returncode == 0
    loaded = ds9("regions", "load", str(out))
    assert loaded.returncode == 0, loaded.stderr
    back = ds9("regions", "-system", "wcs", "-sky", "fk5", get=True)
    assert back.returncode == 0
    lines = [ln for ln in back.stdout.splitlines() if ln.startswith("polygon")]
    assert len(lines) == 4
    assert "text={J2}" in lines[1] and "tag={extended-multisland}" in lines[1]
    # DS9's first vertex is ours, to its 7-decimal precision
    first = [float(v) for v in lines[0][len("polygon("):lines[0].index(")")].split(",")]
    ours = read_regions(out)[0].vertices
    theirs = SkyCoord(first[0::2], first[1::2], unit="deg", frame="fk5")
    assert ours.separation(theirs).arcsec.max() < 1e-3


@pytest.mark.clients
def test_ds9_rejects_malformed_file(ds9, tmp_path):
    bad = tmp_path / "bad.reg"
    bad.write_text("# Region file format: DS9\nfk5\npolygon(150.0,-30.0,garbage\n")
    assert ds9("regions", "delete", "all").returncode == 0
    got = ds9("regions", "load", str(bad))
    assert got.returncode != 0
    assert "Unable to load region file" in got.stderr + got.stdout
