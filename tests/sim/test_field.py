"""Simulated fields: ground truth consistent with the pixels, classes, islands, determinism."""

import numpy as np
import pytest
from astropy.wcs import WCS
from scipy import ndimage

from caesar_mrcnn.classes import CLASS_NAMES
from caesar_mrcnn.config import load_config
from caesar_mrcnn.errors import ConfigError
from caesar_mrcnn.sim import beam as gb
from caesar_mrcnn.sim.config import SimConfig
from caesar_mrcnn.sim.field import simulate_field


def _cfg(*overrides):
    return load_config(SimConfig, None, list(overrides))


@pytest.fixture(scope="module")
def mixed():
    cfg = _cfg("field.nx=384", "field.ny=320", "compact.n=25", "extended.n=4",
               "extended.n_multisland=3", "spurious.n=2", "seed=3")
    return cfg, simulate_field(cfg, np.random.default_rng(11), keep_model=True)


@pytest.fixture(scope="module")
def compact_only():
    cfg = _cfg("field.nx=512", "field.ny=512", "compact.n=30", "compact.snr_min=30",
               "compact.snr_max=2000", "compact.resolved_fraction=0.5", "extended.n=0",
               "extended.n_multisland=0", "spurious.n=0")
    return cfg, simulate_field(cfg, np.random.default_rng(12), keep_model=True)


def _isolated(field, ann, radius):
    """True when no other object's bbox comes within ``radius`` pixels of ``ann``'s centre."""
    x, y = ann.attrs["x"], ann.attrs["y"]
    ny, nx = field.shape
    if not (radius <= x < nx - radius and radius <= y < ny - radius):
        return False
    for other in field.annotations:
        if other is ann:
            continue
        y0, x0, y1, x1 = other.bbox
        if x0 - radius < x < x1 + radius and y0 - radius < y < y1 + radius:
            return False
    return True


def test_masks_inside_image_and_match_object_model(mixed):
    cfg, field = mixed
    ny, nx = field.shape
    level = cfg.mask_threshold_sigma * field.meta["rms"]
    assert field.annotations
    for ann in field.annotations:
        y0, x0, y1, x1 = ann.bbox
        assert 0 <= y0 < y1 <= ny and 0 <= x0 < x1 <= nx
        assert ann.mask.shape == (y1 - y0, x1 - x0)
        assert ann.area > 0
        # the mask is tight: every edge row/column of the bbox holds a mask pixel
        assert ann.mask[0].any() and ann.mask[-1].any()
        assert ann.mask[:, 0].any() and ann.mask[:, -1].any()
    assert len(field.object_models) == len(field.annotations)
    total = np.zeros(field.shape, np.float32)
    for ann, stamp in zip(field.annotations, field.object_models):
        # the mask is exactly where this object's own noiseless model exceeds the threshold
        own = np.zeros(field.shape, np.float32)
        own[stamp.slices] = stamp.data
        np.testing.assert_array_equal(ann.full_mask(field.shape), own > level)
        total += own
    # the sky model is the sum of the objects
    np.testing.assert_allclose(field.model, total, atol=1e-9)


def test_class_counts_as_configured(mixed):
    cfg, field = mixed
    counts = dict.fromkeys(CLASS_NAMES, 0)
    for ann in field.annotations:
        counts[ann.category] += 1
    assert counts["compact"] == cfg.compact.n
    assert counts["extended"] == cfg.extended.n
    assert counts["extended-multisland"] == cfg.extended.n_multisland
    assert counts["spurious"] == cfg.spurious.n
    assert counts["flagged"] == 0


def test_island_counts_follow_class(mixed):
    _, field = mixed
    for ann in field.annotations:
        n = ndimage.label(ann.mask, structure=np.ones((3, 3)))[1]
        assert n == ann.attrs["nislands"]
        if ann.category == "extended":
            assert n == 1
        elif ann.category == "extended-multisland":
            assert n >= 2
    families = {a.attrs["family"] for a in field.annotations if a.category.startswith("ext")}
    assert families <= {"fr1", "fr2", "diffuse"}


def test_spurious_artefacts_are_positive_and_negative(mixed):
    _, field = mixed
    spurious = [a for a in field.annotations if a.category == "spurious"]
    assert spurious
    for ann in spurious:
        host = next(a for a in field.annotations if a.attrs["name"] == ann.attrs["host"])
        assert host.category == "compact"
        assert ann.attrs["peak_jyb"] <= 0.5 * host.attrs["peak_jyb"]
        y0, x0, y1, x1 = ann.bbox
        region = field.model[y0:y1, x0:x1]
        assert region.min() < -0.3 * ann.attrs["peak_jyb"]


def test_peak_snr_of_isolated_compact_sources(compact_only):
    _, field = compact_only
    rms = field.meta["rms"]
    checked = 0
    for ann in field.annotations:
        if not _isolated(field, ann, 15):
            continue
        x, y = ann.attrs["x"], ann.attrs["y"]
        ix, iy = int(round(x)), int(round(y))
        measured = field.image[iy - 1:iy + 2, ix - 1:ix + 2].max()
        truth = ann.attrs["peak_jyb"]
        assert ann.attrs["snr"] == pytest.approx(truth / rms)
        # pixel sampling loses < 3 % of the peak; noise adds a few rms
        assert abs(measured - truth) < 0.03 * truth + 4 * rms
        checked += 1
    assert checked >= 5


