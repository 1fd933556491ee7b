"""The component table of an ``infer`` run: linked to its entries after the ``min_snr`` cut,
and written with the catalogue (FITS HDU ``COMPONENTS``, sibling file, JSON)."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from caesar_mrcnn.detection.detector import TruthPredictor
from caesar_mrcnn.detection.infer import InferConfig, _measure, infer_image
from caesar_mrcnn.io.catalog import components_path, read_catalog, read_components
from caesar_mrcnn.measure.schema import COMPONENT_COLUMNS

TILE, OVERLAP = 64, 16


@pytest.fixture(scope="module")
def field(tmp_path_factory):
    """A simulated 192 x 160 field: compact sources over a range of SNR, extended ones and a
    multi-island one."""
    from caesar_mrcnn.config import load_config
    from caesar_mrcnn.sim.config import SimConfig
    from caesar_mrcnn.sim.field import simulate_field
    from caesar_mrcnn.sim.writer import write_field_fits

    cfg = load_config(SimConfig, None, ["field.nx=192", "field.ny=160", "compact.n=14",
                                        "extended.n=2", "extended.n_multisland=1",
                                        "spurious.n=1"])
    sim = simulate_field(cfg, np.random.default_rng(21))
    path = tmp_path_factory.mktemp("field") / "field.fits"
    write_field_fits(sim, path)
    return sim, path


def _check_links(table, comps):
    """Every component names its entry and points at its row; every entry counts its rows."""
    assert comps.colnames == [name for name, _, _, _ in COMPONENT_COLUMNS]
    index = np.asarray(comps["source_index"], dtype=np.int64)
    assert ((index >= 0) & (index < len(table))).all()
    assert list(comps["source"]) == [str(table["name"][i]) for i in index]
    counts = np.bincount(index, minlength=len(table))
    np.testing.assert_array_equal(table["n_components"], counts)
    assert (counts >= 1).all()
    # rows of an entry together, numbered 1..n
    for i in range(len(table)):
        assert list(comps["component"][index == i]) == list(range(1, counts[i] + 1))
    assert np.all(np.diff(index) >= 0)


def _measured(sim, path, min_snr):
    """The entries of the simulated field's true objects after the cut at ``min_snr``."""
    from caesar_mrcnn.io.fits import open_image
    from caesar_mrcnn.measure.background import background_grid

    cfg = InferConfig(bkg_box=32, min_snr=min_snr)
    objects = [dataclasses.replace(a, attrs=dict(a.attrs)) for a in sim.annotations]
    with open_image(path) as image:
        background = background_grid(image, image.shape, box=cfg.bkg_box)
        _, table, components = _measure(objects, image, image.shape, cfg, {}, background)
    return table, components


def test_min_snr_cut_keeps_the_components_of_the_kept_entries(field):
    sim, path = field
    every, every_comps = _measured(sim, path, 0.0)
    cut, cut_comps = _measured(sim, path, 8.0)
    _check_links(every, every_comps)
    _check_links(cut, cut_comps)
    assert 0 < len(cut) < len(every)
    assert set(every_comps["kind"]) == {"gaussian", "island"}
    # the dropped entries took their components with them; the kept ones kept theirs, with
    # source_index now their rows in the cut table
    kept = np.asarray(every["snr_pix"]) >= 8.0
    assert list(cut["name"]) == list(every["name"][kept])
    mine = kept[np.asarray(every_comps["source_index"])]
    assert 0 < mine.sum() == len(cut_comps) < len(every_comps)
    for name in ("source", "component", "kind"):
        assert list(every_comps[name][mine]) == list(cut_comps[name])
    np.testing.assert_allclose(cut_comps["int_flux"], every_comps["int_flux"][mine],
                               rtol=1e-12, equal_nan=True)
    np.testing.assert_array_equal(cut["n_components"], every["n_components"][kept])
    assert cut_comps.meta["MINSNR"] == 8.0 and cut_comps.meta["NCOMPS"] == len(cut_comps)


def test_infer_writes_the_components_of_the_kept_entries(field, tmp_path):
    sim, path = field
    cfg = InferConfig(tile=TILE, overlap=OVERLAP, bkg_box=32, min_snr=8.0, dedup_overlap=1.0)
    cut = infer_image(path, predictor=TruthPredictor(sim.annotations, TILE), config=cfg,
                      catalog=tmp_path / "cut.fits", json_path=tmp_path / "cut.json")
    assert len(cut.table) > 0 and (np.asarray(cut.table["snr_pix"]) >= 8.0).all()
    _check_links(cut.table, cut.components)
    # the files hold the same tables
    sources, comps = read_catalog(tmp_path / "cut.fits"), read_components(tmp_path / "cut.fits")
    assert list(sources["name"]) == list(cut.table["name"])
    assert list(comps["source_index"]) == list(cut.components["source_index"])
    np.testing.assert_array_equal(sources["n_components"], cut.table["n_components"])
    _check_links(sources, comps)
    doc = json.loads((tmp_path / "cut.json").read_text())
    for i, src in enumerate(doc["sources"]):
        assert [c["source_index"] for c in src["components"]] == [i] * src["n_components"]
        assert {c["source"] for c in src["components"]} == {src["name"]}


def test_every_entry_cut_leaves_an_empty_component_table(field, tmp_path):
    sim, path = field
    cfg = InferConfig(tile=TILE, overlap=OVERLAP, bkg_box=32, min_snr=1e6, skip_empty=False,
                      fit_compact=False)
    result = infer_image(path, predictor=TruthPredictor(sim.annotations, TILE), config=cfg,
                         catalog=tmp_path / "e.csv")
    assert len(result.table) == 0 and len(result.components) == 0
    assert len(read_catalog(tmp_path / "e.csv")) == 0
    assert len(read_components(tmp_path / "e.csv")) == 0


def test_shipped_detector_writes_linked_components(field, tmp_path):
    pytest.importorskip("tensorflow")
    from caesar_mrcnn.detection.detector import load_detector

    _, path = field
    catalog = tmp_path / "found.ecsv"
    # mask islands only (the Gaussian fits take most of the time; the tests above fit)
    cfg = InferConfig(min_snr=6.0, fit_compact=False)
    result = infer_image(path, detector=load_detector(), config=cfg, catalog=catalog,
                         json_path=tmp_path / "found.json")
    assert len(result.table) > 0
    assert (np.asarray(result.table["snr_pix"]) >= 6.0).all()
    _check_links(result.table, result.components)
    assert components_path(catalog).is_file()
    _check_links(read_catalog(catalog), read_components(catalog))
    doc = json.loads((tmp_path / "found.json").read_text())
    assert sum(len(s["components"]) for s in doc["sources"]) == len(result.components)
