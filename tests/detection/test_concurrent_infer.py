"""Two infer processes writing the same output paths leave one complete set of files.

Each process runs :func:`infer_image` on a different image (different sources) with a perfect
detector and writes a region file, a catalogue and a JSON file to the same three paths. The
workers widen the race (they start writing together and pause between files, in opposite
orders), so that without one writer at a time the files left would come from both runs.
Afterwards the three files must all come from one run: the same source names everywhere, no
temporary file left.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table
from astropy.wcs import WCS

ROOT = Path(__file__).resolve().parents[2]

WORKER = r"""
import sys, time
from pathlib import Path
import numpy as np
from scipy import ndimage
import caesar_mrcnn.io.catalog as catalog_io
import caesar_mrcnn.io.regions as regions_io
from caesar_mrcnn.data.dataset import Annotation
from caesar_mrcnn.detection.detector import TruthPredictor
from caesar_mrcnn.detection.infer import InferConfig, infer_image
from caesar_mrcnn.io.fits import read_image

image, out, me, other = (Path(a) for a in sys.argv[1:5])
pause_regions, pause_catalog = float(sys.argv[5]), float(sys.argv[6])

# Widen the race: both runs start writing together (or after 4 s, when the other run holds
# the outputs), then pause after the region file or after the catalogue, so that without
# one writer at a time the final files would come from different runs.
write_regions, write_catalog = regions_io.write_regions, catalog_io.write_catalog

def slow_regions(*args, **kwargs):
    me.touch()
    t0 = time.monotonic()
    while not other.exists() and time.monotonic() - t0 < 4.0:
        time.sleep(0.005)
    write_regions(*args, **kwargs)
    time.sleep(pause_regions)

def slow_catalog(*args, **kwargs):
    write_catalog(*args, **kwargs)
    time.sleep(pause_catalog)

regions_io.write_regions, catalog_io.write_catalog = slow_regions, slow_catalog
data = read_image(image).data
labels, n = ndimage.label(data > 5e-3)
truth = [Annotation.from_full_mask("compact", labels == k) for k in range(1, n + 1)]
infer_image(image, predictor=TruthPredictor(truth, 64),
            config=InferConfig(tile=64, overlap=16, fit_compact=False),
            regions=out / "cat.reg", catalog=out / "cat.fits", json_path=out / "cat.json")
"""


def _field(path: Path, centres, seed: int) -> None:
    """A 128 x 128 noise image with circular Gaussian sources at ``centres`` (x, y)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:128, :128]
    data = rng.normal(0, 1e-4, (128, 128))
    for cx, cy in centres:
        data += 0.05 * np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * 2.0 ** 2))
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---SIN", "DEC--SIN"]
    w.wcs.crval = [150.0, 2.0]
    w.wcs.crpix = [64, 64]
    w.wcs.cdelt = [-2 / 3600, 2 / 3600]
    hdr = w.to_header()
    hdr["BMAJ"] = hdr["BMIN"] = 6 / 3600
    hdr["BUNIT"] = "JY/BEAM"
    fits.PrimaryHDU(data.astype(np.float32), hdr).writeto(path)


def _names_of_outputs(out: Path) -> dict[str, set[str]]:
    regions = (out / "cat.reg").read_text()
    reg_names = {line.split("text={", 1)[1].split("}", 1)[0]
                 for line in regions.splitlines() if "text={" in line}
    cat_names = {str(n) for n in Table.read(out / "cat.fits")["name"]}
    doc = json.loads((out / "cat.json").read_text())
    items = doc if isinstance(doc, list) else next(v for v in doc.values() if isinstance(v, list))
    json_names = {str(item.get("name")) for item in items if isinstance(item, dict)}
    return {"regions": reg_names, "catalog": cat_names, "json": json_names}


@pytest.mark.timeout(300)
def test_two_runs_on_the_same_outputs_leave_one_complete_set(tmp_path):
    a, b = tmp_path / "a.fits", tmp_path / "b.fits"
    _field(a, [(20, 30), (90, 100), (60, 20)], seed=1)
    _field(b, [(40, 40), (100, 30), (30, 100), (80, 70), (110, 110)], seed=2)
    out = tmp_path / "out"
    out.mkdir()
    ready = [tmp_path / "a.ready", tmp_path / "b.ready"]
    # run a pauses after its region file, run b after its catalogue
    args = [(a, ready[0], ready[1], "1.0", "0"), (b, ready[1], ready[0], "0", "2.0")]
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, str(img), str(out), str(me),
                               str(other), p_reg, p_cat],
                              cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for img, me, other, p_reg, p_cat in args]
    for p in procs:
        _, err = p.communicate(timeout=280)
        assert p.returncode == 0, err
    assert sorted(p.name for p in out.iterdir()) == ["cat.fits", "cat.json", "cat.reg"]
    names = _names_of_outputs(out)
    assert len(names["catalog"]) in (3, 5)
    assert names["regions"] == names["catalog"], names
    assert names["json"] == names["catalog"], names
