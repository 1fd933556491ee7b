"""Gaussian algebra of the simulator against brute-force numpy references."""

import numpy as np
import pytest
from scipy.signal import fftconvolve

from caesar_mrcnn.sim import beam as gb


@pytest.mark.parametrize("pa", [0.0, 30.0, 95.0, 160.0])
def test_covariance_shape_round_trip(pa):
    maj, mnr, pa_back = gb.shape_of(gb.covariance(7.0, 3.0, pa))
    assert maj == pytest.approx(7.0)
    assert mnr == pytest.approx(3.0)
    assert pa_back == pytest.approx(pa % 180.0)


def test_position_angle_is_east_of_north():
    # PA 90 deg points east, i.e. towards -x (RA grows to the left): covariance along x.
    cov = gb.covariance(10.0, 0.0, 90.0)
    assert cov[0, 0] > 0 and cov[1, 1] == pytest.approx(0.0, abs=1e-12)
    img = gb.gaussian_image(np.arange(-20, 21)[None, :], np.arange(-20, 21)[:, None], 0, 0, 1.0,
                            gb.covariance(10.0, 4.0, 90.0))
    # half maximum reached at +-5 pixels along x, +-2 along y
    assert img[20, 25] == pytest.approx(0.5, rel=1e-6)
    assert img[22, 20] == pytest.approx(0.5, rel=1e-6)


def test_area_is_integral_of_unit_peak_gaussian():
    cov = gb.covariance(6.0, 4.0, 40.0)
    y, x = np.mgrid[-40:41, -40:41]
    img = gb.gaussian_image(x, y, 0.0, 0.0, 1.0, cov)
    assert img.sum() == pytest.approx(gb.area(cov), rel=1e-6)
    assert gb.area(cov) == pytest.approx(np.pi * 6 * 4 / (4 * np.log(2)))


def test_convolution_adds_covariances_and_conserves_flux():
    beam = gb.covariance(6.0, 5.0, 30.0)
    src = gb.covariance(8.0, 3.0, 120.0)
    y, x = np.mgrid[-60:61, -60:61]
    flux = 2.5
    # intrinsic source (unit = flux per pixel) convolved with the beam (unit peak) -> Jy/beam
    intrinsic = gb.gaussian_image(x, y, 0, 0, flux / gb.area(src), src)
    kernel = gb.gaussian_image(x, y, 0, 0, 1.0, beam)
    conv = fftconvolve(intrinsic, kernel, mode="same")
    expected_peak = gb.peak_from_flux(flux, src, beam)
    assert conv.max() == pytest.approx(expected_peak, rel=2e-3)
    analytic = gb.gaussian_image(x, y, 0, 0, expected_peak, src + beam)
    np.testing.assert_allclose(conv, analytic, atol=2e-3 * expected_peak)
    assert conv.sum() / gb.area(beam) == pytest.approx(flux, rel=1e-3)
    assert gb.flux_from_peak(expected_peak, src, beam) == pytest.approx(flux)


def test_transfer_function_matches_fft_of_kernel():
    cov = gb.covariance(5.0, 3.0, 60.0)
    shape = (64, 48)
    y = np.fft.fftfreq(shape[0]) * shape[0]
    x = np.fft.fftfreq(shape[1]) * shape[1]
    kernel = gb.gaussian_image(x[None, :], y[:, None], 0, 0, 1.0, cov)
    kernel /= kernel.sum()
    ref = np.fft.rfft2(kernel).real
    # The analytic (continuous) transform differs from the sampled kernel only by aliasing.
    np.testing.assert_allclose(gb.transfer_function(shape, cov), ref, atol=2e-4)
