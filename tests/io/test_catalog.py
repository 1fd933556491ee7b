"""Catalogue files in four formats, with their component tables, read back by astropy and by
STILTS."""

from __future__ import annotations

import json
import shutil
import subprocess
import warnings

import numpy as np
import pytest
from astropy import units as u
from astropy.io import fits
from astropy.table import Table
from astropy.utils.exceptions import AstropyUserWarning

from caesar_mrcnn.data.dataset import Annotation
from caesar_mrcnn.errors import OutputError
from caesar_mrcnn.io.catalog import (
    catalog_format,
    components_path,
    read_catalog,
    read_components,
    write_catalog,
    write_catalog_json,
)
from caesar_mrcnn.measure.schema import COMPONENT_COLUMNS, component_table, empty_source_table
from caesar_mrcnn.measure.sources import measure_catalogs

RUN_META = {"IMAGE": "field.fits", "WEIGHTS": "det.keras", "BACKBONE": "resnet18-simclr",
            "SCORETHR": 0.5, "SOFTWARE": "caesar-mrcnn", "VERSION": "0.1.0"}


def source_table():
    table, _, objs = catalogs()
    return table, objs


def catalogs():
    """Source table, component table and objects of a compact source fitted with two
    Gaussians and an extended source of two islands (one component row each)."""
    from astropy.wcs import WCS

    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---SIN", "DEC--SIN"]
    w.wcs.crval = [150.0, -30.0]
    w.wcs.crpix = [32, 32]
    w.wcs.cdelt = [-2 / 3600, 2 / 3600]
    w.wcs.radesys = "ICRS"
    yy, xx = np.mgrid[:64, :64]
    img = np.exp(-((xx - 20.0) ** 2 + (yy - 30.0) ** 2) / 8.0)
    img += 0.4 * np.exp(-((xx - 27.0) ** 2 + (yy - 30.0) ** 2) / 8.0)
    img += 0.5 * np.exp(-((xx - 45.0) ** 2 + (yy - 12.0) ** 2) / 8.0)
    img += 0.3 * np.exp(-((xx - 45.0) ** 2 + (yy - 50.0) ** 2) / 8.0)
    img += np.random.default_rng(3).normal(0.0, 0.002, img.shape)
    objs = [Annotation.from_full_mask("compact", (img > 0.02) & (xx < 33), score=0.9),
            Annotation.from_full_mask("extended", (img > 0.02) & (xx >= 33),
                                      score=0.6, merged=True)]
    table, comps = measure_catalogs(objs, img.astype(np.float32), img.shape, wcs=w,
                                    beam_area_pix=9.0)
    return table, comps, objs


@pytest.mark.parametrize("suffix,fmt", [(".fits", "fits"), (".vot", "votable"),
                                        (".xml", "votable"), (".csv", "csv"), (".ecsv", "ecsv")])
def test_all_formats_round_trip(tmp_path, suffix, fmt):
    table, _ = source_table()
    path = tmp_path / f"cat{suffix}"
    assert write_catalog(table, path, RUN_META) == fmt
    back = read_catalog(path)
    assert len(back) == 2
    assert list(back["name"]) == list(table["name"])
    assert list(back["class"]) == ["compact", "extended"]
    np.testing.assert_allclose(back["ra"], table["ra"], rtol=0, atol=1e-9)
    np.testing.assert_allclose(back["int_flux"], table["int_flux"], rtol=1e-6)
    assert [str(v) in ("True", "true", "1") for v in back["flag_merged"]] == [False, True]
    if fmt != "csv":
        assert back["ra"].unit == u.deg and back["int_flux"].unit == u.Jy
        assert back["peak_flux"].unit == u.Jy / u.beam
    if fmt == "csv":
        text = path.read_text()
        assert not text.startswith("#") and text.splitlines()[0].startswith("name,class,")
    if fmt == "fits":
        hdr = fits.getheader(path, 1)
        assert hdr["IMAGE"] == "field.fits" and hdr["BACKBONE"] == "resnet18-simclr"
        assert hdr["SCORETHR"] == 0.5 and hdr["FRAME"] == "icrs"
    if fmt == "ecsv":
        assert back.meta["WEIGHTS"] == "det.keras"
    if fmt == "votable":
        from astropy.io.votable import parse

        infos = {i.name: i.value for i in parse(str(path)).resources[0].tables[0].infos}
        assert infos["BACKBONE"] == "resnet18-simclr" and infos["SCORETHR"] == "0.5"


def test_unknown_extension_is_output_error(tmp_path):
    table, _ = source_table()
    with pytest.raises(OutputError, match="unknown catalogue extension '.txt'"):
        write_catalog(table, tmp_path / "cat.txt")
    with pytest.raises(OutputError):
        catalog_format("cat")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("suffix", [".fits", ".vot", ".csv", ".ecsv"])
def test_empty_catalogue_is_valid(tmp_path, suffix):
    path = tmp_path / f"empty{suffix}"
    write_catalog(empty_source_table(), path, RUN_META)
    back = read_catalog(path)
    assert len(back) == 0 and "ra" in back.colnames