def test_integrated_flux_from_pixel_sum(compact_only):
    cfg, field = compact_only
    pix = cfg.field.pixel_arcsec
    beam_area = gb.area(gb.covariance(cfg.beam.bmaj_arcsec / pix, cfg.beam.bmin_arcsec / pix,
                                      cfg.beam.bpa_deg))
    checked = 0
    for ann in field.annotations:
        if ann.attrs["snr"] < 200 or not _isolated(field, ann, 20):
            continue
        ix, iy = int(round(ann.attrs["x"])), int(round(ann.attrs["y"]))
        box = field.image[iy - 20:iy + 21, ix - 20:ix + 21]
        flux = box.sum() / beam_area
        # pixel sum of a 41x41 box: noise of the sum is < 3 % of the flux at SNR > 200
        assert flux == pytest.approx(ann.attrs["flux_jy"], rel=0.05)
        model_flux = field.model[iy - 20:iy + 21, ix - 20:ix + 21].sum() / beam_area
        assert model_flux == pytest.approx(ann.attrs["flux_jy"], rel=1e-3)
        # point source: peak (Jy/beam) equals flux (Jy); resolved: peak is lower
        ratio = ann.attrs["peak_jyb"] / ann.attrs["flux_jy"]
        if ann.attrs["intrinsic_major_arcsec"] == 0:
            assert ratio == pytest.approx(1.0)
        else:
            assert ratio < 1.0
        checked += 1
    assert checked >= 1


def test_sky_positions_follow_header_wcs(mixed):
    _, field = mixed
    wcs = WCS(field.header).celestial
    for ann in field.annotations[:10]:
        ra, dec = wcs.wcs_pix2world(ann.attrs["x"], ann.attrs["y"], 0)
        assert ann.attrs["ra"] == pytest.approx(float(ra), abs=1e-9)
        assert ann.attrs["dec"] == pytest.approx(float(dec), abs=1e-9)


def test_determinism():
    cfg = _cfg("field.nx=128", "field.ny=128", "compact.n=8", "spurious.n=1")
    a = simulate_field(cfg, np.random.default_rng(5))
    b = simulate_field(cfg, np.random.default_rng(5))
    c = simulate_field(cfg, np.random.default_rng(6))
    np.testing.assert_array_equal(a.image, b.image)
    assert [x.bbox for x in a.annotations] == [x.bbox for x in b.annotations]
    for x, y in zip(a.annotations, b.annotations):
        np.testing.assert_array_equal(x.mask, y.mask)
    assert not np.array_equal(a.image, c.image)


def test_nan_border_blanks_the_edge_and_masks_avoid_it():
    cfg = _cfg("field.nx=256", "field.ny=256", "nan_border.enabled=true", "nan_border.fill=0.8",
               "compact.n=30")
    field = simulate_field(cfg, np.random.default_rng(7))
    blank = ~np.isfinite(field.image)
    assert blank[0, 0] and blank[-1, -1] and not blank[128, 128]
    assert 0.2 < blank.mean() < 0.7
    for ann in field.annotations:
        assert not blank[ann.full_mask(field.shape)].any()
    # without the option nothing is blank
    assert np.isfinite(simulate_field(_cfg("field.nx=64", "field.ny=64"),
                                      np.random.default_rng(0)).image).all()


def test_background_option_adds_smooth_signal():
    base = ["field.nx=128", "field.ny=128", "compact.n=1", "spurious.n=0", "extended.n=0",
            "extended.n_multisland=0"]
    quiet = simulate_field(_cfg(*base), np.random.default_rng(3))
    loud = simulate_field(_cfg(*base, "noise.background_ujy=100",
                               "noise.background_scale_arcsec=200"), np.random.default_rng(3))
    diff = loud.image - quiet.image
    assert diff.std() > 20e-6
    assert np.abs(np.diff(diff, axis=0)).max() < 10e-6


def test_invalid_configuration_names_the_option():
    with pytest.raises(ConfigError, match="spurious.n"):
        _cfg("spurious.n=5", "compact.n=2")
    with pytest.raises(ConfigError, match="bmin_arcsec"):
        _cfg("beam.bmin_arcsec=20")
    with pytest.raises(ConfigError, match="families"):
        _cfg("extended.families={fr3: 1.0}")


def test_source_free_field_has_target_noise(tmp_path):
    from astropy.stats import sigma_clipped_stats

    from caesar_mrcnn.sim.writer import sources_table

    cfg = _cfg("field.nx=384", "field.ny=384", "compact.n=0", "extended.n=0",
               "extended.n_multisland=0", "spurious.n=0", "noise.rms_ujy=45")
    field = simulate_field(cfg, np.random.default_rng(8))
    assert field.annotations == []
    _, median, rms = sigma_clipped_stats(field.image, sigma=5.0)
    assert rms == pytest.approx(45e-6, rel=0.03)
    assert abs(median) < 3e-6
    assert len(sources_table([field.to_sample(tmp_path / "x.fits")])) == 0
