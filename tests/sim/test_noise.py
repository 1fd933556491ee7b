"""Noise of the simulator: level, beam-scale correlation, smooth background."""

import numpy as np
import pytest
from astropy.stats import sigma_clipped_stats

from caesar_mrcnn.sim import beam as gb
from caesar_mrcnn.sim.noise import correlated_noise, smooth_background


@pytest.mark.parametrize("maj,mnr,pa", [(6.0, 5.0, 30.0), (3.0, 2.0, 100.0)])
def test_rms_equals_target(maj, mnr, pa):
    rms = 30e-6
    noise = correlated_noise((512, 512), gb.covariance(maj, mnr, pa), rms,
                             np.random.default_rng(4))
    assert noise.dtype == np.float32
    assert noise.std() / rms == pytest.approx(1.0, abs=0.03)
    _, median, clipped = sigma_clipped_stats(noise, sigma=5.0)
    assert clipped / rms == pytest.approx(1.0, abs=0.03)
    assert abs(median) < 0.05 * rms


def test_noise_is_correlated_at_beam_scale():
    cov = gb.covariance(6.0, 4.0, 30.0)
    noise = correlated_noise((512, 512), cov, 1.0, np.random.default_rng(5)).astype(float)
    spec = np.fft.fft2(noise)
    acf = np.fft.ifft2(np.abs(spec) ** 2).real
    acf /= acf[0, 0]
    # Filtering white noise by a Gaussian of covariance C gives an autocorrelation
    # exp(-d^T C^-1 d / 4).
    inv = np.linalg.inv(cov)
    for dx, dy in [(1, 0), (0, 1), (2, 2), (-3, 1), (4, 0)]:
        d = np.array([dx, dy], float)
        expected = np.exp(-0.25 * d @ inv @ d)
        assert acf[dy % 512, dx % 512] == pytest.approx(expected, abs=0.03)
    assert abs(acf[0, 20]) < 0.03 and abs(acf[20, 0]) < 0.03


def test_seed_determines_noise():
    cov = gb.covariance(4.0, 4.0, 0.0)
    a = correlated_noise((64, 80), cov, 1.0, np.random.default_rng(1))
    b = correlated_noise((64, 80), cov, 1.0, np.random.default_rng(1))
    c = correlated_noise((64, 80), cov, 1.0, np.random.default_rng(2))
    assert a.shape == (64, 80)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_smooth_background_level_and_smoothness():
    bkg = smooth_background((256, 256), 1.0, 100.0, np.random.default_rng(3))
    assert 0.3 < bkg.std() < 2.5
    # smooth: neighbouring pixels differ by a small fraction of the rms
    assert np.abs(np.diff(bkg, axis=1)).max() < 0.2
    assert not smooth_background((8, 8), 0.0, 10.0, np.random.default_rng(0)).any()
