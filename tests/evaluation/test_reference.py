"""Reference catalogues, the cross-match and central-galaxy rules, and ``compare --reference``
on a small real field (skipped when the real images are absent)."""

import importlib.util
import os
from pathlib import Path

import numpy as np
import pytest
from astropy.table import Table

from caesar_mrcnn.cli import main
from caesar_mrcnn.errors import ConfigError, DatasetError
from caesar_mrcnn.evaluation import finders
from caesar_mrcnn.evaluation.compare_real import parse_beam_arcsec, prepare_image
from caesar_mrcnn.evaluation.reference import (
    RULE,
    central_galaxy,
    cross_match,
    read_reference,
)

REAL = Path(os.environ.get("CAESAR_REAL_DATA",
                           Path(__file__).resolve().parents[2] / ".." / "shared" / "real"))
P218 = REAL / "fields" / "lotss_dr1_P218+55_cutout200.fits"
P205 = REAL / "fields" / "lotss_dr1_P205+55_cutout400.fits"
LOTSS = REAL / "fields" / "lotss_dr1_P205+55_P218+55.srl.fits"
needs_real = pytest.mark.skipif(not P218.exists(), reason="real survey images absent")

DEC0 = 30.0
COS = np.cos(np.radians(DEC0))


def offset(arcsec_east: float, arcsec_north: float = 0.0) -> tuple[float, float]:
    return 150.0 + arcsec_east / 3600 / COS, DEC0 + arcsec_north / 3600


def test_cross_match_radius_is_beam_or_half_the_major_axis():
    ref = Table({"ra": [150.0, offset(300)[0]], "dec": [DEC0, DEC0],
                 "maj_arcsec": [40.0, np.nan]})  # a 40" source; one without a size
    pos = [offset(15), offset(0, -19), offset(25),  # around the 40" source: r = 20"
           offset(305.9), offset(306.2), offset(600)]  # 6" beam around the other; far away
    cat = Table({"ra": [p[0] for p in pos], "dec": [p[1] for p in pos]})
    m = cross_match(ref, cat, beam_arcsec=6.0)
    assert m.found.tolist() == [True, True]
    assert m.matching.tolist() == [True, True, False, True, False, False]
    assert m.entries_per_source.tolist() == [2, 1] and m.n_fragmented == 1
    # A beam larger than half the major axis wins.
    assert cross_match(ref, cat[2:3], beam_arcsec=26.0).found.tolist() == [True, False]
    none = cross_match(ref, cat[:0], beam_arcsec=6.0)
    assert not none.found.any() and none.n_fragmented == 0



def test_cross_match_counts_a_source_inside_an_entrys_box():
    """A reference that lists a galaxy's two lobes apart: one entry centred between them,
    whose box holds both, finds both and matches; a box counts only with the image's WCS, and
    a row without a box (-1) never holds anything."""
    from astropy.wcs import WCS

    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---SIN", "DEC--SIN"]
    wcs.wcs.crval = [150.0, DEC0]
    wcs.wcs.crpix = [51.0, 51.0]  # pixel (50, 50), 0-based, at the centre
    wcs.wcs.cdelt = [-1.0 / 3600, 1.0 / 3600]  # 1" pixels
    lobes = [offset(-30), offset(30)]  # 30 px either side of the centre
    ref = Table({"ra": [p[0] for p in lobes], "dec": [p[1] for p in lobes],
                 "maj_arcsec": [8.0, 8.0]})
    cat = Table({"ra": [150.0, offset(0, 40)[0]], "dec": [DEC0, offset(0, 40)[1]],
                 "bbox_x0": [15, -1], "bbox_y0": [40, -1], "bbox_x1": [86, -1],
                 "bbox_y1": [61, -1]})
    m = cross_match(ref, cat, beam_arcsec=6.0, wcs=wcs)
    assert m.found.tolist() == [True, True] and m.matching.tolist() == [True, False]
    assert m.n_fragmented == 0
    assert not cross_match(ref, cat, beam_arcsec=6.0).found.any()
    # East is left: the lobe 30" west lies at column 80, the box's end column is exclusive.
    cat["bbox_x1"][0] = 80
    assert cross_match(ref, cat, beam_arcsec=6.0, wcs=wcs).found.tolist() == [False, True]

