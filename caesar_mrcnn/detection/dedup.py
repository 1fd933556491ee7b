"""One entry per source: class-agnostic removal of objects that sit on other objects.

The detector's non-maximum suppression runs per class, and the merge across tiles joins
detections of the same source only. So one source can come out twice under two classes, e.g. an
FR II radio galaxy as ``extended`` with a ``compact`` entry on its hot spot. :func:`deduplicate`
keeps, of two objects whose masks share at least ``overlap`` of the smaller mask's pixels, the
larger one; of two of about the same size (within 20 %), the higher-scoring one. Given each
object's brightest pixel, an object whose brightest pixel lies inside the mask of a larger,
overlapping extended object (a hot spot drawn mostly outside its galaxy's mask) is joined to
that object.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from caesar_mrcnn.classes import EXTENDED_CLASSES
from caesar_mrcnn.data.dataset import Annotation
from caesar_mrcnn.detection.merge import union_annotation


def _intersections(objects: Sequence[Annotation], boxes: np.ndarray) -> list[tuple[int, int, int]]:
    """``(i, j, shared pixels)`` of every pair of objects whose masks share a pixel."""
    out = []
    order = np.argsort(boxes[:, 0], kind="stable")
    for a_pos, i in enumerate(order):
        yi0, xi0, yi1, xi1 = boxes[i]
        for j in order[a_pos + 1:]:
            yj0, xj0, yj1, xj1 = boxes[j]
            if yj0 >= yi1:
                break
            y0, x0, y1, x1 = max(yi0, yj0), max(xi0, xj0), min(yi1, yj1), min(xi1, xj1)
            if y1 <= y0 or x1 <= x0:
                continue
            mi = objects[i].mask[y0 - yi0:y1 - yi0, x0 - xi0:x1 - xi0]
            mj = objects[j].mask[y0 - yj0:y1 - yj0, x0 - xj0:x1 - xj0]
            shared = int(np.count_nonzero(mi & mj))
            if shared:
                out.append((int(i), int(j), shared))
    return out


def deduplicate(objects: Sequence[Annotation], overlap: float = 0.5,
                peaks: Sequence[tuple[int, int] | None] | None = None) -> list[Annotation]:
    """Drop objects that mostly lie on another object, whatever the classes.

    Parameters
    ----------
    objects : sequence of Annotation
        Merged objects in image pixels (``attrs["score"]`` optional).
    overlap : float
        Fraction of the smaller mask's pixels shared with the other mask at or above which the
        two are one source; 1 or more turns the step off.
    peaks : sequence of (row, column), optional
        Image pixel of each object's brightest mask pixel. An object whose brightest pixel
        lies inside the mask of a larger, overlapping ``extended`` or ``extended-multisland``
        object is a part of that source (a core, a hot spot, a head) however little of its
        mask they share: its mask joins the extended object's (which keeps its class, score
        and probabilities) and it is no entry of its own. Kept apart, its flux density would
        be counted twice, in its own entry and in the extended one that holds its peak.

    Returns
    -------
    list of Annotation
        The kept objects, in their original order (those that took in parts, with the
        united mask).
    """
    objects = list(objects)
    if overlap >= 1.0 or len(objects) < 2:
        return objects
    boxes = np.array([o.bbox for o in objects], dtype=np.int64)
    areas = np.array([o.area for o in objects], dtype=np.int64)
    scores = np.array([float(o.attrs.get("score", 0.0)) for o in objects])
    dropped = np.zeros(len(objects), dtype=bool)
    parts: dict[int, list[int]] = {}
    # strongest claims first: the pair sharing the largest fraction of its smaller mask
    pairs = sorted(_intersections(objects, boxes),
                   key=lambda p: -p[2] / max(min(areas[p[0]], areas[p[1]]), 1))
    for i, j, shared in pairs:
        if dropped[i] or dropped[j]:
            continue
        if shared < overlap * max(min(areas[i], areas[j]), 1):
            part = _part_of(objects, peaks, i, j, areas) if peaks is not None else None
            if part is not None:
                dropped[part] = True
                parts.setdefault(j if part == i else i, []).append(part)
            continue
        similar = min(areas[i], areas[j]) >= 0.8 * max(areas[i], areas[j])
        if similar:
            loser = j if scores[i] >= scores[j] else i
        else:
            loser = j if areas[i] > areas[j] else i
        dropped[loser] = True
    for host, members in parts.items():
        if dropped[host]:  # the host itself went to a third object: so do its parts
            continue
        entry = objects[host]
        objects[host] = union_annotation([entry, *(objects[k] for k in members)],
                                         entry.category, **entry.attrs)
    return [o for o, d in zip(objects, dropped) if not d]


def _part_of(objects: Sequence[Annotation], peaks, i: int, j: int,
             areas: np.ndarray) -> int | None:
    """Of two overlapping objects, the smaller one when its brightest pixel lies inside the
    larger one's mask and the larger one is extended; else None."""
    small, big = (i, j) if areas[i] < areas[j] else (j, i)
    if areas[small] == areas[big] or objects[big].category not in EXTENDED_CLASSES:
        return None
    peak = peaks[small]
    if peak is None:
        return None
    y0, x0, y1, x1 = objects[big].bbox
    r, c = peak
    inside = y0 <= r < y1 and x0 <= c < x1 and bool(objects[big].mask[r - y0, c - x0])
    return small if inside else None
