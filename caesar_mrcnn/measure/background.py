"""Background and rms maps on a coarse grid of boxes, computed strip by strip.

The same maps serve the detector's input (the image in units of the local noise) and the
measurements (local background and rms of each source), so a source's SNR means the same in
both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage

from caesar_mrcnn.io.windows import read_window


@dataclass
class BackgroundGrid:
    """Background and rms on a coarse grid of ``box`` × ``box`` cells.

    Attributes
    ----------
    bkg, rms : numpy.ndarray, shape ``(nby, nbx)``
        Sigma-clipped background and rms per cell (image unit, e.g. Jy/beam).
    box : int
        Cell side in pixels.
    """

    bkg: np.ndarray
    rms: np.ndarray
    box: int

    def at(self, y: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Background and rms at pixel positions, bilinear between cell centres."""
        coords = np.stack([(np.asarray(y, float) + 0.5) / self.box - 0.5,
                           (np.asarray(x, float) + 0.5) / self.box - 0.5]).reshape(2, -1)
        out = [ndimage.map_coordinates(g, coords, order=1, mode="nearest").reshape(np.shape(y))
               for g in (self.bkg, self.rms)]
        return out[0], out[1]

    def window(self, y0: int, y1: int, x0: int, x1: int) -> tuple[np.ndarray, np.ndarray]:
        """Background and rms maps over the pixels ``[y0:y1, x0:x1]`` (float32)."""
        ys, xs = np.mgrid[y0:y1, x0:x1]
        bkg, rms = self.at(ys, xs)
        return bkg.astype(np.float32), rms.astype(np.float32)


def fill_nan_cells(grid: np.ndarray) -> np.ndarray:
    """Replace NaN cells by the nearest finite cell (all-NaN stays NaN)."""
    bad = ~np.isfinite(grid)
    if not bad.any() or bad.all():
        return grid
    idx = ndimage.distance_transform_edt(bad, return_distances=False, return_indices=True)
    return grid[tuple(idx)]


def background_grid(image: Any, shape: tuple[int, int], box: int = 64, sigma: float = 3.0,
                    min_fraction: float = 0.3) -> BackgroundGrid:
    """Background (SExtractor mode estimator) and rms (MAD std) on a coarse grid.

    Reads one strip of ``box`` rows at a time, so peak memory is ``box * nx`` pixels.

    Parameters
    ----------
    image : numpy.ndarray or LazyImage
        2D image (NaN where invalid).
    shape : tuple of int
        ``(ny, nx)``.
    box : int
        Cell side (pixels); a few beams to a few tens of beams.
    sigma : float
        Sigma-clipping threshold.
    min_fraction : float
        Cells with fewer finite pixels than this fraction take the value of the nearest cell.
    """
    import warnings

    from astropy.stats import SigmaClip
    from astropy.utils.exceptions import AstropyUserWarning
    from photutils.background import MADStdBackgroundRMS, SExtractorBackground

    ny, nx = shape
    nby, nbx = -(-ny // box), -(-nx // box)
    clip = SigmaClip(sigma=sigma, maxiters=5)
    # the pixels are clipped once and both statistics read from what is left
    bkg_est, rms_est = SExtractorBackground(None), MADStdBackgroundRMS(None)
    bkg = np.full((nby, nbx), np.nan)
    rms = np.full((nby, nbx), np.nan)
    for by in range(nby):
        strip = np.full((box, nbx * box), np.nan, dtype=np.float32)
        rows = read_window(image, by * box, (by + 1) * box, 0, nx)
        strip[:rows.shape[0], :nx] = rows
        cells = strip.reshape(box, nbx, box).transpose(1, 0, 2)
        enough = np.isfinite(cells).mean(axis=(1, 2)) >= min_fraction
        if enough.any():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", AstropyUserWarning)
                warnings.simplefilter("ignore", RuntimeWarning)
                kept = clip(cells[enough], axis=(1, 2), masked=True)
                bkg[by, enough] = bkg_est(kept, axis=(1, 2))
                rms[by, enough] = rms_est(kept, axis=(1, 2))
    if not np.isfinite(rms).any():
        # no cell is filled enough (a small or mostly blank image): one estimate over every
        # finite pixel, when there is any
        values = np.concatenate([read_window(image, by * box, (by + 1) * box, 0, nx).ravel()
                                 for by in range(nby)])
        values = values[np.isfinite(values)]
        if values.size >= 2:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", AstropyUserWarning)
                warnings.simplefilter("ignore", RuntimeWarning)
                kept = clip(values, masked=True)
                bkg[:] = float(bkg_est(kept))
                rms[:] = float(rms_est(kept))
    return BackgroundGrid(fill_nan_cells(bkg), fill_nan_cells(rms), box)
