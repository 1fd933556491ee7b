"""Real-field SNR cutouts, the evaluation-data exclusions, weighted source mixes, SNR views."""

import numpy as np
import pytest
import tensorflow as tf
from astropy.io import fits

from ssl_backbones.augment import snr_preprocess, two_snr_views
from ssl_backbones.config import AugmentConfig, load_pretrain_config
from ssl_backbones.data import load_pretrain_data
from ssl_backbones.errors import PretrainConfigError
from ssl_backbones.fields import background_rms, find_images, is_excluded, load_field_cutouts
from ssl_backbones.radio_input import REFERENCE_BEAM_PIX
from ssl_backbones.sources import check_sources, folder_cutouts, load_mix


def _field(path, n=300, rms=2e-4, beam_pix=3.0, seed=0, sources=True):
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    # Noise correlated over the beam, as in a real image (white noise would be smoothed by
    # the resampling).
    noise = ndimage.gaussian_filter(rng.normal(0, 1, (n, n)), beam_pix / 2.355)
    img = (1e-5 + rms * noise / noise.std()).astype(np.float32)
    if sources:
        yy, xx = np.mgrid[:n, :n]
        for cy, cx in rng.uniform(40, n - 40, (6, 2)):
            img += 50 * rms * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * 1.3 ** 2))
    hdr = fits.Header()
    pix = 1.8 / 3600
    hdr.update(CDELT1=-pix, CDELT2=pix, BMAJ=beam_pix * pix, BMIN=beam_pix * pix)
    fits.writeto(path, img, hdr)
    return path


def test_evaluation_images_are_never_pretraining_inputs(tmp_path):
    for name in ("lotss_dr1_P218+55_cutout200.fits", "parkes_chipass_1904-66_SIN.fits",
                 "wsrt_abell2255_pybdsf_ch0_I.fits"):
        assert is_excluded(tmp_path / "fields" / name)
    assert is_excluded(tmp_path / "extended" / "mirabest_first" / "100_1.fits")
    assert is_excluded(tmp_path / "extended" / "mirabest_test" / "100_132.818+008.456.fits")
    assert is_excluded(tmp_path / "extended" / "mirabest_test")
    assert not is_excluded(tmp_path / "fields" / "atca_scorpio_S17Field.fits")
    (tmp_path / "fields").mkdir()
    (tmp_path / "extended" / "mirabest_first").mkdir(parents=True)
    keep = _field(tmp_path / "fields" / "atca_scorpio_S17Field.fits", n=64, sources=False)
    _field(tmp_path / "fields" / "lotss_dr1_P218+55_cutout200.fits", n=64, sources=False)
    _field(tmp_path / "extended" / "mirabest_first" / "100_x.fits", n=64, sources=False)
    (tmp_path / "extended" / "mirabest_test").mkdir()
    _field(tmp_path / "extended" / "mirabest_test" / "200_y.fits", n=64, sources=False)
    assert find_images([tmp_path]) == [keep]
    assert find_images([tmp_path / "extended" / "mirabest_test"]) == []
    # Named directly as a folder of cutouts, evaluation images are refused, not read.
    with pytest.raises(PretrainConfigError, match="evaluation"):
        folder_cutouts(tmp_path / "extended" / "mirabest_test", 32)
    with pytest.raises(PretrainConfigError, match="evaluation"):
        load_pretrain_data([tmp_path / "extended" / "mirabest_test"], 32, 4, 0)


def test_background_and_rms_maps_recover_the_noise():
    rng = np.random.default_rng(3)
    img = rng.normal(5.0, 2.0, (256, 256)).astype(np.float32)
    img[100:104, 100:104] += 500.0  # a bright source must not raise the rms
    bg, rms = background_rms(img, box=64)
    assert np.median(bg) == pytest.approx(5.0, abs=0.1)
    assert np.median(rms) == pytest.approx(2.0, rel=0.05) and rms.max() < 2.3