def test_json_in_original_layout(tmp_path):
    table, objs = source_table()
    path = tmp_path / "cat.json"
    write_catalog_json(table, path, objs, RUN_META)
    doc = json.loads(path.read_text())
    assert doc["meta"]["IMAGE"] == "field.fits"
    first = doc["sources"][0]
    assert first["name"] == table["name"][0] and first["class_name"] == "compact"
    assert first["x1"] == int(table["bbox_x0"][0]) and first["x2"] == int(table["bbox_x1"][0]) - 1
    assert first["nPix"] == len(first["pixels"]) == objs[0].area
    assert first["flux"] == pytest.approx(float(table["int_flux"][0]))
    assert doc["sources"][1]["merged"] is True
    assert doc["units"]["X0w_wcs"] == "deg"


def _stilts(*args):
    return subprocess.run(["stilts", *args], capture_output=True, text=True, timeout=120)


@pytest.mark.clients
@pytest.mark.skipif(shutil.which("stilts") is None, reason="STILTS not installed")
def test_stilts_reads_fits_votable_csv(tmp_path):
    # the Debian STILTS build has no ECSV reader, so ECSV is checked with astropy only
    table, _ = source_table()
    paths = []
    for suffix in (".fits", ".vot", ".csv"):
        p = tmp_path / f"cat{suffix}"
        write_catalog(table, p, RUN_META)
        paths.append(p)
    # one JVM start for all formats: tcatn concatenates them, then count rows and columns
    fmts = {".fits": "fits", ".vot": "votable", ".csv": "csv"}
    args = ["tcatn", f"nin={len(paths)}", "omode=count"]
    for i, p in enumerate(paths, 1):
        args += [f"in{i}={p}", f"ifmt{i}={fmts[p.suffix]}", f"icmd{i}=keepcols 'name ra dec'"]
    got = _stilts(*args)
    assert got.returncode == 0, got.stderr
    assert got.stdout.split() == ["columns:", "3", "rows:", "6"]
    bad = tmp_path / "bad.csv"
    bad.write_text("# comment\nname,ra\n\"a,1\n")
    refused = _stilts("tpipe", f"in={bad}", "ifmt=csv", "omode=count")
    assert refused.returncode != 0


# --- component tables ---------------------------------------------------------------------------


def _same_components(back, comps, units=True):
    assert back.colnames == [name for name, _, _, _ in COMPONENT_COLUMNS]
    assert list(back["source"]) == list(comps["source"])
    assert list(back["source_index"]) == list(comps["source_index"])
    assert list(back["kind"]) == list(comps["kind"])
    for name in ("x", "ra", "dec", "err_ra", "peak_flux", "int_flux", "err_int_flux", "maj_fwhm",
                 "dc_pa"):
        np.testing.assert_allclose(np.asarray(back[name], float), comps[name], rtol=1e-9,
                                   equal_nan=True)
    assert [str(v) in ("True", "true", "1") for v in back["resolved"]] == list(comps["resolved"])
    if units:
        assert back["int_flux"].unit == u.Jy and back["peak_flux"].unit == u.Jy / u.beam
        assert back["err_ra"].unit == u.arcsec and back["ra"].unit == u.deg


@pytest.mark.parametrize("suffix,fmt", [(".fits", "fits"), (".vot", "votable"),
                                        (".xml", "votable"), (".csv", "csv"), (".ecsv", "ecsv")])
def test_components_round_trip(tmp_path, suffix, fmt):
    table, comps, _ = catalogs()
    # a fitted entry of two Gaussians, an entry of two mask islands
    assert list(comps["kind"]) == ["gaussian", "gaussian", "island", "island"]
    assert list(table["n_components"]) == [2, 2]
    path = tmp_path / f"cat{suffix}"
    assert write_catalog(table, path, RUN_META, components=comps) == fmt
    back = read_components(path)
    _same_components(back, comps, units=fmt != "csv")
    if fmt in ("fits", "ecsv", "votable"):
        assert back["int_flux"].description == comps["int_flux"].description
    sources = read_catalog(path)
    assert list(sources["name"]) == list(table["name"])
    # each component names its entry and points at its row
    assert [sources["name"][i] for i in back["source_index"]] == list(back["source"])
    files = sorted(p.name for p in tmp_path.iterdir())
    if fmt == "fits":
        assert files == [path.name] and components_path(path) == path
        with fits.open(path) as hdus:
            assert [h.name for h in hdus][2] == "COMPONENTS" and len(hdus) == 3
            assert hdus[2].header["IMAGE"] == "field.fits" and hdus[2].header["FRAME"] == "icrs"
            assert hdus[1].header["TTYPE1"] == "name"
        # the first table is still the source table for readers that take the first
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", AstropyUserWarning)
            first = Table.read(path)
        assert list(first["name"]) == list(table["name"]) and "n_components" in first.colnames
    else:
        assert files == sorted([path.name, f"cat_components{suffix}"])
        assert components_path(path) == tmp_path / f"cat_components{suffix}"
    if fmt == "ecsv":
        assert back.meta["WEIGHTS"] == "det.keras"


