"""Preprocessing steps against numpy/astropy/scikit-image references."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from astropy.stats import sigma_clipped_stats
from astropy.visualization import ZScaleInterval
from skimage.exposure import equalize_hist

from caesar_mrcnn.data.preprocess import (
    PreprocessConfig,
    Preprocessor,
    histeq,
    minmax,
    sigma_clip,
    subtract_background,
    zscale,
)
from caesar_mrcnn.errors import ConfigError

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "preprocess"


@pytest.fixture
def radio_like():
    """Noise (rms 1e-4) on a 2e-4 background, two sources, a NaN border and an inf pixel."""
    rng = np.random.default_rng(7)
    data = rng.normal(2e-4, 1e-4, size=(64, 80)).astype(np.float32)
    yy, xx = np.mgrid[:64, :80]
    data += (8e-3 * np.exp(-((yy - 30) ** 2 + (xx - 40) ** 2) / 8.0)).astype(np.float32)
    data += (1e-3 * np.exp(-((yy - 12) ** 2 + (xx - 60) ** 2) / 30.0)).astype(np.float32)
    data[:, :5] = np.nan
    data[50, 50] = np.inf
    return data


def test_subtract_background_uses_clipped_median_of_valid(radio_like):
    out = subtract_background(radio_like)
    valid = np.isfinite(radio_like)
    _, median, _ = sigma_clipped_stats(radio_like[valid], sigma=3.0, maxiters=5)
    np.testing.assert_allclose(out[valid], radio_like[valid] - median, rtol=1e-6, atol=1e-9)
    assert np.isnan(out[:, :5]).all()


def test_sigma_clip_bounds(radio_like):
    valid = np.isfinite(radio_like)
    _, median, std = sigma_clipped_stats(radio_like[valid], sigma=3.0, maxiters=5)
    out = sigma_clip(radio_like, low=2.0, high=10.0)
    np.testing.assert_allclose(out[valid].min(), median - 2.0 * std, rtol=1e-5)
    np.testing.assert_allclose(out[valid].max(), median + 10.0 * std, rtol=1e-5)
    inside = valid & (radio_like > median - 2 * std) & (radio_like < median + 10 * std)
    np.testing.assert_array_equal(out[inside], radio_like[inside])
    assert np.isnan(out[~valid]).all()


@pytest.mark.parametrize("contrast", [0.25, 0.05])
def test_zscale_matches_astropy_interval(radio_like, contrast):
    valid = np.isfinite(radio_like)
    vmin, vmax = ZScaleInterval(contrast=contrast).get_limits(radio_like[valid])
    expected = np.clip((radio_like[valid].astype(np.float64) - vmin) / (vmax - vmin), 0, 1)
    out = zscale(radio_like, contrast=contrast)
    np.testing.assert_allclose(out[valid], expected, atol=1e-6)
    assert np.isnan(out[~valid]).all()
    assert out[valid].min() >= 0.0 and out[valid].max() <= 1.0


def test_minmax_over_valid_pixels_only(radio_like):
    valid = np.isfinite(radio_like)
    lo, hi = radio_like[valid].min(), radio_like[valid].max()
    out = minmax(radio_like)
    np.testing.assert_allclose(out[valid], (radio_like[valid] - lo) / (hi - lo), atol=1e-6)
    assert out[valid].min() == 0.0 and out[valid].max() == 1.0


def test_histeq_ignores_blank_pixels(radio_like):
    valid = np.isfinite(radio_like)
    out = histeq(radio_like, nbins=64)
    filled = np.where(valid, radio_like, 0.0)
    np.testing.assert_allclose(out[valid], equalize_hist(filled, nbins=64, mask=valid)[valid],
                               atol=1e-6)
    # a monotonic stretch: brighter input never maps lower
    order = np.argsort(radio_like[valid], kind="stable")
    assert (np.diff(out[valid][order]) >= 0).all()
    assert np.isnan(out[~valid]).all()


@pytest.mark.parametrize("name, channels", [("zscale.yaml", 1), ("caesar3ch.yaml", 3)])
def test_shipped_configs(radio_like, name, channels):
    prep = Preprocessor.from_yaml(CONFIGS / name)
    assert prep.num_channels == channels
    out, valid = prep.apply(radio_like)
    assert out.shape == (*radio_like.shape, channels) and out.dtype == np.float32
    np.testing.assert_array_equal(valid, np.isfinite(radio_like))
    assert (out[~valid] == 0).all() and np.isfinite(out).all()
    assert out.min() >= 0.0 and out.max() <= 1.0
    for c in range(channels):
        assert out[..., c][valid].max() == pytest.approx(1.0)
    np.testing.assert_array_equal(prep(radio_like), out)


def test_caesar3ch_channels_are_the_documented_steps(radio_like):
    prep = Preprocessor.from_yaml(CONFIGS / "caesar3ch.yaml")
    out = prep(radio_like)
    base = sigma_clip(subtract_background(radio_like), low=5.0, high=30.0)
    valid = np.isfinite(radio_like)
    np.testing.assert_allclose(out[..., 0][valid], minmax(zscale(base, 0.25))[valid], atol=1e-6)
    np.testing.assert_allclose(out[..., 1][valid], minmax(zscale(base, 0.05))[valid], atol=1e-6)
    np.testing.assert_allclose(out[..., 2][valid], histeq(base)[valid], atol=1e-6)


def test_yaml_order_is_respected(radio_like, tmp_path):
    a = tmp_path / "a.yaml"
    a.write_text("kind: steps\nsteps:\n"
                 "  - {name: sigma_clip, low: 1.0, high: 1.0}\n  - {name: minmax}\n")
    b = tmp_path / "b.yaml"
    b.write_text("kind: steps\nsteps:\n"
                 "  - {name: minmax}\n  - {name: sigma_clip, low: 1.0, high: 1.0}\n")
    out_a = Preprocessor.from_yaml(a)(radio_like)[..., 0]
    out_b = Preprocessor.from_yaml(b)(radio_like)[..., 0]
    valid = np.isfinite(radio_like)
    np.testing.assert_allclose(out_a[valid], minmax(sigma_clip(radio_like, 1.0, 1.0))[valid])
    np.testing.assert_allclose(out_b[valid], sigma_clip(minmax(radio_like), 1.0, 1.0)[valid])
    assert out_a[valid].max() == pytest.approx(1.0) and out_b[valid].max() < 0.9


def test_all_blank_and_constant_images():
    prep = Preprocessor.from_yaml(CONFIGS / "caesar3ch.yaml")
    blank = np.full((8, 8), np.nan, np.float32)
    out, valid = prep.apply(blank)
    assert not valid.any() and (out == 0).all()
    flat = np.ones((8, 8), np.float32)
    assert (prep(flat) == 0).all()


@pytest.mark.parametrize("steps, key", [
    ([{"name": "blur"}], "steps[0].name"),
    ([{"name": "zscale", "contrsat": 0.2}], "steps[0].contrsat"),
    ([{"name": "zscale", "contrast": "high"}], "steps[0].contrast"),
    ([{"name": "channels", "channels": [[{"name": "channels", "channels": []}]]}],
     "steps[0].channels[0][0]"),
])
def test_bad_steps_raise_config_error(steps, key):
    with pytest.raises(ConfigError, match=key.replace("[", r"\[").replace("]", r"\]")):
        Preprocessor(PreprocessConfig(steps=steps))


def test_bad_yaml_names_the_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("steps:\n  - {name: zscale, contrast: 0.2, gamma: 2}\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml.*gamma"):
        Preprocessor.from_yaml(bad)