def test_field_cutouts_are_in_noise_units_at_the_reference_sampling(tmp_path):
    path = _field(tmp_path / "f.fits", beam_pix=3.0)
    cut, used = load_field_cutouts([path], 64, per_image=20, seed=0)
    assert used == [path] and cut.shape[1:] == (64, 64) and 4 <= len(cut) <= 20
    noise = cut[np.abs(cut) < 5]
    assert np.std(noise) == pytest.approx(1.0, rel=0.1)
    # The centred cutouts hold a source peak at their centre (the sources are ~50 sigma).
    assert cut[:, 28:36, 28:36].max() > 20
    # A source of 1.3 px sigma at 3 px per beam is 1.3 * REFERENCE_BEAM_PIX / 3 px wide after
    # resampling: its half-maximum width in the brightest cutout tells the zoom was applied.
    best = cut[np.argmax(cut.reshape(len(cut), -1).max(1))]
    above = (best > best.max() / 2).sum()
    width = 2.355 * 1.3 * REFERENCE_BEAM_PIX / 3.0
    assert above == pytest.approx(np.pi * (width / 2) ** 2, rel=0.35)


def test_weighted_mix_draws_each_source_by_weight(tmp_path, make_cutouts):
    real = tmp_path / "real"
    real.mkdir()
    _field(real / "a.fits")
    folder = make_cutouts(tmp_path / "sim", 12, size=48)
    sources = [{"kind": "fields", "path": str(real), "weight": 3},
               {"kind": "folder", "path": str(folder), "weight": 1}]
    images, files, summary = load_mix(sources, 48, seed=0, per_image=16, mix_size=40)
    assert images.shape == (40, 48, 48, 1)
    assert [s["used"] for s in summary] == [30, 10]
    assert len(files) == 13
    with pytest.raises(PretrainConfigError, match="kind"):
        check_sources([{"kind": "web", "path": "x"}])
    with pytest.raises(PretrainConfigError, match="weight"):
        check_sources([{"kind": "folder", "path": "x", "weight": 0}])


def test_snr_views_are_seeded_and_use_the_fixed_stretches():
    rng = np.random.default_rng(0)
    x = rng.normal(0, 1, (4, 80, 80, 1)).astype(np.float32)
    x[:, 38:42, 38:42] = 100.0
    x[0, 0, 0] = np.nan
    seed = tf.constant([3, 4], tf.int64)
    a1, b1 = two_snr_views(x, seed, AugmentConfig(), 48)
    a2, _ = two_snr_views(x, seed, AugmentConfig(), 48)
    assert a1.shape == (4, 48, 48, 3) and np.array_equal(a1.numpy(), a2.numpy())
    assert not np.array_equal(a1.numpy(), b1.numpy())
    assert 0.0 <= float(tf.reduce_min(a1)) and float(tf.reduce_max(a1)) <= 1.0
    # Deterministic input: the centred crop through snr_channels (100 sigma -> top of channel 1
    # is asinh(100/3)/asinh(1000/3), channel 2 saturates at 50 sigma).
    p = snr_preprocess(x[..., 0], 40).numpy()
    assert p.shape == (4, 40, 40, 3)
    assert p[1, 20, 20, 2] == pytest.approx(1.0)
    assert p[1, 20, 20, 1] == pytest.approx(np.arcsinh(100 / 3) / np.arcsinh(1000 / 3),
                                            rel=1e-5)


def test_snr_config_options_are_checked():
    cfg = load_pretrain_config(None, ["data.input=snr3-v1", "data.sources=[{kind: mirabest, "
                                      "path: mb, weight: 2}]", "data.sources.0.weight=0.5"])
    assert cfg.data.sources[0]["weight"] == 0.5
    with pytest.raises(PretrainConfigError, match="data.input"):
        load_pretrain_config(None, ["data.input=jpeg"])
    with pytest.raises(PretrainConfigError, match="needs data.input"):
        load_pretrain_config(None, ["data.sources=[{kind: mirabest, path: mb}]"])
    with pytest.raises(PretrainConfigError, match="index"):
        load_pretrain_config(None, ["data.input=snr3-v1", "data.sources=[]",
                                    "data.sources.2.path=x"])
