"""DS9 region files of detected sources: one polygon per mask contour, coloured by class.

Polygons are written in the image's own celestial frame (``fk5``/``icrs`` from RADESYS, or
``galactic`` ...) so that DS9 overlays them on the image and on any other image of the same sky.
An image without WCS gets pixel (``image``) polygons and a warning. Each polygon carries the
source name as ``text`` and its class as ``tag``; DS9 can then select or hide classes.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

import numpy as np

from caesar_mrcnn.classes import CLASS_COLOURS
from caesar_mrcnn.data.dataset import Annotation
from caesar_mrcnn.io.atomic import atomic_open

log = logging.getLogger(__name__)


def _signed_area(poly: np.ndarray) -> float:
    """Shoelace area of a closed ``(N, 2)`` (row, col) polygon; the sign gives the winding."""
    r, c = poly[:, 0], poly[:, 1]
    return 0.5 * float(np.dot(r, np.roll(c, -1)) - np.dot(c, np.roll(r, -1)))


def mask_contours(ann: Annotation, tolerance: float = 0.5) -> list[np.ndarray]:
    """Outer contours of an object's mask in image pixels, simplified.

    Parameters
    ----------
    ann : Annotation
        Object with a bbox-cropped mask.
    tolerance : float
        Maximum distance (pixels) between the simplified polygon and the contour.

    Returns
    -------
    list of numpy.ndarray, shape ``(N, 2)``
        One polygon per island, vertices ``(x, y)`` in 0-based pixel coordinates (pixel
        centres at integers), open (last vertex not repeated). Holes are left out.
    """
    from skimage.measure import approximate_polygon, find_contours

    padded = np.pad(ann.mask.astype(np.float32), 1)
    y0, x0 = ann.bbox[0] - 1, ann.bbox[1] - 1
    out = []
    for contour in find_contours(padded, 0.5):
        if len(contour) < 3 or np.any(contour[0] != contour[-1]):
            continue
        # find_contours keeps the inside on one side: outer contours and holes have opposite
        # winding; in (row, col) an outer boundary has negative shoelace area
        if _signed_area(contour) >= 0:
            continue
        poly = approximate_polygon(contour, tolerance)[:-1]
        if len(poly) < 3:
            poly = contour[:-1]
        out.append(np.column_stack([poly[:, 1] + x0, poly[:, 0] + y0]))
    return out


def build_regions(objects: Sequence[Annotation], names: Sequence[str] | None = None,
                  wcs=None, tolerance: float = 0.5):
    """``regions.Regions`` of the objects' contours (sky polygons with a WCS, else pixel).

    Parameters
    ----------
    objects : sequence of Annotation
        Detected objects.
    names : sequence of str, optional
        Text label of each object; default ``attrs["name"]`` or the index.
    wcs : astropy.wcs.WCS, optional
        Celestial WCS of the image.
    tolerance : float
        Polygon simplification tolerance (pixels).
    """
    from regions import PixCoord, PolygonPixelRegion, PolygonSkyRegion, Regions

    regs = []
    for i, ann in enumerate(objects):
        name = str(names[i]) if names is not None else str(ann.attrs.get("name", i))
        meta = {"text": name, "tag": [ann.category]}
        visual = {"color": CLASS_COLOURS[ann.category]}
        for poly in mask_contours(ann, tolerance):
            if wcs is not None:
                sky = wcs.pixel_to_world(poly[:, 0], poly[:, 1])
                regs.append(PolygonSkyRegion(sky, meta=dict(meta), visual=dict(visual)))
            else:
                regs.append(PolygonPixelRegion(PixCoord(poly[:, 0], poly[:, 1]),
                                               meta=dict(meta), visual=dict(visual)))
    return Regions(regs)


def _ds9_frame(wcs) -> str:
    """DS9 name of the celestial frame of ``wcs``."""
    from astropy.wcs.utils import wcs_to_celestial_frame

    name = wcs_to_celestial_frame(wcs).name
    return name if name in ("icrs", "fk5", "fk4", "galactic", "ecliptic") else "icrs"


def write_regions(path: str | os.PathLike, objects: Sequence[Annotation],
                  names: Sequence[str] | None = None, wcs=None, tolerance: float = 0.5) -> int:
    """Write a DS9 region file of the objects' mask contours, atomically.

    An empty ``objects`` gives a valid file with a header and no regions.

    Returns
    -------
    int
        Number of polygons written.
    """
    if wcs is None and objects:
        log.warning("%s: the image has no celestial WCS; regions are in pixel coordinates",
                    path)
    regs = build_regions(objects, names, wcs, tolerance)
    if len(regs):
        text = regs.serialize(format="ds9")
    else:
        frame = "image" if wcs is None else _ds9_frame(wcs)
        text = f"# Region file format: DS9 astropy/regions\n{frame}\n"
    with atomic_open(path, "w") as fh:
        fh.write(text)
    return len(regs)


def read_regions(path: str | os.PathLike):
    """Read a DS9 region file with the ``regions`` library."""
    from regions import Regions

    return Regions.read(str(path), format="ds9")
