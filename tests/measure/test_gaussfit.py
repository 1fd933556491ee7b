"""Gaussian fits of compact sources: exact on noiseless data, unbiased in beam-correlated noise
where the mask sum is not, and errors that match the scatter (Condon 1997)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import ndimage

from caesar_mrcnn.data.dataset import Annotation
from caesar_mrcnn.measure.ellipse import FWHM_PER_SIGMA
from caesar_mrcnn.measure.gaussfit import (
    condon_flux_error,
    fit_gaussian,
    is_resolved,
)
from caesar_mrcnn.measure.sources import beam_fwhm_pix, fit_compact_source, measure_sources

BEAM_SIGMA = 2.0
BEAM_AREA = 2 * math.pi * BEAM_SIGMA ** 2


def gaussian(shape, x0, y0, peak, sa, sb, theta):
    yy, xx = np.mgrid[:shape[0], :shape[1]].astype(float)
    c, s = math.cos(theta), math.sin(theta)
    u = (c * (xx - x0) + s * (yy - y0)) / sa
    v = (-s * (xx - x0) + c * (yy - y0)) / sb
    return peak * np.exp(-0.5 * (u * u + v * v))


def beam_noise(rng, shape, rms):
    """White noise convolved with the beam, rescaled to ``rms``: correlated like an image."""
    field = ndimage.gaussian_filter(rng.normal(size=shape), BEAM_SIGMA, mode="wrap")
    return field * (rms / field.std())


def test_noiseless_fit_recovers_every_parameter():
    img = gaussian((40, 48), 20.3, 17.6, 2.0, 3.5, 2.2, 0.6)
    ys, xs = np.nonzero(img > 0.05)
    fit = fit_gaussian(img[ys, xs], xs, ys, 20.0, 18.0, np.diag([4.0, 4.0]))
    assert fit.ok
    assert (fit.peak, fit.x, fit.y) == pytest.approx((2.0, 20.3, 17.6), rel=1e-4)
    assert fit.fwhm_pix == pytest.approx((3.5 * FWHM_PER_SIGMA, 2.2 * FWHM_PER_SIGMA), rel=1e-4)
    assert fit.volume == pytest.approx(2 * math.pi * 2.0 * 3.5 * 2.2, rel=1e-4)
    c, s = math.cos(0.6), math.sin(0.6)
    major_axis = np.linalg.eigh(fit.cov)[1][:, 1]
    assert abs(major_axis @ [c, s]) == pytest.approx(1.0, abs=1e-6)


def test_fit_refuses_too_few_or_empty_pixels():
    assert not fit_gaussian(np.ones(5), np.arange(5), np.zeros(5), 2, 0, np.eye(2)).ok
    assert not fit_gaussian(-np.ones(20), np.arange(20), np.zeros(20), 2, 0, np.eye(2)).ok


def test_condon_error_of_a_point_source():
    # major = minor = beam: every effective SNR squared is 2 SNR^2, so
    # (dS/S)^2 = 1/SNR^2 + (1/SNR^2 + 1/SNR^2) = 3 / SNR^2
    got = condon_flux_error(2.0, 10.0, 3.0, 3.0, 3.0)
    assert got == pytest.approx(2.0 * math.sqrt(3.0) / 10.0, rel=1e-12)


def _measure_many(rng, model, mask, n, rms):
    shape = model.shape
    ann = Annotation.from_full_mask("compact", mask)
    rows = []
    for _ in range(n):
        img = (model + beam_noise(rng, shape, rms)).astype(np.float32)
        t = measure_sources([ann], img, shape, beam_area_pix=BEAM_AREA)
        rows.append([t[k][0] for k in ("fitted", "unresolved", "int_flux", "err_int_flux",
                                       "island_flux")])
    return (np.array(c) for c in zip(*rows))


def test_point_sources_at_low_snr_get_unbiased_fluxes_and_matching_errors():
    """SNR-6 point sources in beam-correlated noise, masked at 3 sigma of the model (as the
    simulator's truth): the island sum keeps about half the flux, the fit all of it."""
    rng = np.random.default_rng(7)
    rms, snr = 1e-3, 6.0
    model = gaussian((48, 48), 24.2, 23.7, snr * rms, BEAM_SIGMA, BEAM_SIGMA, 0.0)
    fitted, unresolved, flux, err, island = _measure_many(rng, model, model > 3 * rms, 120, rms)
    true_flux = snr * rms  # a point source: peak (Jy/beam) times one beam
    assert fitted.mean() > 0.95 and unresolved[fitted].mean() > 0.9
    flux, err = flux[fitted] / true_flux, err[fitted] / true_flux
    assert np.median(flux) == pytest.approx(1.0, abs=0.05)
    assert np.median(island / true_flux) < 0.75
    # Condon's error against the measured scatter (robust sigma), correlated noise included
    scatter = 1.4826 * np.median(np.abs(flux - np.median(flux)))
    assert 0.6 < np.median(err) / scatter < 1.6


def test_resolved_sources_keep_their_integrated_flux():
    """Intrinsic FWHM equal to the beam's: twice the beam area, so S = 2 x peak."""
    rng = np.random.default_rng(3)
    rms, peak = 1e-3, 40e-3
    sig = BEAM_SIGMA * math.sqrt(2.0)
    model = gaussian((64, 64), 31.6, 32.3, peak, sig, sig, 0.0)
    fitted, unresolved, flux, _, _ = _measure_many(rng, model, model > 3 * rms, 30, rms)
    assert fitted.all() and not unresolved.any()
    assert np.median(flux) == pytest.approx(2.0 * peak, rel=0.05)


def test_resolved_decision_on_exact_sizes():
    beam = 3.0
    assert not is_resolved(10.0, beam, beam, beam)
    assert is_resolved(100.0, 1.5 * beam, 1.5 * beam, beam)
    assert not is_resolved(3.0, 1.5 * beam, 1.5 * beam, beam)  # too faint to tell


def test_only_compact_single_island_sources_are_fitted():
    shape = (64, 64)
    img = gaussian(shape, 20, 20, 1.0, BEAM_SIGMA, BEAM_SIGMA, 0.0)
    # the extended source is a disk seen through the beam: an extended entry that one
    # Gaussian describes within the noise would be fitted (docs/measurement.md), and in this
    # noiseless image only the rms of a sliver of numerical wings says what "within" means
    yy, xx = np.mgrid[:64, :64]
    disk = (np.hypot(xx - 46, yy - 46) <= 5).astype(float)
    img += ndimage.gaussian_filter(disk, BEAM_SIGMA) / 0.5
    one = Annotation.from_full_mask("compact", np.pad(img[:, :32] > 0.01, ((0, 0), (0, 32))))
    ext = Annotation.from_full_mask("extended", np.pad(img[:, 32:] > 0.01, ((0, 0), (32, 0))))
    t = measure_sources([one, ext], img.astype(np.float32), shape, beam_area_pix=BEAM_AREA)
    assert list(t["fitted"]) == [True, False]
    assert t["int_flux"][0] == pytest.approx(1.0, rel=1e-3)
    assert t["int_flux"][1] == pytest.approx(t["island_flux"][1])
    assert beam_fwhm_pix(BEAM_AREA) == pytest.approx(BEAM_SIGMA * FWHM_PER_SIGMA)
    sums = measure_sources([one], img.astype(np.float32), shape, beam_area_pix=BEAM_AREA,
                           fit_compact=False)
    assert not sums["fitted"][0] and sums["int_flux"][0] == sums["island_flux"][0]
    no_beam = measure_sources([one], img.astype(np.float32), shape)
    assert not no_beam["fitted"][0] and np.isnan(no_beam["int_flux"][0])


def test_a_close_neighbour_does_not_pull_the_fit():
    """Two point sources 2 beams apart, the second 4 times brighter: the grown mask of the first
    reaches into the second, whose pixels must be left out."""
    shape = (48, 64)
    a = gaussian(shape, 24.0, 24.0, 1.0, BEAM_SIGMA, BEAM_SIGMA, 0.0)
    b = gaussian(shape, 33.4, 24.0, 4.0, BEAM_SIGMA, BEAM_SIGMA, 0.0)
    img = (a + b).astype(np.float32)
    # masks split along the valley between the two, as a detector would draw them
    xx = np.arange(shape[1])[None, :]
    left = Annotation.from_full_mask("compact", (img > 0.1) & (xx < 28))
    right = Annotation.from_full_mask("compact", (img > 0.1) & (xx >= 28))
    t = measure_sources([left, right], img, shape, beam_area_pix=BEAM_AREA)
    assert t["fitted"].all()
    assert list(t["int_flux"]) == pytest.approx([1.0, 4.0], rel=0.05)
    alone = fit_compact_source(left, img, shape, 0.0, (24.0, 24.0), np.eye(2) * 4.0,
                               beam_fwhm_pix(BEAM_AREA))
    assert not alone.ok or abs(alone.volume / BEAM_AREA - 1.0) > 0.1