def test_central_galaxy_rule():
    # LAS 60", beam 5": central within 30 + 10 = 40".
    cat = Table({"ra": [offset(0)[0], offset(39)[0], offset(41)[0], offset(200)[0]],
                 "dec": [DEC0] * 4, "class": ["extended", "compact", "compact", "compact"]})
    c = central_galaxy(cat, 150.0, DEC0, 60.0, 5.0)
    assert (c.n_central, c.n_elsewhere, c.one_entry) == (2, 2, False)
    one = central_galaxy(cat[[0, 3]], 150.0, DEC0, 60.0, 5.0)
    assert one.one_entry and one.one_entry_of(("extended",)) and one.n_elsewhere == 1
    assert not central_galaxy(cat[[1]], 150.0, DEC0, 60.0, 5.0).one_entry_of(("extended",))


def test_read_reference_names_and_units(tmp_path):
    t = Table({"RAJ2000": [150.0], "DEJ2000": [30.0], "Maj": [0.01]})
    t["Maj"].unit = "deg"
    t.write(tmp_path / "ref.ecsv")
    ref = read_reference(tmp_path / "ref.ecsv")
    assert ref["ra"][0] == 150.0 and ref["maj_arcsec"][0] == pytest.approx(36.0)
    (tmp_path / "plain.csv").write_text("name,ra,dec\nA,10.5,-3.25\n")
    plain = read_reference(tmp_path / "plain.csv")  # no size column: NaN
    assert plain["dec"][0] == -3.25 and np.isnan(plain["maj_arcsec"][0])
    (tmp_path / "nopos.csv").write_text("name,x,y\nA,1,2\n")
    with pytest.raises(DatasetError, match="RA/Dec"):
        read_reference(tmp_path / "nopos.csv")
    with pytest.raises(DatasetError, match="no such file"):
        read_reference(tmp_path / "missing.fits")


def test_parse_beam():
    b = parse_beam_arcsec("5.4")
    assert b.bmaj_deg == pytest.approx(5.4 / 3600) and b.bmin_deg == b.bmaj_deg
    assert parse_beam_arcsec("6,4,30").bpa_deg == 30.0
    for bad in ("", "a", "1,2,3,4", "-1"):
        with pytest.raises(ConfigError, match="--beam"):
            parse_beam_arcsec(bad)


def test_compare_needs_one_mode(tmp_path, capsys):
    assert main(["compare", "--out", str(tmp_path / "o")]) != 0
    assert "--reference" in capsys.readouterr().err


@needs_real
def test_prepare_image_writes_the_beam_every_finder_reads(tmp_path):
    from astropy.io import fits

    first = sorted((REAL / "extended" / "mirabest_first").glob("*.fits"))[0]
    im = prepare_image(first, parse_beam_arcsec("5.4"), tmp_path)
    assert im.beam_source == "--beam" and im.beam_arcsec == pytest.approx(5.4)
    h = fits.getheader(im.run_path)
    assert h["BMAJ"] == pytest.approx(5.4 / 3600)
    np.testing.assert_array_equal(fits.getdata(im.run_path), fits.getdata(first))
    im = prepare_image(P218, parse_beam_arcsec("30"), tmp_path)  # the header's beam wins
    assert im.beam_source == "header" and im.beam_arcsec == pytest.approx(6.0)


def test_prepare_image_completes_a_beam_without_angle(tmp_path):
    """Some ATCA headers give BMAJ and BMIN but no BPA, which PyBDSF refuses."""
    from astropy.io import fits

    from caesar_mrcnn.io.fits import write_image

    hdr = fits.Header({"CTYPE1": "RA---SIN", "CTYPE2": "DEC--SIN", "CRVAL1": 150.0,
                       "CRVAL2": DEC0, "CRPIX1": 16.0, "CRPIX2": 16.0, "CDELT1": -2 / 3600,
                       "CDELT2": 2 / 3600, "BMAJ": 8 / 3600, "BMIN": 6 / 3600,
                       "BUNIT": "JY/BEAM"})
    path = tmp_path / "nobpa.fits"
    write_image(path, np.zeros((32, 32), np.float32), hdr)
    work = tmp_path / "work"
    work.mkdir()
    im = prepare_image(path, None, work)
    h = fits.getheader(im.run_path)
    assert im.beam_source == "header"
    assert (h["BMAJ"], h["BMIN"], h["BPA"]) == pytest.approx((8 / 3600, 6 / 3600, 0.0))


