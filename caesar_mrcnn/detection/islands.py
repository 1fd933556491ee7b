"""Sources the network leaves out: significant islands that no catalogue entry covers.

The network decides how a source's parts group, its mask and its class; it is not allowed to
decide that a significant source is not there. A classical finder's rule sets the floor: every
island of connected pixels at least ``flood_snr`` above the background, holding a seed pixel of
``seed_snr`` or more (the catalogue's ``min_snr``), is a source. :func:`uncovered_islands`
returns, as catalogue objects, the islands of which no entry's mask holds a single pixel, so
the network's entries are never split, shrunk or duplicated by the rule; it only adds what the
network did not report at all (for instance a bright point source whose objectness stayed
under ``score_thr``). An island that an entry's mask touches belongs to that entry only as far
as ``reach_pix`` (``JOIN_GAP_BEAMS`` beams in ``infer``) from the mask: its parts beyond that
reach that still hold a seed are sources the network left out too (a 20σ tail running four
beams on from a compact core that the network outlined alone, in a VLASS cutout), and are
added the same way, flagged ``beside``, when they cover a beam at least (a sliver of the
entry's own emission that the reach cuts off is no source). Two beams is past the reach of
any Gaussian's own wings: a point source's 5σ contour lies 2 FWHM beyond its half-power
contour only above 10⁸σ.

An island that lies mostly (``JOIN_FRACTION`` of its pixels) inside the box of an ``extended``
or ``extended-multisland`` entry, or within ``JOIN_GAP_BEAMS`` beam FWHM of its mask, is a part
of that source the network's mask left out (a lobe, a core between two lobes, a lobe's faint
tip beyond a gap under 3σ): :func:`attach_islands` joins it to that entry's mask instead of
making it an entry of its own, keeping one entry per radio galaxy.

An island entry has no network probabilities (``score`` and the ``p_<class>`` columns are NaN
in the catalogue, ``flag_island`` is set). Its class follows from its area at the flood level
against that of a point source of the same peak: a Gaussian of FWHM ``k`` beams covers
``k² Ω_b ln(P/F)`` pixels above the level ``F`` for a peak ``P`` (``Ω_b`` the beam
area in pixels), so an island up to twice a point source's area (a source up to ~1.4 beams
across) is ``compact``, a larger one ``extended``. Below ``SIZE_SNR`` the noise moves a 3σ
contour by about a beam and the area says little about the size: a fainter island is judged
against the area of a ``SIZE_SNR`` point source.

Islands are found on the cell map of :func:`caesar_mrcnn.detection.signal_tiles.signal_map`
and read one connected group of cells at a time, so a mosaic never sits in memory.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import ndimage

from caesar_mrcnn.classes import EXTENDED_CLASSES
from caesar_mrcnn.data.dataset import Annotation
from caesar_mrcnn.detection.signal_tiles import FLOOD_SNR, signal_map
from caesar_mrcnn.io.windows import read_window

COMPACT_AREA_FACTOR = 2.0
"""Largest island area, in units of a point source's area above the flood level at the same
peak, that is called ``compact``."""

SIZE_SNR = 10.0
"""Peak SNR under which an island's area is compared with that of a point source of this SNR."""

JOIN_FRACTION = 0.5
"""Fraction of an island's pixels inside an extended entry's box that joins it to the entry."""

JOIN_GAP_BEAMS = 2.0
"""Largest gap (beam FWHM) between an island and an extended entry's mask that joins them."""


_EIGHT = np.ones((3, 3), dtype=bool)


def seed_significance(objects: Sequence[Annotation], image: Any, background: Any
                      ) -> np.ndarray:
    """Brightest mask pixel above the background map under it, over the rms at the box
    centre.

    The catalogue's ``snr_pix`` (:func:`caesar_mrcnn.measure.sources.measure_catalogs`), the
    value ``min_snr`` applies to; NaN for an object without a finite pixel.
    """
    out = np.full(len(objects), np.nan)
    if not objects:
        return out
    boxes = np.array([o.bbox for o in objects], dtype=np.int64)
    _, rms = background.at((boxes[:, 0] + boxes[:, 2] - 1) / 2.0,
                           (boxes[:, 1] + boxes[:, 3] - 1) / 2.0)
    for i, obj in enumerate(objects):
        y0, x0, y1, x1 = obj.bbox
        vals = (read_window(image, y0, y1, x0, x1).astype(np.float64)
                - background.window(y0, y1, x0, x1)[0])[obj.mask]
        vals = vals[np.isfinite(vals)]
        if vals.size and rms[i] > 0:
            out[i] = float(vals.max()) / rms[i]
    return out


