"""Simulated datasets on disk: FITS, COCO JSON (pycocotools), caesar JSON, ground-truth table."""

import json

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table
from pycocotools.coco import COCO

from caesar_mrcnn.config import load_config
from caesar_mrcnn.errors import ConfigError, OutputError
from caesar_mrcnn.io.caesar_json import read_caesar_list
from caesar_mrcnn.io.coco import read_coco
from caesar_mrcnn.sim.config import SimConfig
from caesar_mrcnn.sim.field import simulate_field
from caesar_mrcnn.sim.writer import image_rngs, simulate_dataset

# pycocotools 2.0 warns under NumPy 2 when decoding masks; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:pycocotools.*")

OPTS = ["field.nx=96", "field.ny=96", "compact.n=5", "extended.n=1", "extended.n_multisland=1",
        "spurious.n=1", "spurious.extent_min_beam=2", "spurious.extent_max_beam=3",
        "extended.size_max_beam=5", "n_images=2", "name_prefix=t"]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    cfg = load_config(SimConfig, None, OPTS)
    out = tmp_path_factory.mktemp("ds") / "sim"
    summary = simulate_dataset(cfg, out, seed=21)
    return cfg, out, summary


def test_layout_and_summary(dataset):
    _, out, summary = dataset
    assert sorted(p.name for p in (out / "images").iterdir()) == ["t_00000.fits", "t_00001.fits"]
    assert summary.n_images == 2 and summary.coco_path == out / "coco.json"
    assert summary.class_counts["compact"] == 10
    assert "2 images" in summary.line() and str(out) in summary.line()
    saved = load_config(SimConfig, out / "config.yaml")
    assert saved.seed == 21 and saved.n_images == 2


def test_images_equal_simulation_with_same_seed(dataset):
    cfg, out, _ = dataset
    again = simulate_field(cfg, image_rngs(21, 2)[1], image_id="t_00001")
    np.testing.assert_array_equal(fits.getdata(out / "images" / "t_00001.fits"), again.image)


def test_coco_loads_in_pycocotools_with_matching_masks(dataset):
    _, out, _ = dataset
    coco = COCO(str(out / "coco.json"))
    samples = read_coco(out / "coco.json")
    assert len(coco.getImgIds()) == 2
    n_coco = 0
    for sample in samples:
        img = next(i for i in coco.dataset["images"] if sample.image_path.name in i["file_name"])
        anns = coco.loadAnns(coco.getAnnIds(imgIds=[img["id"]]))
        assert len(anns) == len(sample.annotations)
        # the sample read back from COCO and the FITS image agree on shape
        assert fits.getdata(sample.image_path).shape == tuple(sample.shape)
        for ann, ref in zip(sorted(anns, key=lambda a: a["name"]),
                            sorted(sample.annotations, key=lambda a: a.attrs["name"])):
            m = coco.annToMask(ann).astype(bool)
            assert m.sum() == ann["area"] == ref.area
            np.testing.assert_array_equal(m, ref.full_mask(sample.shape))
            assert coco.loadCats(ann["category_id"])[0]["name"] == ref.category
            n_coco += 1
    assert n_coco == sum(len(s.annotations) for s in samples) > 0


def test_caesar_list_has_the_same_objects(dataset):
    _, out, _ = dataset
    coco_samples = {s.image_path.name: s for s in read_coco(out / "coco.json")}
    caesar = read_caesar_list(out / "caesar" / "datalist.txt")
    assert len(caesar) == 2
    for s in caesar:
        ref = coco_samples[s.image_path.name]
        assert [a.attrs["name"] for a in s.annotations] == [a.attrs["name"]
                                                            for a in ref.annotations]
        for a, b in zip(s.annotations, ref.annotations):
            assert a.category == b.category
            np.testing.assert_array_equal(a.full_mask(s.shape), b.full_mask(ref.shape))
    record = json.loads((out / "caesar" / "t_00000.json").read_text())
    assert record["rms"] == pytest.approx(30e-6) and record["bmaj"] == 12.0


def test_sources_table_has_units_and_every_object(dataset):
    _, out, summary = dataset
    for name in ("sources.ecsv", "sources.fits"):
        t = Table.read(out / name)
        assert len(t) == sum(summary.class_counts.values())
        assert t["ra"].unit == "deg" and t["flux"].unit == "Jy" and t["major"].unit == "arcsec"
        assert str(t["peak"].unit) == "beam-1 Jy" or t["peak"].unit == "Jy / beam"
        assert set(t["class"]) <= {"compact", "extended", "extended-multisland", "spurious"}
        np.testing.assert_allclose(t["snr"], t["peak"] / 30e-6)


def test_refuses_non_empty_folder_and_leaves_no_partial_output(tmp_path, monkeypatch):
    cfg = load_config(SimConfig, None, OPTS)
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("x")
    with pytest.raises(OutputError, match="not empty"):
        simulate_dataset(cfg, busy)
    assert [p.name for p in busy.iterdir()] == ["keep.txt"]
    # a failure late in the run (the disk fills while the table is written) removes
    # everything already written: images, COCO and caesar JSON
    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Table, "write", disk_full)
    with pytest.raises(OutputError, match="No space"):
        simulate_dataset(cfg, tmp_path / "new")
    assert not (tmp_path / "new").exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(OutputError, match="No space"):
        simulate_dataset(cfg, empty)
    assert empty.is_dir() and not any(empty.iterdir())


def test_name_prefix_must_be_a_file_name():
    with pytest.raises(ConfigError, match="name_prefix"):
        load_config(SimConfig, None, ["name_prefix=a/b"])
