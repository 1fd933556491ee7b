"""PNG overview of the detections: the image in zscale with sky axes, mask contours by class.

A mosaic bigger than ``max_pixels`` on a side is block-averaged strip by strip before plotting,
so the figure never needs the full-resolution image in memory.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from caesar_mrcnn.classes import CLASS_COLOURS, CLASS_NAMES
from caesar_mrcnn.data.dataset import Annotation
from caesar_mrcnn.io.atomic import atomic_path
from caesar_mrcnn.io.regions import mask_contours
from caesar_mrcnn.io.windows import read_window


def overview_image(image: Any, shape: tuple[int, int], factor: int) -> np.ndarray:
    """Image block-averaged by ``factor`` (NaN-aware), read ``factor`` rows at a time."""
    ny, nx = shape
    if factor <= 1:
        return read_window(image, 0, ny, 0, nx).astype(np.float32)
    oy, ox = -(-ny // factor), -(-nx // factor)
    out = np.full((oy, ox), np.nan, dtype=np.float32)
    for j in range(oy):
        strip = np.full((factor, ox * factor), np.nan, dtype=np.float32)
        rows = read_window(image, j * factor, (j + 1) * factor, 0, nx)
        strip[:rows.shape[0], :nx] = rows
        blocks = strip.reshape(factor, ox, factor)
        count = np.isfinite(blocks).sum(axis=(0, 2))
        total = np.nansum(blocks, axis=(0, 2))
        with np.errstate(invalid="ignore", divide="ignore"):
            out[j] = np.where(count > 0, total / count, np.nan)
    return out


def plot_detections(path: str | os.PathLike, image: Any, shape: tuple[int, int],
                    objects: Sequence[Annotation], wcs=None, title: str = "",
                    max_pixels: int = 2048, dpi: int = 120) -> None:
    """Write a PNG of the image with the objects' contours coloured by class, atomically.

    Parameters
    ----------
    path : path-like
        Output PNG.
    image : numpy.ndarray or LazyImage
        The image (NaN where blank).
    shape : tuple of int
        ``(ny, nx)``.
    objects : sequence of Annotation
        Detected objects.
    wcs : astropy.wcs.WCS, optional
        Celestial WCS: RA/Dec axes; pixel axes without it.
    title : str
        Figure title.
    max_pixels : int
        Longest side of the plotted image; larger images are block-averaged.
    dpi : int
        Resolution of the PNG.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    from astropy.visualization import ImageNormalize, ZScaleInterval
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    factor = max(1, math.ceil(max(shape) / max_pixels))
    small = overview_image(image, shape, factor)
    finite = np.isfinite(small)
    norm = None
    if finite.any():
        vmin, vmax = ZScaleInterval().get_limits(small[finite])
        norm = ImageNormalize(vmin=vmin, vmax=vmax)
    fig = Figure(figsize=(8, 8 * small.shape[0] / small.shape[1] + 0.6))
    if wcs is not None:
        sub = wcs[::factor, ::factor] if factor > 1 else wcs
        ax = fig.add_subplot(projection=sub)
        ax.coords[0].set_axislabel("RA")
        ax.coords[1].set_axislabel("Dec")
    else:
        ax = fig.add_subplot()
        ax.set_xlabel("x (pixel)")
        ax.set_ylabel("y (pixel)")
    ax.imshow(small, origin="lower", cmap="gray", norm=norm, interpolation="nearest")
    present = []
    for ann in objects:
        colour = CLASS_COLOURS[ann.category]
        if ann.category not in present:
            present.append(ann.category)
        for poly in mask_contours(ann):
            xs = (np.append(poly[:, 0], poly[0, 0]) + 0.5) / factor - 0.5
            ys = (np.append(poly[:, 1], poly[0, 1]) + 0.5) / factor - 0.5
            ax.plot(xs, ys, color=colour, lw=0.8)
    handles = [Line2D([], [], color=CLASS_COLOURS[c], label=c)
               for c in CLASS_NAMES if c in present]
    if handles:
        ax.legend(handles=handles, loc="upper right", fontsize="small", framealpha=0.6)
    ax.set_xlim(-0.5, small.shape[1] - 0.5)
    ax.set_ylim(-0.5, small.shape[0] - 0.5)
    ax.set_title(title or f"{len(objects)} sources")
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png")
