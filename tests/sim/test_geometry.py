"""FITS headers of simulated images, read back by astropy and by the project's reader."""

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS

from caesar_mrcnn.config import load_config
from caesar_mrcnn.io.fits import read_image
from caesar_mrcnn.sim.config import NanBorderConfig, SimConfig
from caesar_mrcnn.sim.field import simulate_field
from caesar_mrcnn.sim.geometry import make_header, nan_border_mask
from caesar_mrcnn.sim.writer import write_field_fits


@pytest.mark.parametrize("four_axes", [False, True])
def test_header_is_celestial_sin_with_beam(tmp_path, four_axes):
    cfg = load_config(SimConfig, None, ["field.nx=96", "field.ny=80", "field.ra_deg=210.5",
                                        "field.dec_deg=-45", "field.radesys=FK5",
                                        f"field.four_axes={str(four_axes).lower()}",
                                        "compact.n=3", "spurious.n=0"])
    sim = simulate_field(cfg, np.random.default_rng(0))
    path = tmp_path / "sim.fits"
    write_field_fits(sim, path)
    with fits.open(path) as hdul:
        hdr = hdul[0].header
        assert hdul[0].data.dtype == np.dtype(">f4")
        assert hdr["NAXIS"] == (4 if four_axes else 2)
        assert hdul[0].data.shape == ((1, 1, 80, 96) if four_axes else (80, 96))
    if four_axes:
        assert hdr["CTYPE3"] == "FREQ" and hdr["CTYPE4"] == "STOKES"
    assert hdr["BUNIT"] == "JY/BEAM"
    assert hdr["BMAJ"] == pytest.approx(12.0 / 3600) and hdr["BMIN"] == pytest.approx(10 / 3600)
    assert hdr["BPA"] == pytest.approx(30.0)
    assert hdr["RADESYS"] == "FK5" and hdr["EQUINOX"] == 2000.0
    wcs = WCS(hdr).celestial
    assert wcs.has_celestial and wcs.naxis == 2
    assert list(wcs.wcs.ctype) == ["RA---SIN", "DEC--SIN"]
    ra, dec = wcs.wcs_pix2world((96 - 1) / 2, (80 - 1) / 2, 0)
    assert float(ra) == pytest.approx(210.5) and float(dec) == pytest.approx(-45.0)
    # RA grows to the left (east), Dec upwards; pixel scale 2 arcsec
    ra1, _ = wcs.wcs_pix2world((96 - 1) / 2 + 1, (80 - 1) / 2, 0)
    assert float(ra1) < float(ra)
    img = read_image(path)
    assert img.shape == (80, 96)
    assert img.beam.bmaj_deg == pytest.approx(12.0 / 3600)
    np.testing.assert_array_equal(img.data, sim.image)


def test_icrs_header_has_no_equinox():
    hdr = make_header(SimConfig().field, SimConfig().beam)
    assert hdr["RADESYS"] == "ICRS" and "EQUINOX" not in hdr
    assert WCS(hdr).celestial.wcs.radesys == "ICRS"


def test_nan_border_is_irregular_and_central():
    rng = np.random.default_rng(2)
    valid = nan_border_mask((200, 300), NanBorderConfig(enabled=True, fill=0.9,
                                                       irregularity=0.1), rng)
    assert valid.shape == (200, 300) and valid[100, 150]
    assert not valid[0, 0] and not valid[-1, 0] and not valid[0, -1] and not valid[-1, -1]
    # irregular edge: the valid extent differs between rows
    widths = valid.sum(axis=1)
    assert len(np.unique(widths[widths > 0])) > 20
