"""Anchor boxes on the P2..P6 feature grids (numpy constants, computed once per image size)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def cell_anchors(size: float, aspect_ratios: Sequence[float]) -> np.ndarray:
    """Anchors ``[A, 4]`` centred on (0, 0): area ``size**2``, height/width = each ratio."""
    ratios = np.asarray(aspect_ratios, dtype=np.float64)
    h = size * np.sqrt(ratios)
    w = size / np.sqrt(ratios)
    return np.stack([-h / 2, -w / 2, h / 2, w / 2], axis=-1)


def grid_anchors(
    grid_h: int, grid_w: int, stride: float, size: float, aspect_ratios: Sequence[float]
) -> np.ndarray:
    """Anchors ``[grid_h * grid_w * A, 4]`` (pixels) of one level, ordered (row, column, ratio).

    Cell ``(i, j)`` covers pixels ``[i*stride, (i+1)*stride)``, so its anchors are centred at
    ``((i + 0.5) * stride, (j + 0.5) * stride)``. The order matches a ``[H, W, A]`` reshape
    of the RPN outputs.
    """
    cy = (np.arange(grid_h) + 0.5) * stride
    cx = (np.arange(grid_w) + 0.5) * stride
    cy, cx = np.meshgrid(cy, cx, indexing="ij")
    shifts = np.stack([cy, cx, cy, cx], axis=-1).reshape(-1, 1, 4)
    return (shifts + cell_anchors(size, aspect_ratios)[None]).reshape(-1, 4).astype(np.float32)


def multilevel_anchors(
    grid_shapes: Sequence[tuple[int, int]],
    strides: Sequence[float],
    sizes: Sequence[float],
    aspect_ratios: Sequence[float],
) -> tuple[np.ndarray, list[int]]:
    """Anchors of all levels concatenated, and the number of anchors of each level.

    Parameters
    ----------
    grid_shapes : sequence of (int, int)
        Feature grid (height, width) of each level, e.g. P2..P6.
    strides : sequence of float
        Stride of each level in pixels.
    sizes : sequence of float
        Anchor size (square root of the area, pixels) of each level.
    aspect_ratios : sequence of float
        Height/width ratios, shared by all levels.

    Returns
    -------
    anchors : numpy.ndarray
        ``[N, 4]`` float32 pixel boxes (y0, x0, y1, x1).
    counts : list of int
        Anchors per level, in order (they sum to N).
    """
    per_level = [
        grid_anchors(h, w, s, size, aspect_ratios)
        for (h, w), s, size in zip(grid_shapes, strides, sizes)
    ]
    return np.concatenate(per_level, axis=0), [len(a) for a in per_level]
