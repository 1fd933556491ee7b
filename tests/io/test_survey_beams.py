"""Published survey beams for headers without BMAJ/BMIN: how real files name their survey."""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path

import pytest
from astropy.io import fits

from caesar_mrcnn.io.fits import open_image
from caesar_mrcnn.io.survey_beams import identify_survey, survey_beam

REAL = Path(os.environ.get("CAESAR_MRCNN_REAL")
            or Path(__file__).resolve().parents[2] / ".." / "shared" / "real")
needs_real = pytest.mark.skipif(not REAL.is_dir(), reason="real images folder not present")
AS = 1.0 / 3600.0


def _header(**cards) -> fits.Header:
    hdr = fits.Header()
    for key, value in cards.items():
        if key == "HISTORY":
            for line in value:
                hdr.add_history(line)
        else:
            hdr[key] = value
    return hdr


@pytest.mark.parametrize("cards, name", [
    ({"SURVEY": "FIRST"}, "FIRST"),
    ({"SURVEY": "NVSS"}, "NVSS"),
    ({"HISTORY": ["survey = NVSS"]}, "NVSS"),
    ({"HISTORY": ["shortname = FIRST, VLA FIRST (1.4 GHz)"]}, "FIRST"),
    ({"PROPCODE": "VLASS", "TELESCOP": "EVLA"}, "VLASS"),
    ({"HISTORY": ['imagename = "VLASS2.1.se.T10t34.J220717-033000.06.2048.v1.I.iter3"']},
     "VLASS"),
    ({"SURVEY": "SUMSS"}, "SUMSS"),
    ({"SURVEY": "TGSS ADR1"}, "TGSS"),
    ({"ORIGIN": "ddf-pipeline v1.4-26-g65c002d", "TELESCOP": "LOFAR"}, "LoTSS"),
    ({"SURVEY": "RACS-low"}, "RACS-low"),
    ({"TELESCOP": "VLA", "HISTORY": ["The FIRST VLA Survey: Copyright 1994"]}, None),
    ({"TELESCOP": "ATCA", "OBJECT": "rpn_52"}, None),
])
def test_identify_survey(cards, name):
    assert identify_survey(_header(**cards)) == name


def test_published_beams():
    def beam(survey, dec):
        _, b = survey_beam(_header(SURVEY=survey), dec)
        return b.bmaj_deg / AS, b.bmin_deg / AS

    assert beam("FIRST", 30.0) == pytest.approx((5.4, 5.4))
    assert beam("FIRST", -9.3) == pytest.approx((6.4, 5.4))
    assert beam("FIRST", None) == pytest.approx((5.4, 5.4))
    assert beam("NVSS", -30.0) == pytest.approx((45.0, 45.0))
    assert beam("VLASS", 10.0) == pytest.approx((2.5, 2.5))
    assert beam("SUMSS", -60.0) == pytest.approx((45.0 / math.sin(math.radians(60.0)), 45.0))
    assert beam("TGSS", 40.0) == pytest.approx((25.0, 25.0))
    assert beam("TGSS", -11.0)[0] == pytest.approx(25.0 / math.cos(math.radians(30.0)))
    assert beam("LOTSS", 55.0) == pytest.approx((6.0, 6.0))
    assert beam("RACS", -40.0) == pytest.approx((25.0, 25.0))


@needs_real
@pytest.mark.parametrize("name, survey, bmaj", [
    ("100_122.412+034.927_0.0825_0124.74.fits", "FIRST", 5.4),
    ("104_014.084-009.608_0.1031_0034.67.fits", "FIRST", 6.4),  # south of Dec +4.5 deg
])
def test_real_skyview_first_cutouts_get_the_first_beam(name, survey, bmaj, caplog):
    path = REAL / "extended" / "mirabest_first" / name
    with caplog.at_level(logging.WARNING), open_image(path) as img:
        assert img.beam_source == f"{survey} survey default"
        assert img.beam.bmaj_deg / AS == pytest.approx(bmaj)
        assert img.beam_area_pix is not None and img.wcs is not None
    assert any(f"beam from the {survey} survey default" in r.getMessage()
               for r in caplog.records)


@needs_real
@pytest.mark.parametrize("rel, survey", [
    ("extended/mirabest_first/200_146.161+064.196_0.1350_0063.72.fits", "FIRST"),
    ("fields/nvss_skyview_J001357.2-091951.5_300px.fits", "NVSS"),
    ("extended/vlass_3.1_ql_J001357.17-091951.5_2arcmin.fits", "VLASS"),
    ("fields/lotss_dr1_P205+55_cutout400.fits", "LoTSS"),
])
def test_real_files_name_their_survey(rel, survey):
    with fits.open(REAL / rel) as hdul:
        assert identify_survey(hdul[0].header) == survey


@needs_real
def test_a_beam_in_the_header_wins_over_the_survey_default():
    path = REAL / "fields" / "nvss_skyview_J001357.2-091951.5_300px.fits"
    with open_image(path) as img:
        assert img.beam_source == "header" and img.beam.bmaj_deg == pytest.approx(0.0125)
