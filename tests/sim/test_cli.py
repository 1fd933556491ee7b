"""``caesar-mrcnn simulate`` and ``make-cutouts`` end to end."""

from pathlib import Path

import pytest
from astropy.table import Table
from pycocotools.coco import COCO

from caesar_mrcnn.cli import main

# pycocotools 2.0 warns under NumPy 2 when decoding masks; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:pycocotools.*")

ROOT = Path(__file__).resolve().parents[2]


def test_simulate_tiny_end_to_end(tmp_path, capsys):
    out = tmp_path / "tiny"
    rc = main(["simulate", "--config", str(ROOT / "configs/sim/tiny.yaml"), "--out", str(out),
               "--n-images", "2", "--seed", "5", "--set", "compact.n=4", "--no-progress"])
    assert rc == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.startswith("2 images") and "compact=8" in line and str(out) in line
    assert len(list((out / "images").glob("*.fits"))) == 2
    assert len(COCO(str(out / "coco.json")).getImgIds()) == 2
    assert (out / "caesar" / "datalist.txt").read_text().count(".json") == 2
    assert (Table.read(out / "sources.ecsv")["class"] == "compact").sum() == 8


def test_simulate_reports_bad_options_in_one_line(tmp_path, capsys):
    rc = main(["simulate", "--config", str(ROOT / "configs/sim/tiny.yaml"), "--out",
               str(tmp_path / "x"), "--set", "noise.rms_ujy=-1", "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert rc != 0 and "noise.rms_ujy" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("morphology", [False, True])
def test_make_cutouts_cli(tmp_path, capsys, morphology):
    out = tmp_path / "cut"
    args = ["make-cutouts", "--sim-config", str(ROOT / "configs/sim/tiny.yaml"), "--out",
            str(out), "--n", "6", "--size", "48", "--no-progress"]
    rc = main(args + (["--morphology"] if morphology else ["--centred"]))
    assert rc == 0
    assert "6 cutouts of 48x48" in capsys.readouterr().out
    assert len(list(out.glob("*.fits"))) == 6
    assert (out / ("labels.csv" if morphology else "index.csv")).is_file()
