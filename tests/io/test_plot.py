"""PNG overview: block-averaged image, contours by class, with and without WCS."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.wcs import WCS
from matplotlib.image import imread

from caesar_mrcnn.classes import CLASS_COLOURS
from caesar_mrcnn.data.dataset import Annotation
from caesar_mrcnn.io.plot import overview_image, plot_detections


def test_overview_is_nan_aware_block_mean():
    data = np.arange(35, dtype=np.float32).reshape(5, 7)
    data[0, 0] = np.nan
    small = overview_image(data, data.shape, 2)
    assert small.shape == (3, 4)
    assert small[0, 0] == pytest.approx(np.nanmean(data[0:2, 0:2]))
    assert small[2, 3] == pytest.approx(data[4, 6])
    np.testing.assert_array_equal(overview_image(data, data.shape, 1), data)


@pytest.mark.parametrize("with_wcs", [True, False])
def test_png_shows_class_colours(tmp_path, with_wcs):
    rng = np.random.default_rng(0)
    data = rng.normal(0, 1, (300, 260)).astype(np.float32)
    mask = np.zeros((40, 40), bool)
    mask[5:35, 5:35] = True
    objs = [Annotation("extended", (100, 100, 140, 140), mask)]
    wcs = None
    if with_wcs:
        wcs = WCS(naxis=2)
        wcs.wcs.ctype = ["RA---SIN", "DEC--SIN"]
        wcs.wcs.crval = [150.0, -30.0]
        wcs.wcs.crpix = [130, 150]
        wcs.wcs.cdelt = [-2 / 3600, 2 / 3600]
    out = tmp_path / "p.png"
    plot_detections(out, data, data.shape, objs, wcs, max_pixels=128)
    img = imread(out)[..., :3]
    # the contour colour of the class is present (cyan: no red, full green and blue)
    cyan = (img[..., 0] < 0.2) & (img[..., 1] > 0.8) & (img[..., 2] > 0.8)
    assert CLASS_COLOURS["extended"] == "cyan" and cyan.sum() > 50
    assert [p.name for p in tmp_path.iterdir()] == ["p.png"]