def island_class(area: int, peak_snr: float, beam_area_pix: float,
                 flood_snr: float = FLOOD_SNR) -> str:
    """``compact`` or ``extended`` from an island's area (pixels) and peak SNR (module doc)."""
    if not (beam_area_pix and beam_area_pix > 0):
        return "compact"
    point_area = beam_area_pix * math.log(max(peak_snr, SIZE_SNR) / flood_snr)
    return "compact" if area <= COMPACT_AREA_FACTOR * max(point_area, 1.0) else "extended"


def _intersection(a: Sequence[int], b: Sequence[int]) -> tuple[int, int, int, int] | None:
    """The box shared by two ``(y0, x0, y1, x1)`` boxes, None when they do not overlap."""
    y0, x0, y1, x1 = max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])
    return (y0, x0, y1, x1) if y1 > y0 and x1 > x0 else None


def _covered(objects: Sequence[Annotation], boxes: np.ndarray, y0: int, x0: int, y1: int,
             x1: int) -> np.ndarray:
    """Window ``[y0:y1, x0:x1]`` holding, on every pixel of an object's mask, the object's
    index + 1 (0 elsewhere; where masks overlap, the later object's)."""
    out = np.zeros((y1 - y0, x1 - x0), dtype=np.int64)
    if not len(boxes):
        return out
    hit = np.flatnonzero((boxes[:, 0] < y1) & (boxes[:, 2] > y0)
                         & (boxes[:, 1] < x1) & (boxes[:, 3] > x0))
    for i in hit:
        by0, bx0 = boxes[i, :2]
        cy0, cx0, cy1, cx1 = _intersection(boxes[i], (y0, x0, y1, x1))
        part = objects[i].mask[cy0 - by0:cy1 - by0, cx0 - bx0:cx1 - bx0]
        out[cy0 - y0:cy1 - y0, cx0 - x0:cx1 - x0][part] = i + 1
    return out


