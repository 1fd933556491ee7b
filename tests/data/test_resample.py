"""Resampling to the detector's beam sampling and back (caesar_mrcnn.data.resample)."""

import numpy as np
import pytest

from caesar_mrcnn.data.dataset import Annotation
from caesar_mrcnn.data.resample import (
    native_beam_pix,
    resize,
    resize_mask,
    zoom_annotation,
    zoomed_shape,
)
from caesar_mrcnn.io.fits import Beam
from ssl_backbones.radio_input import resample_factor


def _gaussian(shape, x0, y0, sigma):
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    return np.exp(-((xx - x0) ** 2 + (yy - y0) ** 2) / (2 * sigma ** 2)).astype(np.float32)


def test_resample_factor_targets_the_trained_sampling():
    assert resample_factor(2.5, 5.0) == pytest.approx(2.0)
    assert resample_factor(10.0, 5.0) == pytest.approx(0.5)
    assert resample_factor(5.3, 5.0) == 1.0  # within the tolerance: native pixels
    assert resample_factor(None, 5.0) == 1.0 and resample_factor(float("nan"), 5.0) == 1.0


def test_native_beam_pix_is_the_geometric_mean_fwhm():
    class Img:
        beam = Beam(6.0 / 3600, 4.0 / 3600, 0.0)
        pixel_scale_deg = (1.5 / 3600, 1.5 / 3600)

    assert native_beam_pix(Img()) == pytest.approx(np.sqrt(24.0) / 1.5)

    class NoBeam:
        beam = None
        pixel_scale_deg = (1.0, 1.0)

    assert native_beam_pix(NoBeam()) is None


@pytest.mark.parametrize("zoom", [2.0, 5.0 / 3.0, 0.5])
def test_round_trip_keeps_flux_position_and_mask(zoom):
    shape = (120, 100)
    img = _gaussian(shape, 47.3, 61.8, 4.3)  # a 10-pixel beam, sampled by 5 after zoom 0.5
    up = resize(img, zoomed_shape(shape, zoom))
    back = resize(up, shape)
    # a smooth source survives the round trip (bilinear up, area-average down)
    np.testing.assert_allclose(back, img, atol=0.08)
    yy, xx = np.mgrid[:up.shape[0], :up.shape[1]]
    cx, cy = (up * xx).sum() / up.sum(), (up * yy).sum() / up.sum()
    # pixel centres: x_new + 0.5 = zoom * (x_old + 0.5)
    assert (cx + 0.5) / zoom - 0.5 == pytest.approx(47.3, abs=0.15)
    assert (cy + 0.5) / zoom - 0.5 == pytest.approx(61.8, abs=0.15)
    mask = img > 0.2
    ann = Annotation.from_full_mask("compact", mask)
    zoomed = zoom_annotation(ann, zoom, zoomed_shape(shape, zoom))
    restored = resize_mask(zoomed.full_mask(zoomed_shape(shape, zoom)), shape)
    # equal up to the border pixels of the mask
    assert np.count_nonzero(restored ^ mask) <= 0.25 * np.count_nonzero(mask)
    assert np.count_nonzero(restored & mask) >= 0.9 * np.count_nonzero(mask)


def test_blank_pixels_stay_blank():
    img = np.ones((40, 40), np.float32)
    img[:, :10] = np.nan
    up = resize(img, (80, 80))
    assert np.isnan(up[:, :18]).all() and np.isfinite(up[:, 22:]).all()
    assert np.nanmax(np.abs(up - 1.0)) < 1e-6
