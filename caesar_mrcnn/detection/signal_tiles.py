"""Where an image holds signal: the tiles worth a model call.

Survey images are mostly noise, and a tile of pure noise costs a model call like any other
while the catalogue keeps nothing from it: an entry needs a peak of ``min_snr`` times the local
rms. :func:`signal_map` marks, from the background and rms maps the run computes anyway, the
parts of the image a kept source can touch:

* **seeds**: pixels whose significance ``(value - background) / rms`` reaches a fraction
  (``seed_fraction``, below 1 because a catalogue entry's SNR is measured with the maps taken
  at its box centre, not at the pixel) of the catalogue's ``min_snr``;
* **islands**: the connected pixels above ``flood_snr`` (3σ, the contour a source's mask
  follows) that hold a seed, so that a large source is marked out to its faint edges;
* **grown** by ``margin`` pixels, for the soft edges of a network mask beyond that contour.

Pixels whose rms is zero or not finite cannot be judged and count as signal. Everything is
computed on cells of ``cell`` × ``cell`` pixels (a cell is marked when any of its pixels is),
one strip of rows at a time, so a 16k² mosaic never sits in memory and the map itself is
``cell²`` times smaller than the image; the cells only ever mark more than the pixels would.

:func:`select_tiles` keeps the tiles of the regular grid that touch a marked cell. The tiles
kept are the very tiles of the full pass, read and resampled the same way, so the network
answers on them exactly as it would there; a skipped tile holds no pixel of a source that could
reach the catalogue.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage

from caesar_mrcnn.detection.tiling import Tile
from caesar_mrcnn.io.windows import read_window

SEED_FRACTION = 0.9
"""Seed threshold as a fraction of the catalogue's ``min_snr``."""

FLOOD_SNR = 3.0
"""Significance (σ) down to which an island holding a seed is followed."""


