"""Catalogue files in four formats, read back by astropy and by STILTS."""

from __future__ import annotations

import json
import shutil
import subprocess

import numpy as np
import pytest
from astropy import units as u
from astropy.io import fits

from caesar_mrcnn.data.dataset import Annotation
from caesar_mrcnn.errors import OutputError
from caesar_mrcnn.io.catalog import (
    catalog_format,
    read_catalog,
    write_catalog,
    write_catalog_json,
)
from caesar_mrcnn.measure.schema import empty_source_table
from caesar_mrcnn.measure.sources import measure_sources

RUN_META = {"IMAGE": "field.fits", "WEIGHTS": "det.keras", "BACKBONE": "resnet18-simclr",
            "SCORETHR": 0.5, "SOFTWARE": "caesar-mrcnn", "VERSION": "0.1.0"}


def source_table():
    from astropy.wcs import WCS

    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---SIN", "DEC--SIN"]
    w.wcs.crval = [150.0, -30.0]
    w.wcs.crpix = [32, 32]
    w.wcs.cdelt = [-2 / 3600, 2 / 3600]
    w.wcs.radesys = "ICRS"
    yy, xx = np.mgrid[:64, :64]
    img = np.exp(-((xx - 20.0) ** 2 + (yy - 30.0) ** 2) / 8.0)
    img += 0.5 * np.exp(-((xx - 45.0) ** 2 + (yy - 12.0) ** 2) / 8.0)
    objs = [Annotation.from_full_mask("compact", (img > 0.01) & (xx < 33), score=0.9),
            Annotation.from_full_mask("extended", (img > 0.01) & (xx >= 33), score=0.6,
                                      merged=True)]
    return measure_sources(objs, img.astype(np.float32), img.shape, wcs=w, beam_area_pix=9.0), \
        objs


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