def uncovered_islands(image: Any, shape: tuple[int, int], background: Any,
                      objects: Sequence[Annotation], seed_snr: float,
                      beam_area_pix: float | None, flood_snr: float = FLOOD_SNR,
                      cell: int = 8, reach_pix: float = 0.0) -> list[Annotation]:
    """Islands with a seed of ``seed_snr`` that share no pixel with any of ``objects``, and
    the parts of the other islands beyond ``reach_pix`` of every object's mask that hold one.

    Parameters
    ----------
    image : numpy.ndarray or LazyImage
        2D image (NaN where blank).
    shape : tuple of int
        ``(ny, nx)`` pixels.
    background : BackgroundGrid
        The run's background and rms maps.
    objects : sequence of Annotation
        The catalogue's entries so far (image pixels).
    seed_snr : float
        Significance (σ) an island's brightest pixel must reach; 0 or less finds nothing.
    beam_area_pix : float or None
        Beam area (pixels), for the class of an island.
    flood_snr : float
        Significance (σ) down to which an island is followed.
    cell : int
        Cell side (pixels) of the map the islands are first located on.
    reach_pix : float
        An island that an object's mask touches is that object's as far as this many pixels
        from the mask; its pixels farther out that hold a seed (a jet or tail running beyond
        a compact entry, emission beside a bright source) are a source of their own. 0 or
        less: such an island is the object's whole.

    Returns
    -------
    list of Annotation
        One per uncovered island or part, ``attrs``: ``origin`` ``"island"``, ``score`` NaN,
        ``peak_snr`` (its seed significance); a part of a covered island also has
        ``beside`` True and ``island_of``, the indices in ``objects`` of the entries whose
        masks touch its island.
    """
    if seed_snr <= 0:
        return []
    ny, nx = (int(v) for v in shape)
    smap = signal_map(image, shape, background, seed_snr, margin=0, cell=cell,
                      seed_fraction=1.0, flood_snr=flood_snr)
    groups, _ = ndimage.label(smap.cells, structure=_EIGHT)
    boxes = (np.array([o.bbox for o in objects], dtype=np.int64) if objects
             else np.zeros((0, 4), dtype=np.int64))
    found = []
    for label, sl in enumerate(ndimage.find_objects(groups), start=1):
        if sl is None:
            continue
        # the group's cells, one cell wider: the flood of a marked cell never leaves the group
        y0, y1 = max((sl[0].start - 1) * cell, 0), min((sl[0].stop + 1) * cell, ny)
        x0, x1 = max((sl[1].start - 1) * cell, 0), min((sl[1].stop + 1) * cell, nx)
        data = read_window(image, y0, y1, x0, x1)
        bkg, rms = background.window(y0, y1, x0, x1)
        judged = np.isfinite(data) & np.isfinite(rms) & (rms > 0)
        snr = np.full(data.shape, -np.inf, dtype=np.float32)
        snr[judged] = (data[judged] - bkg[judged]) / rms[judged]
        islands, n = ndimage.label(snr >= flood_snr, structure=_EIGHT)
        if n == 0:
            continue
        owner = _covered(objects, boxes, y0, x0, y1, x1)
        covered = owner > 0
        index = np.arange(1, n + 1)
        peaks = ndimage.maximum(snr, islands, index)
        hits = ndimage.maximum(covered, islands, index)
        far = None
        for k, box in enumerate(ndimage.find_objects(islands)):
            if box is None or peaks[k] < seed_snr:
                continue
            parts = [(box, islands[box] == k + 1)]
            owners: list[int] = []
            if hits[k]:
                if reach_pix <= 0:
                    continue
                if far is None:  # once per group, where a covered island needs it
                    far = ndimage.distance_transform_edt(~covered) > reach_pix
                parts = _parts_beyond(islands[box] == k + 1, far[box], snr[box], seed_snr,
                                      box, beam_area_pix or 0.0)
                on = owner[box][islands[box] == k + 1]
                owners = [int(i) - 1 for i in np.unique(on[on > 0])]
            for pbox, mask in parts:
                peak = float(np.max(np.where(mask, snr[pbox], -np.inf)))
                # an island seen through the padding of a neighbouring group is that group's
                py, px = np.unravel_index(np.argmax(np.where(mask, snr[pbox], -np.inf)),
                                          mask.shape)
                gy, gx = (pbox[0].start + py + y0) // cell, (pbox[1].start + px + x0) // cell
                if groups[gy, gx] != label:
                    continue
                by0, bx0 = pbox[0].start + y0, pbox[1].start + x0
                bbox = (by0, bx0, by0 + mask.shape[0], bx0 + mask.shape[1])
                category = island_class(int(mask.sum()), peak, beam_area_pix or 0.0,
                                        flood_snr)
                attrs = {"origin": "island", "score": float("nan"), "peak_snr": peak}
                if hits[k]:
                    attrs["beside"] = True
                    attrs["island_of"] = owners
                found.append(Annotation(category, bbox, mask, attrs))
    return found


def _parts_beyond(island: np.ndarray, far: np.ndarray, snr: np.ndarray, seed_snr: float,
                  box: tuple[slice, slice], min_area: float
                  ) -> list[tuple[tuple[slice, slice], np.ndarray]]:
    """The connected parts of a covered island (its box ``box`` in the group's window) that
    lie beyond the reach of every mask (``far``), hold a seed and cover ``min_area`` pixels
    (a beam: a sliver of a neighbour's emission that the reach cuts off is no source), each
    as ``(box, mask)`` in the window's coordinates."""
    rest, _ = ndimage.label(island & far, structure=_EIGHT)
    out = []
    for j, sub in enumerate(ndimage.find_objects(rest), start=1):
        if sub is None:
            continue
        mask = rest[sub] == j
        if mask.sum() < min_area or np.max(np.where(mask, snr[sub], -np.inf)) < seed_snr:
            continue
        pbox = (slice(box[0].start + sub[0].start, box[0].start + sub[0].stop),
                slice(box[1].start + sub[1].start, box[1].start + sub[1].stop))
        out.append((pbox, mask))
    return out