@dataclass(frozen=True)
class SignalMap:
    """Cells of an image that hold signal.

    Attributes
    ----------
    cells : numpy.ndarray of bool, shape ``(ceil(ny / cell), ceil(nx / cell))``
        True where a cell holds (or lies within the margin of) an island with a seed.
    cell : int
        Cell side in image pixels.
    """

    cells: np.ndarray
    cell: int

    @property
    def fraction(self) -> float:
        """Fraction of the cells marked (0 to 1)."""
        return float(self.cells.mean()) if self.cells.size else 0.0

    def touches(self, y0: int, x0: int, y1: int, x1: int) -> bool:
        """Whether the window ``[y0:y1, x0:x1]`` (image pixels) holds a marked cell."""
        c = self.cell
        return bool(self.cells[y0 // c:-(-y1 // c), x0 // c:-(-x1 // c)].any())


def _axis_weights(n: int, box: int, ncells: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bilinear interpolation along one axis between the centres of ``box``-pixel cells, as
    :meth:`BackgroundGrid.at` does (clamped at the outer centres): lower cell index, upper
    cell index and the upper cell's weight for each of ``n`` pixels."""
    c = np.clip((np.arange(n) + 0.5) / box - 0.5, 0.0, ncells - 1)
    lo = np.floor(c).astype(np.int64)
    hi = np.minimum(lo + 1, ncells - 1)
    return lo, hi, (c - lo).astype(np.float32)


def _strip_maps(background: Any, y0: int, y1: int, nx: int) -> tuple[np.ndarray, np.ndarray]:
    """Background and rms over rows ``[y0:y1]``, all columns, from the coarse grid (float32).

    Separable bilinear interpolation: rows first on the small grid, then a gather along the
    columns, so the cost is linear in the pixels of the strip.
    """
    ylo, yhi, fy = _axis_weights(y1, background.box, background.bkg.shape[0])
    ylo, yhi, fy = ylo[y0:], yhi[y0:], fy[y0:, None]
    xlo, xhi, fx = _axis_weights(nx, background.box, background.bkg.shape[1])
    out = []
    for grid in (background.bkg, background.rms):
        g = np.asarray(grid, np.float32)
        rows = g[ylo] * (1 - fy) + g[yhi] * fy
        out.append(rows[:, xlo] * (1 - fx) + rows[:, xhi] * fx)
    return out[0], out[1]


def _cells_any(mask: np.ndarray, cell: int, ncx: int) -> np.ndarray:
    """``(ceil(h / cell), ncx)`` map: does each cell of ``mask`` hold a True pixel."""
    h, w = mask.shape
    padded = np.zeros((-(-h // cell) * cell, ncx * cell), dtype=bool)
    padded[:h, :w] = mask
    return padded.reshape(padded.shape[0] // cell, cell, ncx, cell).any(axis=(1, 3))


def signal_map(image: Any, shape: tuple[int, int], background: Any, min_snr: float,
               margin: int, cell: int = 8, seed_fraction: float = SEED_FRACTION,
               flood_snr: float = FLOOD_SNR, strip_pixels: int = 1 << 21) -> SignalMap:
    """The cells of an image that a source above ``min_snr`` can touch.

    Parameters
    ----------
    image : numpy.ndarray or LazyImage
        2D image (NaN where blank), read strip by strip.
    shape : tuple of int
        ``(ny, nx)`` pixels.
    background : BackgroundGrid
        The run's background and rms maps (image units).
    min_snr : float
        The catalogue's minimum peak SNR; seeds reach ``seed_fraction * min_snr``.
    margin : int
        Growth of the islands (image pixels).
    cell : int
        Cell side (pixels) of the map.
    seed_fraction, flood_snr : float
        Seed threshold as a fraction of ``min_snr``; significance (σ) down to which islands
        are followed (never above the seed threshold).
    strip_pixels : int
        About how many pixels one strip reads (memory: a few float32 maps of that size).

    Returns
    -------
    SignalMap
    """
    ny, nx = (int(v) for v in shape)
    seed_snr = seed_fraction * min_snr
    flood_snr = min(flood_snr, seed_snr)
    ncy, ncx = -(-ny // cell), -(-nx // cell)
    seed = np.zeros((ncy, ncx), dtype=bool)
    flood = np.zeros((ncy, ncx), dtype=bool)
    rows = max(1, strip_pixels // max(nx, 1) // cell) * cell
    for y0 in range(0, ny, rows):
        y1 = min(y0 + rows, ny)
        data = read_window(image, y0, y1, 0, nx)
        bkg, rms = _strip_maps(background, y0, y1, nx)
        finite = np.isfinite(data)
        judged = np.isfinite(rms) & (rms > 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            snr = np.where(judged, (data - bkg) / np.where(judged, rms, 1), np.inf)
        snr[~finite] = -np.inf
        seed[y0 // cell:-(-y1 // cell)] |= _cells_any(snr >= seed_snr, cell, ncx)
        flood[y0 // cell:-(-y1 // cell)] |= _cells_any(snr >= flood_snr, cell, ncx)
    labels, _ = ndimage.label(flood | seed, structure=np.ones((3, 3), dtype=bool))
    seeded = np.unique(labels[seed])
    islands = np.isin(labels, seeded[seeded > 0])
    grow = -(-int(margin) // cell)
    if grow > 0 and islands.any():
        islands = ndimage.binary_dilation(islands, np.ones((2 * grow + 1,) * 2, dtype=bool))
    return SignalMap(islands, cell)


def select_tiles(tiles: Sequence[Tile], smap: SignalMap) -> list[Tile]:
    """The tiles that touch a marked cell of ``smap``, in their grid order."""
    return [t for t in tiles if smap.touches(t.y0, t.x0, t.y1, t.x1)]


MARGIN_NETWORK_PIX = 16
"""Growth of the islands in pixels at the network's sampling (about three beams for a detector
trained at five pixels per beam): how far a network mask reaches beyond a source's 3σ
contour."""


def tiles_with_signal(image: Any, shape: tuple[int, int], tiles: Sequence[Tile],
                      background: Any, min_snr: float, zoom: float = 1.0) -> list[Tile]:
    """The tiles of a run's grid that can hold a source of peak SNR ``min_snr`` or more.

    Parameters
    ----------
    image, shape, background
        As for :func:`signal_map`.
    tiles : sequence of Tile
        The run's tile grid (image pixels).
    min_snr : float
        The catalogue's minimum peak SNR; 0 keeps every tile (every entry counts then).
    zoom : float
        Network pixels per image pixel (the margin is set at the network's sampling).

    Returns
    -------
    list of Tile
        In grid order.
    """
    if min_snr <= 0:
        return list(tiles)
    margin = int(np.ceil(MARGIN_NETWORK_PIX / max(zoom, 1e-6)))
    return select_tiles(tiles, signal_map(image, shape, background, min_snr, margin))