@needs_real
def test_compare_reference_on_a_real_field(tmp_path):
    out = tmp_path / "cmp"
    assert main(["compare", str(P218), "--reference", str(LOTSS), "--finders", "caesar-mrcnn",
                 "--out", str(out)]) == 0
    table = Table.read(out / "reference.ecsv")
    assert list(table["finder"]) == [finders.CAESAR_ALL, finders.CAESAR_NO_SPURIOUS]
    for r in table:
        # 7 published LoTSS-DR1 sources lie inside the 200x200 cutout.
        assert r["status"] == "ok" and r["n_reference"] == 7 and r["wall_s"] > 0
        assert 0 <= r["n_found"] <= 7 and 0 <= r["n_matching"] <= r["n_entries"]
    assert table["n_entries"][1] <= table["n_entries"][0]
    md = (out / "reference.md").read_text()
    assert RULE in md and finders.SYMMETRY_RULE in md
    assert (out / "reference.png").read_bytes()[:4] == b"\x89PNG"
    assert (out / "reference.csv").exists()


@needs_real
@pytest.mark.skipif(not finders.available("aegean"), reason="Aegean is not installed")
def test_aegean_on_a_real_field_finishes_with_a_sane_catalogue(tmp_path):
    """Aegean through the NumPy 2 shim on a real field: the run finishes and its catalogue is
    usable, whichever path its fits take (whether a fit's covariance matrix comes out singular
    depends on the machine's floating point; the shim itself is tested in
    test_aegean_compat.py)."""
    catalog, wall = finders.run_aegean(P205, tmp_path)
    assert len(catalog) > 20 and wall > 0
    assert np.isfinite(catalog["ra"]).all() and np.isfinite(catalog["dec"]).all()
    assert (np.asarray(catalog["peak_jyb"]) > 0).all()
    assert np.nanmedian(np.asarray(catalog["snr"], float)) > 5
    # A note appears exactly when the shim saw aegean on its error path, and says what it did.
    assert all("numpy.linalg.linalg" in n for n in catalog.meta["notes"])


MAGPIS = REAL / "fields" / "magpis_20cm_G10.5+0.0_300px.fits"


@needs_real
@pytest.mark.skipif(importlib.util.find_spec("bdsf") is None or not finders.available("aegean"),
                    reason="Aegean and PyBDSF are not installed")
def test_classical_finders_give_icrs_positions_on_a_galactic_image(tmp_path):
    """MAGPIS is in Galactic coordinates: Aegean writes lon/lat, PyBDSF writes them under
    RA/DEC; both catalogues must come back in ICRS, on the image."""
    from astropy.coordinates import SkyCoord
    from astropy.io import fits
    from astropy.wcs import WCS

    h = fits.getheader(MAGPIS)
    wcs = WCS(h).celestial
    centre = wcs.pixel_to_world((h["NAXIS1"] - 1) / 2, (h["NAXIS2"] - 1) / 2).icrs
    half_diag = np.hypot(h["NAXIS1"] * h["CDELT1"], h["NAXIS2"] * h["CDELT2"]) / 2
    for run in (finders.run_aegean, finders.run_pybdsf):
        work = tmp_path / run.__name__
        work.mkdir()
        catalog, _ = run(MAGPIS, work)
        assert len(catalog) > 3
        sep = SkyCoord(catalog["ra"], catalog["dec"], unit="deg").separation(centre).deg
        assert (sep < half_diag * 1.05).all(), run.__name__


@needs_real
@pytest.mark.skipif(importlib.util.find_spec("bdsf") is None, reason="PyBDSF is not installed")
def test_reference_counts_of_pybdsf_on_a_real_field(tmp_path):
    from caesar_mrcnn.evaluation.compare_real import run_finders, score_reference

    im = prepare_image(P218, None, tmp_path)
    runs = run_finders([im], ("pybdsf",))
    table, _ = score_reference(runs, [im], read_reference(LOTSS))
    r = table[0]
    # PyBDSF made the LoTSS-DR1 catalogue: each of its entries here is a published source.
    assert r["status"] == "ok" and r["n_matching"] == r["n_entries"] >= 4
    assert r["n_found"] >= 4


