"""Source parameters against analytic Gaussians, with real celestial WCS."""

from __future__ import annotations

import math

import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.wcs import WCS

from caesar_mrcnn.data.dataset import Annotation
from caesar_mrcnn.measure.background import background_grid
from caesar_mrcnn.measure.sky import iau_name, radec
from caesar_mrcnn.measure.sources import FWHM_PER_SIGMA, measure_sources

PIX_ARCSEC = 2.0


def make_wcs(shape, east_left=True, rotation_deg=0.0, radesys="FK5"):
    ny, nx = shape
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---SIN", "DEC--SIN"]
    w.wcs.crval = [150.0, -30.0]
    w.wcs.crpix = [nx / 2, ny / 2]
    s = PIX_ARCSEC / 3600
    c, t = math.cos(math.radians(rotation_deg)), math.sin(math.radians(rotation_deg))
    sx = -s if east_left else s
    w.wcs.cd = [[sx * c, -s * t], [sx * t, s * c]]
    w.wcs.radesys = radesys
    if radesys == "FK5":
        w.wcs.equinox = 2000.0
    return w


def gaussian(shape, x0, y0, peak, sig_major, sig_minor, theta_deg):
    """Elliptical Gaussian whose major axis points along (cos theta, sin theta) in pixels."""
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    th = math.radians(theta_deg)
    dx, dy = xx - x0, yy - y0
    a = dx * math.cos(th) + dy * math.sin(th)
    b = -dx * math.sin(th) + dy * math.cos(th)
    return peak * np.exp(-0.5 * (a ** 2 / sig_major ** 2 + b ** 2 / sig_minor ** 2))


BEAM_SIGMA_PIX = 2.5
BEAM_AREA = 2 * math.pi * BEAM_SIGMA_PIX ** 2


@pytest.mark.parametrize("east_left", [True, False])
def test_gaussian_parameters(east_left):
    shape = (128, 160)
    peak, smaj, smin = 1e-2, 5.0, 3.0
    # major axis in pixels along +y rotated 30 deg towards -x: PA 30 deg east of north when
    # east is to the left, 330 = 150 (mod 180) when the x axis is flipped
    img = gaussian(shape, 70.3, 60.7, peak, smaj, smin, 90 + 30)
    mask = img > 1e-4 * peak
    ann = Annotation.from_full_mask("compact", mask, score=0.75)
    wcs = make_wcs(shape, east_left)
    t = measure_sources([ann], img.astype(np.float32), shape, wcs=wcs, beam_area_pix=BEAM_AREA)
    row = t[0]
    assert row["x_w"] == pytest.approx(70.3, abs=0.01)
    assert row["y_w"] == pytest.approx(60.7, abs=0.01)
    ra, dec = wcs.all_pix2world(70.3, 60.7, 0)
    assert SkyCoord(row["ra"], row["dec"], unit="deg").separation(
        SkyCoord(ra, dec, unit="deg")).arcsec < 0.05
    assert row["peak_flux"] == pytest.approx(peak, rel=0.01)
    assert row["int_flux"] == pytest.approx(peak * smaj * smin / BEAM_SIGMA_PIX ** 2, rel=0.005)
    assert row["maj_fwhm"] == pytest.approx(FWHM_PER_SIGMA * smaj * PIX_ARCSEC, rel=0.01)
    assert row["min_fwhm"] == pytest.approx(FWHM_PER_SIGMA * smin * PIX_ARCSEC, rel=0.01)
    assert row["pa"] == pytest.approx(30.0 if east_left else 150.0, abs=0.5)
    assert row["class"] == "compact" and row["score"] == pytest.approx(0.75)
    assert row["npix"] == mask.sum() and row["nislands"] == 1
    assert not row["flag_edge"] and not row["flag_nan"] and not row["flag_merged"]
    assert t["ra"].unit == u.deg and t["maj_fwhm"].unit == u.arcsec
    assert t["int_flux"].unit == u.Jy and t["peak_flux"].unit == u.Jy / u.beam
    assert t.meta["FRAME"] == "fk5"


def test_position_angle_with_rotated_wcs():
    shape = (96, 96)
    # pixel major axis along +y; the image's north is rotated by 40 deg
    img = gaussian(shape, 48, 48, 1.0, 6.0, 2.0, 90.0)
    ann = Annotation.from_full_mask("extended", img > 1e-4)
    t0 = measure_sources([ann], img, shape, wcs=make_wcs(shape, rotation_deg=0.0))
    t1 = measure_sources([ann], img, shape, wcs=make_wcs(shape, rotation_deg=40.0))
    assert t0["pa"][0] == pytest.approx(0.0, abs=0.5) or t0["pa"][0] == pytest.approx(180, abs=.5)
    # the WCS maps pixel +y to a direction 40 deg from north (towards east or west)
    assert min(abs(t1["pa"][0] - 40.0), abs(t1["pa"][0] - 140.0)) < 0.5
    # cross-check with sky offsets along the pixel major axis
    w = make_wcs(shape, rotation_deg=40.0)
    a, b = w.pixel_to_world([48, 48], [40, 56])
    assert t1["pa"][0] == pytest.approx(a.position_angle(b).to_value(u.deg) % 180, abs=0.5)


