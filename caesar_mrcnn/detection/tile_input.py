"""What a tile of an image becomes before the network, and how the network's masks come back.

A tile is read at the image's native pixels. A noise-aware detector
(:class:`~caesar_mrcnn.data.preprocess.Preprocessor` of kind ``snr``) sees it in units of the
image's background and rms maps, which are computed once per image; a tile never contributes
statistics of its own. The tile is then resampled to the beam sampling the detector was trained
for (:mod:`caesar_mrcnn.data.resample`), and the network's mask probabilities are resampled back
to the native tile before they are thresholded.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from caesar_mrcnn.data.resample import resize, zoomed_shape
from caesar_mrcnn.detection.tiling import Tile


@dataclass(frozen=True)
class TileInput:
    """Turns native tile pixels into network input and network masks into native masks.

    Attributes
    ----------
    preprocess : callable
        A :class:`~caesar_mrcnn.data.preprocess.Preprocessor` or any ``(H, W) -> (H, W, C)``.
    zoom : float
        Network pixels per native pixel (1: the native sampling, always for a preprocessing
        that is not noise-aware).
    background : BackgroundGrid, optional
        The image's background and rms maps (used by a noise-aware preprocessor).
    """

    preprocess: Callable[..., np.ndarray]
    zoom: float = 1.0
    background: Any = None

    @property
    def noise_aware(self) -> bool:
        return bool(getattr(self.preprocess, "is_snr", False))

    def network_shape(self, tile: Tile) -> tuple[int, int]:
        """Shape of the tile at the network's sampling."""
        return zoomed_shape(tile.shape, self.zoom) if self.zoom != 1.0 else tile.shape

    def channels(self, tile: Tile, data: np.ndarray) -> np.ndarray:
        """Network input ``(h, w, C)`` float32 of the tile's native pixels ``data``."""
        if not self.noise_aware:  # per-image steps run at the native sampling (zoom 1)
            img = np.asarray(self.preprocess(data), np.float32)
            return img if img.ndim == 3 else img[..., None]
        noise = (self.background.window(tile.y0, tile.y1, tile.x0, tile.x1)
                 if self.background is not None else None)
        snr = self.preprocess.to_snr(data, noise)
        if self.zoom != 1.0:
            snr = resize(snr, self.network_shape(tile))
        return self.preprocess.stretch(snr)

    def native_masks(self, masks: np.ndarray, tile: Tile) -> np.ndarray:
        """Mask probabilities ``(D, H, W)`` over the padded network tile, as ``(D, h, w)``
        over the native tile."""
        masks = np.asarray(masks, np.float32)
        hz, wz = self.network_shape(tile)
        masks = masks[:, :hz, :wz]
        if self.zoom == 1.0 or masks.shape[0] == 0:
            return masks
        h, w = tile.shape
        return np.stack([resize(m, (h, w)) for m in masks])
