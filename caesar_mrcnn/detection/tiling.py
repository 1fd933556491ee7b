"""Square, overlapping tiles over a large image, and what a tile's model output becomes.

A survey mosaic does not fit a network in one piece, so inference runs on square tiles that
overlap by ``overlap`` pixels; :func:`detections_from_output` turns one tile's model output
into detections in image pixels. Their merge across tiles is
:mod:`caesar_mrcnn.detection.merge`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from caesar_mrcnn.classes import CLASS_NAMES, class_name
from caesar_mrcnn.data.dataset import Annotation


@dataclass(frozen=True)
class Tile:
    """One window of the tile grid.

    Attributes
    ----------
    index : int
        Position in the grid (row-major); fixes the order of detections so that any split of
        tiles over processes merges to the same result.
    y0, x0, y1, x1 : int
        Window in image pixels (0-based, end exclusive), clipped to the image.
    """

    index: int
    y0: int
    x0: int
    y1: int
    x1: int

    @property
    def window(self) -> tuple[int, int, int, int]:
        """``(y0, x0, y1, x1)``."""
        return (self.y0, self.x0, self.y1, self.x1)

    @property
    def shape(self) -> tuple[int, int]:
        """``(height, width)`` of the window in pixels."""
        return (self.y1 - self.y0, self.x1 - self.x0)


def tile_starts(n: int, tile: int, overlap: int) -> np.ndarray:
    """Start offsets of tiles of length ``tile`` along an axis of length ``n``.

    Consecutive tiles overlap by at least ``overlap`` pixels; the last tile ends at ``n`` so that
    every tile is full-sized whenever ``n >= tile`` (its overlap with the previous one may then
    be larger).
    """
    if tile <= 0 or not 0 <= overlap < tile:
        raise ValueError(f"need tile > 0 and 0 <= overlap < tile, got tile={tile}, "
                         f"overlap={overlap}")
    if n <= tile:
        return np.zeros(1, dtype=np.int64)
    step = tile - overlap
    starts = np.arange(0, n - tile, step, dtype=np.int64)
    return np.append(starts, n - tile)


def tile_grid(shape: tuple[int, int], tile: int = 256, overlap: int = 64) -> list[Tile]:
    """The tiles covering an image of ``shape = (ny, nx)`` pixels, row-major.

    Parameters
    ----------
    shape : tuple of int
        Image size ``(ny, nx)`` in pixels.
    tile : int
        Tile side in pixels (the network input size).
    overlap : int
        Minimum overlap of neighbouring tiles in pixels; sources smaller than this are whole in
        at least one tile.
    """
    ny, nx = (int(v) for v in shape)
    ys = tile_starts(ny, tile, overlap)
    xs = tile_starts(nx, tile, overlap)
    tiles = []
    for iy, y0 in enumerate(ys):
        for ix, x0 in enumerate(xs):
            tiles.append(Tile(iy * len(xs) + ix, int(y0), int(x0), int(min(y0 + tile, ny)),
                              int(min(x0 + tile, nx))))
    return tiles


def detections_from_output(output: dict, index: int, tile: Tile, image_shape: tuple[int, int],
                           finite: np.ndarray | None = None, score_thr: float = 0.5,
                           mask_thr: float = 0.5) -> list[Annotation]:
    """Detections of one tile as image-frame :class:`Annotation` objects.

    Parameters
    ----------
    output : dict
        Model output for a batch: ``scores [N, D]`` (objectness), ``classes [N, D]`` (1-based
        ids), ``masks [N, D, H, W]`` (probabilities over the padded tile), optional
        ``valid [N, D]`` and ``probs [N, D, len(CLASS_NAMES)]`` (class probabilities).
    index : int
        Row of ``output`` that belongs to ``tile``.
    tile : Tile
        Where the tile lies in the image; masks beyond its window (padding) are dropped.
    image_shape : tuple of int
        ``(ny, nx)``; tile edges on the image border are not interior edges.
    finite : numpy.ndarray of bool, optional
        ``tile.shape`` map of finite pixels; masks are restricted to it.
    score_thr, mask_thr : float
        Minimum detection score, and the mask probability above which a pixel is inside.

    Returns
    -------
    list of Annotation
        Masks cropped to their bounding box, ``attrs``: ``score``, ``tile`` (tile index),
        ``det`` (detection index in the tile), ``cut`` (mask touches an interior tile edge),
        and ``probs`` (class probabilities in :data:`CLASS_NAMES` order) when the output has
        them.
    """
    scores = np.asarray(output["scores"][index], dtype=np.float64)
    classes = np.asarray(output["classes"][index]).astype(np.int64)
    keep = scores >= score_thr
    keep &= (classes >= 1) & (classes <= len(CLASS_NAMES))
    if "valid" in output:
        keep &= np.asarray(output["valid"][index], dtype=bool)
    idx = np.flatnonzero(keep)
    if idx.size == 0:
        return []
    h, w = tile.shape
    masks = np.asarray(output["masks"][index])[idx, :h, :w] > mask_thr
    if finite is not None:
        masks &= finite[None]
    ny, nx = image_shape
    # A mask touching a tile side that is not the image border may be a cut source.
    interior = (tile.y0 > 0, tile.y1 < ny, tile.x0 > 0, tile.x1 < nx)
    cut = np.zeros(idx.size, dtype=bool)
    for is_interior, side in zip(interior, (masks[:, 0, :], masks[:, -1, :],
                                            masks[:, :, 0], masks[:, :, -1])):
        if is_interior:
            cut |= side.any(axis=1)
    rows_any = masks.any(axis=2)
    cols_any = masks.any(axis=1)
    probs = None
    if "probs" in output:
        probs = np.zeros((len(scores), len(CLASS_NAMES)))
        given = np.asarray(output["probs"][index], dtype=np.float64)
        # a model of fewer classes leaves the rest at zero
        probs[:, :min(given.shape[1], len(CLASS_NAMES))] = given[:, :len(CLASS_NAMES)]
    dets = []
    for k, d in enumerate(idx):
        ys = np.flatnonzero(rows_any[k])
        if ys.size == 0:
            continue
        xs = np.flatnonzero(cols_any[k])
        my0, my1, mx0, mx1 = ys[0], ys[-1] + 1, xs[0], xs[-1] + 1
        attrs = {"score": float(scores[d]), "tile": tile.index, "det": int(d),
                 "cut": bool(cut[k])}
        if probs is not None:
            attrs["probs"] = probs[d].copy()
        dets.append(Annotation(
            class_name(classes[d]),
            (tile.y0 + my0, tile.x0 + mx0, tile.y0 + my1, tile.x0 + mx1),
            masks[k, my0:my1, mx0:mx1].copy(), attrs))
    return dets


def crop_mask(ann: Annotation, win: tuple[int, int, int, int]) -> np.ndarray:
    """The part of ``ann``'s mask inside ``win`` (zeros where it has no pixels), as bool."""
    y0, x0, y1, x1 = win
    out = np.zeros((y1 - y0, x1 - x0), dtype=bool)
    ay0, ax0, ay1, ax1 = ann.bbox
    cy0, cx0, cy1, cx1 = max(y0, ay0), max(x0, ax0), min(y1, ay1), min(x1, ax1)
    if cy1 > cy0 and cx1 > cx0:
        out[cy0 - y0:cy1 - y0, cx0 - x0:cx1 - x0] = ann.mask[cy0 - ay0:cy1 - ay0,
                                                             cx0 - ax0:cx1 - ax0]
    return out