@pytest.mark.parametrize("suffix", [".fits", ".vot", ".csv", ".ecsv"])
def test_empty_component_table_is_valid(tmp_path, suffix):
    path = tmp_path / f"empty{suffix}"
    write_catalog(empty_source_table(), path, RUN_META, components=component_table())
    assert len(read_catalog(path)) == 0
    back = read_components(path)
    assert len(back) == 0 and back.colnames == [name for name, _, _, _ in COMPONENT_COLUMNS]


@pytest.mark.parametrize("suffix", [".fits", ".csv"])
def test_catalogue_without_components_has_none_to_read(tmp_path, suffix):
    table, _, _ = catalogs()
    path = tmp_path / f"cat{suffix}"
    write_catalog(table, path, RUN_META)
    assert [p.name for p in tmp_path.iterdir()] == [path.name]
    with pytest.raises(FileNotFoundError, match="without"):
        read_components(path)


@pytest.mark.parametrize("suffix", [".csv", ".ecsv"])
def test_failed_write_leaves_catalogue_and_sibling_as_they_were(tmp_path, suffix):
    table, comps, _ = catalogs()
    path = tmp_path / f"cat{suffix}"
    write_catalog(table, path, RUN_META, components=comps)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    # a source table that no writer can serialise: the sibling was already complete
    broken = table.copy()
    broken["bad"] = np.array([{"a": 1}, object()], dtype=object)
    with pytest.raises((TypeError, ValueError)):
        write_catalog(broken, path, RUN_META, components=comps[:1])
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_sibling_that_cannot_be_written_leaves_no_catalogue(tmp_path):
    table, comps, _ = catalogs()
    (tmp_path / "cat_components.csv").mkdir()
    with pytest.raises(OutputError, match="cat_components.csv"):
        write_catalog(table, tmp_path / "cat.csv", RUN_META, components=comps)
    assert [p.name for p in tmp_path.iterdir()] == ["cat_components.csv"]


def test_json_sources_list_their_components(tmp_path):
    table, comps, objs = catalogs()
    path = tmp_path / "cat.json"
    write_catalog_json(table, path, objs, RUN_META, components=comps)
    doc = json.loads(path.read_text())
    keys = [name for name, _, _, _ in COMPONENT_COLUMNS]
    for i, src in enumerate(doc["sources"]):
        assert len(src["components"]) == src["n_components"] == int(table["n_components"][i])
        for row in src["components"]:
            assert list(row) == keys
            assert row["source"] == src["name"] and row["source_index"] == i
    fitted, islands = doc["sources"][0]["components"], doc["sources"][1]["components"]
    assert [c["component"] for c in fitted] == [1, 2]
    assert fitted[0]["int_flux"] == pytest.approx(float(comps["int_flux"][0]))
    assert fitted[0]["resolved"] is bool(comps["resolved"][0])
    # NaN (an island has no fitted size or position error) is null, as in the source objects
    assert islands[0]["kind"] == "island" and islands[0]["maj_fwhm"] is None
    assert islands[0]["err_ra"] is None
    assert doc["component_units"]["int_flux"] == "Jy" and "source" not in doc["component_units"]
    # without a component table the sources have no components key
    write_catalog_json(table, path, objs, RUN_META)
    assert "components" not in json.loads(path.read_text())["sources"][0]


@pytest.mark.clients
@pytest.mark.skipif(shutil.which("stilts") is None, reason="STILTS not installed")
def test_stilts_reads_the_component_tables(tmp_path):
    table, comps, _ = catalogs()
    inputs = []
    for suffix, fmt in ((".fits", "fits"), (".vot", "votable"), (".csv", "csv")):
        path = tmp_path / f"cat{suffix}"
        write_catalog(table, path, RUN_META, components=comps)
        # the FITS catalogue's second HDU, by its name; the sibling files of the others
        inputs.append((f"{path}#COMPONENTS" if fmt == "fits" else str(components_path(path)),
                       fmt))
    args = ["tcatn", f"nin={len(inputs)}", "omode=out", "ofmt=csv"]
    keep = ("keepcols 'source source_index kind int_flux'; "
            "addcol -before source_index idx toLong(source_index); delcols source_index")
    for i, (p, fmt) in enumerate(inputs, 1):
        args += [f"in{i}={p}", f"ifmt{i}={fmt}", f"icmd{i}={keep}"]
    got = _stilts(*args)
    assert got.returncode == 0, got.stderr
    lines = got.stdout.strip().splitlines()
    assert lines[0] == "source,idx,kind,int_flux"
    rows = [line.split(",") for line in lines[1:]]
    assert len(rows) == 3 * len(comps)
    for k, row in enumerate(rows):
        c = comps[k % len(comps)]
        assert row[:3] == [c["source"], str(c["source_index"]), c["kind"]]
        assert float(row[3]) == pytest.approx(float(c["int_flux"]), rel=1e-9)
    # the first HDU stays the source table
    count = _stilts("tpipe", f"in={tmp_path / 'cat.fits'}", "ifmt=fits", "omode=count")
    assert count.returncode == 0, count.stderr
    assert count.stdout.split()[-1] == str(len(table))
