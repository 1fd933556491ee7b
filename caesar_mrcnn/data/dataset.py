"""The one in-memory representation of labelled radio images, whatever format they came from.

Readers of COCO JSON and of the original caesar JSON lists produce :class:`Sample` objects;
training, evaluation and the simulator's writers consume them. Masks are stored cropped to the
object's bounding box, so a 4096×4096 field with thousands of sources stays small in memory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from caesar_mrcnn.classes import CLASS_NAMES


@dataclass
class Annotation:
    """One labelled object.

    Attributes
    ----------
    category : str
        Class name, one of :data:`caesar_mrcnn.classes.CLASS_NAMES`.
    bbox : tuple of int
        ``(y0, x0, y1, x1)`` in image pixels (0-based, end exclusive) enclosing the mask.
    mask : numpy.ndarray of bool, shape ``(y1 - y0, x1 - x0)``
        Footprint inside ``bbox``.
    attrs : dict
        Optional ground-truth properties, e.g. ``name``, ``snr``, ``peak_jyb`` (Jy/beam),
        ``flux_jy`` (Jy), ``x``, ``y`` (true pixel position), ``ra``, ``dec`` (deg),
        ``nislands``, ``major_arcsec``, ``minor_arcsec``, ``pa_deg``, ``family``.
    """

    category: str
    bbox: tuple[int, int, int, int]
    mask: np.ndarray
    attrs: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.category not in CLASS_NAMES:
            raise ValueError(f"unknown class {self.category!r}")
        y0, x0, y1, x1 = (int(v) for v in self.bbox)
        self.bbox = (y0, x0, y1, x1)
        self.mask = np.asarray(self.mask, dtype=bool)
        if self.mask.shape != (y1 - y0, x1 - x0):
            raise ValueError(f"mask shape {self.mask.shape} does not match bbox {self.bbox}")

    @property
    def area(self) -> int:
        """Number of mask pixels."""
        return int(self.mask.sum())

    def full_mask(self, shape: tuple[int, int]) -> np.ndarray:
        """The mask pasted into a full image of ``shape`` (clipped to it)."""
        out = np.zeros(shape, dtype=bool)
        y0, x0, y1, x1 = self.bbox
        cy0, cx0 = max(y0, 0), max(x0, 0)
        cy1, cx1 = min(y1, shape[0]), min(x1, shape[1])
        if cy1 > cy0 and cx1 > cx0:
            out[cy0:cy1, cx0:cx1] = self.mask[cy0 - y0:cy1 - y0, cx0 - x0:cx1 - x0]
        return out

    @classmethod
    def from_full_mask(cls, category: str, mask: np.ndarray, **attrs: Any) -> Annotation:
        """Build from a full-image boolean mask (cropped to its bounding box)."""
        mask = np.asarray(mask, dtype=bool)
        ys = np.flatnonzero(mask.any(axis=1))
        xs = np.flatnonzero(mask.any(axis=0))
        if ys.size == 0:
            raise ValueError("empty mask")
        y0, y1, x0, x1 = ys[0], ys[-1] + 1, xs[0], xs[-1] + 1
        return cls(category, (y0, x0, y1, x1), mask[y0:y1, x0:x1].copy(), dict(attrs))


@dataclass
class Sample:
    """One labelled image.

    Attributes
    ----------
    image_path : pathlib.Path
        FITS file of the image.
    shape : tuple of int
        ``(ny, nx)`` in pixels.
    annotations : list of Annotation
        Labelled objects (may be empty).
    meta : dict
        Image metadata: ``rms`` and ``bkg`` (Jy/beam), ``bmaj``, ``bmin`` (arcsec), ``bpa``
        (deg), ``dx``, ``dy`` (arcsec/pixel), ``telescope``, ``image_id``.
    """

    image_path: Path
    shape: tuple[int, int]
    annotations: list[Annotation] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    def class_counts(self) -> dict[str, int]:
        """Number of objects of each class."""
        counts = dict.fromkeys(CLASS_NAMES, 0)
        for ann in self.annotations:
            counts[ann.category] += 1
        return counts