def test_compare_reference_bad_inputs_fail_before_work(tmp_path, capsys):
    from caesar_mrcnn.io.fits import write_image

    plain = tmp_path / "nowcs.fits"
    write_image(plain, np.ones((32, 32), np.float32))
    ref = tmp_path / "ref.csv"
    ref.write_text("ra,dec\n10,20\n")
    out = tmp_path / "cmp"
    for args, expected in [
            ([str(plain), "--reference", str(tmp_path / "missing.csv")], "no such file"),
            ([str(plain), "--reference", str(ref)], "no celestial WCS"),
            ([str(plain), "--reference", str(ref), "--beam", "x"], "--beam"),
            ([str(plain), "--reference", str(ref), "--finders", "sextractor"], "--finders"),
            (["--data", str(tmp_path), "--reference", str(ref)], "either --data")]:
        assert main(["compare", *args, "--out", str(out)]) != 0
        assert expected in capsys.readouterr().err
    assert not out.exists()


def test_inside_image_allows_a_margin_past_blanked_pixels():
    from astropy.wcs import WCS

    from caesar_mrcnn.evaluation.reference import inside_image

    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval, wcs.wcs.crpix, wcs.wcs.cdelt = [150.0, 30.0], [1.0, 1.0], [-1 / 3600, 1 / 3600]
    valid = np.ones((20, 20), bool)
    valid[:, 10:] = False  # right half blanked
    pts = [wcs.pixel_to_world_values(x, 5.0) for x in (5.0, 11.0, 15.0, 25.0)]
    ref = Table({"ra": [p[0] for p in pts], "dec": [p[1] for p in pts]})
    assert inside_image(ref, wcs, valid).tolist() == [True, False, False, False]
    assert inside_image(ref, wcs, valid, margin_pix=2).tolist() == [True, True, False, False]


def test_one_line_failure_messages():
    from caesar_mrcnn.evaluation.compare_real import one_line

    keras = ValueError("Exception encountered when calling MaskRCNN.call().\n\n"
                       "\x1b[1mimages: height and width must be multiples of 32\x1b[0m\n\n"
                       "Arguments received by MaskRCNN.call():\n  • images=tf.Tensor(...)")
    assert one_line(keras) == "images: height and width must be multiples of 32"
    assert one_line(RuntimeError()) == "RuntimeError"
    assert len(one_line(RuntimeError("x" * 500))) == 200


def test_score_galaxies_two_caesar_rows_and_failures(tmp_path):
    from caesar_mrcnn.evaluation.compare_real import FinderRun, Galaxy, score_galaxies
    from caesar_mrcnn.evaluation.compare_report import galaxies_markdown

    images = []
    for k in range(2):  # ImageInput-like: only path and beam are read
        path = tmp_path / f"g{k}.fits"
        images.append(type("Im", (), {"path": path, "beam_arcsec": 5.0})())
    gals = [Galaxy(im.path, 150.0, DEC0, 60.0) for im in images]
    cat = Table({"ra": [150.0, offset(100)[0]], "dec": [DEC0, DEC0],
                 "class": ["extended", "spurious"]})
    runs = [FinderRun("caesar-mrcnn", images[0].path, catalog=cat, wall_s=2.0),
            FinderRun("caesar-mrcnn", images[1].path, catalog=cat[:1], wall_s=1.0),
            FinderRun("pybdsf", images[0].path, catalog=cat[:0], wall_s=1.0),
            FinderRun("pybdsf", images[1].path, status="failed: no beam")]
    summary, per_image, _ = score_galaxies(runs, images, gals)
    by = {r["finder"]: r for r in summary}
    assert by[finders.CAESAR_ALL]["one_entry_extended"] == 2
    assert by[finders.CAESAR_ALL]["elsewhere"] == 1  # the spurious entry, 100" away
    assert by[finders.CAESAR_NO_SPURIOUS]["elsewhere"] == 0
    assert by[finders.CAESAR_ALL]["wall_s"] == 3.0
    p = by["pybdsf"]
    assert (p["missed"], p["one_entry_extended"]) == (1, -1) and p["status"].startswith("ok on 1/2")
    assert len(per_image) == 5
    md = galaxies_markdown(summary)
    assert "(no classes)" in md and "| pybdsf | 0/2 |" in md