def _grown(island: Annotation, gap_pix: float) -> Annotation:
    """``island`` with its mask grown by a disc of radius ``gap_pix`` pixels."""
    r = int(math.ceil(gap_pix))
    y0, x0, y1, x1 = island.bbox
    mask = np.pad(island.mask, r)
    if r > 0:
        yy, xx = np.mgrid[-r:r + 1, -r:r + 1]
        mask = ndimage.binary_dilation(mask, yy * yy + xx * xx <= gap_pix * gap_pix)
    return Annotation(island.category, (y0 - r, x0 - r, y1 + r, x1 + r), mask)


def _touches(a: Annotation, b: Annotation) -> bool:
    """Whether the masks of ``a`` and ``b`` share a pixel."""
    box = _intersection(a.bbox, b.bbox)
    if box is None:
        return False
    cy0, cx0, cy1, cx1 = box
    (ay0, ax0), (by0, bx0) = a.bbox[:2], b.bbox[:2]
    return bool((a.mask[cy0 - ay0:cy1 - ay0, cx0 - ax0:cx1 - ax0]
                 & b.mask[cy0 - by0:cy1 - by0, cx0 - bx0:cx1 - bx0]).any())


def attach_islands(objects: Sequence[Annotation], islands: Sequence[Annotation],
                   gap_pix: float = 0.0, join_fraction: float = JOIN_FRACTION
                   ) -> tuple[list[Annotation], list[Annotation]]:
    """Join the islands that belong to an extended entry to that entry.

    An island belongs to an ``extended`` or ``extended-multisland`` entry when it is the far
    part of an island that entry's mask touches (``attrs["island_of"]``, indices in
    ``objects``), when at least ``join_fraction`` of its pixels lie inside the entry's box, or
    when it comes within ``gap_pix`` pixels of the entry's mask (module doc).

    Parameters
    ----------
    objects : sequence of Annotation
        The network's entries.
    islands : sequence of Annotation
        Uncovered islands (:func:`uncovered_islands`).
    gap_pix : float
        Largest gap (pixels) between an island and an extended entry's mask that joins them.
    join_fraction : float
        Fraction of an island's pixels inside the entry's box that joins them.

    Returns
    -------
    objects : list of Annotation
        The entries, those that gained islands with the united mask (``attrs["islands_joined"]``
        counts them; class and probabilities stay the network's).
    rest : list of Annotation
        The islands that joined no entry.
    """
    from caesar_mrcnn.detection.merge import union_annotation

    objects = list(objects)
    extended = [i for i, o in enumerate(objects) if o.category in EXTENDED_CLASSES]
    joined: dict[int, list[Annotation]] = {}
    rest = []
    for isl in islands:
        owner = next((i for i in isl.attrs.get("island_of", ()) if i in extended), None)
        if owner is not None:  # the far part of an extended entry's own island
            joined.setdefault(owner, []).append(isl)
            continue
        y0, x0 = isl.bbox[:2]
        best, best_in = -1, 0
        for i in extended:
            box = _intersection(isl.bbox, objects[i].bbox)
            if box is None:
                continue
            cy0, cx0, cy1, cx1 = box
            inside = int(isl.mask[cy0 - y0:cy1 - y0, cx0 - x0:cx1 - x0].sum())
            if inside > best_in:
                best, best_in = i, inside
        if best < 0 or best_in < join_fraction * isl.area:
            grown = _grown(isl, gap_pix)  # once per island, whatever the number of entries
            best = next((i for i in extended if _touches(grown, objects[i])), -1)
        if best >= 0:
            joined.setdefault(best, []).append(isl)
        else:
            rest.append(isl)
    for i, parts in joined.items():
        entry = objects[i]
        attrs = {**entry.attrs,
                 "islands_joined": int(entry.attrs.get("islands_joined", 0)) + len(parts)}
        objects[i] = union_annotation([entry, *parts], entry.category, **attrs)
    return objects, rest