def test_noise_background_snr_and_flux_error():
    rng = np.random.default_rng(7)
    shape = (256, 256)
    rms, bkg = 1e-4, 5e-4
    model = gaussian(shape, 100.0, 130.0, 5e-3, 3.0, 3.0, 0.0)
    img = (model + bkg + rng.normal(0, rms, shape)).astype(np.float32)
    grid = background_grid(img, shape, box=64)
    assert np.median(grid.rms) == pytest.approx(rms, rel=0.05)
    assert np.median(grid.bkg) == pytest.approx(bkg, abs=0.1 * rms)
    mask = model > 3 * rms
    t = measure_sources([Annotation.from_full_mask("compact", mask)], img, shape,
                        wcs=make_wcs(shape), beam_area_pix=BEAM_AREA, background=grid)
    row = t[0]
    assert row["local_rms"] == pytest.approx(rms, rel=0.1)
    assert row["local_bkg"] == pytest.approx(bkg, abs=0.2 * rms)
    assert row["snr"] == pytest.approx(row["peak_flux"] / row["local_rms"])
    assert row["snr"] == pytest.approx(50, rel=0.15)
    assert row["err_island_flux"] == pytest.approx(row["local_rms"] * math.sqrt(mask.sum()
                                                                                / BEAM_AREA))
    # a fitted, resolved Gaussian (1.2 beams across): its whole flux within its Condon error
    assert row["fitted"] and not row["unresolved"]
    true_flux = 5e-3 * 3.0 * 3.0 / BEAM_SIGMA_PIX ** 2
    assert abs(row["int_flux"] - true_flux) < 3 * row["err_int_flux"] < 0.2 * true_flux
    assert row["island_flux"] < row["int_flux"]
    # flux inside the 3-sigma mask of a 3-pixel Gaussian, background removed
    truth = model[mask].sum() / BEAM_AREA
    assert abs(row["int_flux"] - truth) < 3 * row["err_int_flux"]


def test_flags_islands_and_no_wcs():
    shape = (64, 64)
    img = np.ones(shape, np.float32)
    img[30:40, 50:] = np.nan
    edge = np.zeros(shape, bool)
    edge[0:5, 10:15] = True
    two = np.zeros(shape, bool)
    two[20:24, 20:24] = True
    two[20:24, 28:30] = True
    near_nan = np.zeros(shape, bool)
    near_nan[32:36, 45:50] = True
    anns = [Annotation.from_full_mask("compact", m) for m in (edge, two, near_nan)]
    anns[1].attrs["merged"] = True
    t = measure_sources(anns, img, shape)
    assert list(t["flag_edge"]) == [True, False, False]
    assert list(t["flag_nan"]) == [False, False, True]
    assert list(t["flag_merged"]) == [False, True, False]
    assert list(t["nislands"]) == [1, 2, 1]
    assert np.isnan(t["ra"]).all() and np.isnan(t["int_flux"]).all()
    assert t["name"][0].startswith("X") and t.meta["FRAME"] == "pixel"


def test_empty_objects_give_empty_table_with_units():
    t = measure_sources([], np.zeros((8, 8)), (8, 8))
    assert len(t) == 0 and t["dec"].unit == u.deg and "name" in t.colnames


@pytest.mark.parametrize("ra,dec,expected", [
    (0.0, 0.0, "J000000.00+000000.0"),
    (15.0, -1e-6, "J010000.00-000000.0"),
    (188.7366208333, -12.582441389, "J123456.78-123456.7"),   # truncated, not rounded
    (359.9999999, 89.99999999, "J235959.99+895959.9"),
    (83.63308, 22.0145, "J053431.93+220052.2"),
])
def test_iau_name(ra, dec, expected):
    assert iau_name(ra, dec)[0] == expected


def test_iau_name_prefix_and_vector():
    names = iau_name([10.0, 20.0], [1.0, -1.0], prefix="CAESAR")
    assert list(names) == ["CAESAR J004000.00+010000.0", "CAESAR J012000.00-010000.0"]


def test_radec_keeps_equatorial_frame_and_converts_galactic():
    shape = (10, 10)
    for radesys, frame in (("ICRS", "icrs"), ("FK5", "fk5")):
        ra, dec, got = radec(make_wcs(shape, radesys=radesys), np.array([5.0]), np.array([5.0]))
        assert got == frame and ra[0] == pytest.approx(150.0, abs=0.01)
    w = WCS(naxis=2)
    w.wcs.ctype = ["GLON-CAR", "GLAT-CAR"]
    w.wcs.crval = [0.0, 0.0]
    w.wcs.crpix = [1, 1]
    w.wcs.cdelt = [-0.01, 0.01]
    ra, dec, got = radec(w, np.array([0.0]), np.array([0.0]))
    assert got == "icrs"
    gc = SkyCoord(0, 0, unit="deg", frame="galactic").icrs
    assert ra[0] == pytest.approx(gc.ra.deg, abs=1e-6)
    assert dec[0] == pytest.approx(gc.dec.deg, abs=1e-6)
