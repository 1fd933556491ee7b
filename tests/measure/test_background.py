"""The background and rms maps against a plain reference, on noise of known statistics."""

from __future__ import annotations

import numpy as np
import pytest

from caesar_mrcnn.data.preprocess import PreprocessConfig, Preprocessor
from caesar_mrcnn.measure.background import background_grid

BOX = 64
MAD_TO_SIGMA = 1.482602218505602


def _clipped(values: np.ndarray, nsigma: float = 3.0, iters: int = 5) -> np.ndarray:
    """Iterative clipping about the median at ``nsigma`` standard deviations (reference)."""
    kept = values[np.isfinite(values)]
    for _ in range(iters):
        med, std = np.median(kept), np.std(kept)
        inside = np.abs(kept - med) <= nsigma * std
        if inside.all():
            break
        kept = kept[inside]
    return kept


def test_each_cell_holds_the_mode_and_the_mad_of_its_clipped_pixels():
    rng = np.random.default_rng(11)
    img = rng.normal(0.5, 2.0, (2 * BOX, 3 * BOX)).astype(np.float32)
    img[5, 7] = 400.0  # a bright pixel that the clipping must remove
    img[BOX + 3:BOX + 9, 10:20] = np.nan
    grid = background_grid(img, img.shape, box=BOX)
    assert grid.rms.shape == grid.bkg.shape == (2, 3)
    for by in range(2):
        for bx in range(3):
            kept = _clipped(img[by * BOX:(by + 1) * BOX, bx * BOX:(bx + 1) * BOX].ravel())
            med, mean = np.median(kept), np.mean(kept)
            # SExtractor's mode, or the median where the distribution is skewed
            mode = 2.5 * med - 1.5 * mean if abs(mean - med) / np.std(kept) < 0.3 else med
            assert grid.bkg[by, bx] == pytest.approx(mode, rel=1e-4)
            mad = MAD_TO_SIGMA * np.median(np.abs(kept - med))
            assert grid.rms[by, bx] == pytest.approx(mad, rel=1e-5)


def test_on_gaussian_noise_the_rms_reads_sigma():
    rng = np.random.default_rng(12)
    sigma = 2.0
    img = rng.normal(0.0, sigma, (4 * BOX, 4 * BOX)).astype(np.float32)
    grid = background_grid(img, img.shape, box=BOX)
    # the MAD of 4096 pixels scatters by 1.3 % per cell (after clipping), the median of 16
    # cells by about a third of that: the bound is ~4 standard errors
    assert np.median(grid.rms) / sigma == pytest.approx(1.0, abs=0.02)
    assert abs(np.median(grid.bkg)) < 0.05 * sigma


def test_a_mostly_blank_image_gets_one_estimate_from_all_its_pixels():
    rng = np.random.default_rng(13)
    img = np.full((2 * BOX, 2 * BOX), np.nan, np.float32)
    img[::4, ::4] = rng.normal(0.0, 3.0, img[::4, ::4].shape)  # 1/16 finite: no cell qualifies
    grid = background_grid(img, img.shape, box=BOX)
    kept = _clipped(img.ravel())
    mad = MAD_TO_SIGMA * np.median(np.abs(kept - np.median(kept)))
    assert np.all(grid.rms == pytest.approx(mad, rel=1e-5))


def test_the_network_input_is_in_units_of_the_grid():
    rng = np.random.default_rng(14)
    img = rng.standard_t(4, (2 * BOX, 2 * BOX)).astype(np.float32)
    pre = Preprocessor(PreprocessConfig(bkg_box=BOX, beam_pix=0))
    grid = background_grid(img, img.shape, box=BOX)
    bkg, rms = grid.window(0, img.shape[0], 0, img.shape[1])
    np.testing.assert_allclose(pre.to_snr(img), (img - bkg) / rms, rtol=1e-5, atol=1e-6)
