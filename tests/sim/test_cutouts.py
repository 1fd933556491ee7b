"""Cutout sets: unlabelled (from simulations or user FITS) and the labelled morphology set."""

import csv

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS
from scipy import ndimage

from caesar_mrcnn.config import load_config
from caesar_mrcnn.errors import ConfigError
from caesar_mrcnn.sim.config import SimConfig
from caesar_mrcnn.sim.cutouts import (
    MORPHOLOGY_LABELS,
    make_morphology_set,
    make_unlabelled_cutouts,
)
from caesar_mrcnn.sim.field import simulate_field
from caesar_mrcnn.sim.writer import write_field_fits


def _rows(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def _small_cfg(*extra):
    return load_config(SimConfig, None, ["field.nx=160", "field.ny=160", "compact.n=12",
                                         "extended.size_max_beam=5", "spurious.n=1",
                                         "spurious.extent_min_beam=3", "spurious.extent_max_beam=4",
                                         *extra])


@pytest.mark.parametrize("centred", [False, True])
def test_unlabelled_cutouts_from_simulation(tmp_path, centred):
    out = tmp_path / "cut"
    summary = make_unlabelled_cutouts(out, 15, 32, sim_config=_small_cfg(), centred=centred,
                                      seed=3)
    rows = _rows(summary.csv_path)
    assert summary.n_written == len(rows) == 15
    for row in rows:
        data = fits.getdata(out / row["file"])
        assert data.shape == (32, 32) and data.dtype == np.dtype(">f4")
        assert np.isfinite(data).all()
    hdr = fits.getheader(out / rows[0]["file"])
    assert WCS(hdr).has_celestial and "BMAJ" in hdr
    if centred:
        # centred on sources: the cutout centres are brighter than random windows
        centres = [fits.getdata(out / r["file"])[12:20, 12:20].max() for r in rows]
        assert np.median(centres) > 5 * 30e-6


def test_unlabelled_cutouts_from_fits_skip_blank_regions(tmp_path):
    cfg = _small_cfg("field.nx=256", "field.ny=256", "nan_border.enabled=true",
                     "nan_border.fill=0.6", "compact.n=30")
    sim = simulate_field(cfg, np.random.default_rng(1))
    image = tmp_path / "mosaic.fits"
    write_field_fits(sim, image)
    out = tmp_path / "cut"
    summary = make_unlabelled_cutouts(out, 12, 48, fits_paths=[image], seed=2,
                                      max_nan_fraction=0.1)
    rows = _rows(summary.csv_path)
    assert len(rows) == 12
    wcs = WCS(sim.header).celestial
    for row in rows:
        data = fits.getdata(out / row["file"])
        assert data.shape == (48, 48)
        assert np.mean(~np.isfinite(data)) <= 0.1
        y0, x0 = int(row["y0"]), int(row["x0"])
        np.testing.assert_array_equal(data, sim.image[y0:y0 + 48, x0:x0 + 48])
        # the cutout's WCS is the mosaic's, shifted
        ra, dec = WCS(fits.getheader(out / row["file"])).wcs_pix2world(0, 0, 0)
        ra0, dec0 = wcs.wcs_pix2world(x0, y0, 0)
        assert float(ra) == pytest.approx(float(ra0)) and float(dec) == pytest.approx(float(dec0))
    centred = make_unlabelled_cutouts(tmp_path / "c2", 5, 48, fits_paths=[image], seed=2,
                                      centred=True)
    assert centred.n_written == 5


def test_morphology_set_is_balanced_and_labelled(tmp_path):
    out = tmp_path / "morph"
    summary = make_morphology_set(out, 12, 64, sim_config=_small_cfg(), seed=4)
    rows = _rows(summary.csv_path)
    assert len(rows) == 12
    assert summary.label_counts == dict.fromkeys(MORPHOLOGY_LABELS, 2)
    level = 3 * 30e-6
    for row in rows:
        data = fits.getdata(out / row["file"])
        assert data.shape == (64, 64) and data.dtype == np.dtype(">f4")
        assert MORPHOLOGY_LABELS[int(row["label_id"])] == row["label"]
        assert float(row["snr"]) > 3
        n = int(row["nislands"])
        if row["label"] == "multi-island":
            assert n >= 2
        elif row["label"] in ("FR-I", "FR-II", "diffuse"):
            assert n == 1
            assert row["family"] == {"FR-I": "fr1", "FR-II": "fr2", "diffuse": "diffuse"}[
                row["label"]]
        # the object is near the centre and above the noise there
        assert data[24:40, 24:40].max() > level
    labelled = ndimage.label(fits.getdata(out / rows[0]["file"]) > 1.0)[1]
    assert labelled == 0  # no absurd values


def test_bad_requests_raise_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="--size"):
        make_unlabelled_cutouts(tmp_path / "a", 3, 4, sim_config=_small_cfg())
    with pytest.raises(ConfigError, match="exactly one"):
        make_unlabelled_cutouts(tmp_path / "b", 3, 32)
    with pytest.raises(ConfigError, match="larger than the simulated field"):
        make_unlabelled_cutouts(tmp_path / "c", 3, 512, sim_config=_small_cfg())
    assert not (tmp_path / "c").exists()
