"""The merge of per-tile detections into one list of objects, one per source.

Inference runs on square tiles that overlap by ``overlap`` pixels
(:mod:`caesar_mrcnn.detection.tiling`). Every source smaller than the overlap lies whole inside
at least one tile; bigger sources are seen in parts. :func:`merge_detections` turns the per-tile
detections back into one object per source:

* two detections from different tiles are the *same source* when their masks agree inside the
  window the two tiles share (both tiles see every pixel of that window, so the same source
  gives the same pixels there whatever either tile cut off);
* a group of same-source detections containing a detection that touches no interior tile edge
  (the source is whole in that tile) keeps the best such detection;
* otherwise (a source larger than the overlap, cut in every tile) the masks are united into one
  object, flagged ``merged``;
* the class of a group is the class its detections vote for with their class probabilities
  (or, without probabilities, with their scores).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from caesar_mrcnn.classes import CLASS_NAMES
from caesar_mrcnn.data.dataset import Annotation
from caesar_mrcnn.detection.tiling import Tile, crop_mask


def _boxes_intersect(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``[len(a), len(b)]`` matrix: do boxes ``(y0, x0, y1, x1)`` share at least one pixel."""
    return ((a[:, None, 0] < b[None, :, 2]) & (b[None, :, 0] < a[:, None, 2])
            & (a[:, None, 1] < b[None, :, 3]) & (b[None, :, 1] < a[:, None, 3]))


def overlapping_pairs(wins: np.ndarray) -> np.ndarray:
    """Pairs ``(a, b)``, ``a < b``, of windows ``(y0, x0, y1, x1)`` that share a pixel.

    Windows are sorted by ``y0`` so each one is compared only with those starting within one
    window height: memory stays linear in the number of tiles of a survey mosaic.
    """
    order = np.argsort(wins[:, 0], kind="stable")
    y0s = wins[order, 0]
    tallest = int((wins[:, 2] - wins[:, 0]).max()) if len(wins) else 0
    pairs = []
    for a in range(len(wins)):
        lo = np.searchsorted(y0s, wins[a, 0] - tallest + 1, side="left")
        hi = np.searchsorted(y0s, wins[a, 2], side="left")
        cand = order[lo:hi]
        cand = cand[cand > a]
        hit = _boxes_intersect(wins[a:a + 1], wins[cand])[0]
        pairs += [(a, int(b)) for b in cand[hit]]
    return np.array(sorted(pairs), dtype=np.int64).reshape(-1, 2)


def same_source_pairs(dets: Sequence[Annotation], tiles: Sequence[Tile],
                      match_iou: float = 0.3) -> np.ndarray:
    """Pairs ``(i, j)`` of detections from overlapping tiles that are the same source.

    Two detections match when the intersection over union of their masks, restricted to the
    window shared by their tiles, is at least ``match_iou``.

    Returns
    -------
    pairs : numpy.ndarray of int, shape ``(P, 2)``
    iou : numpy.ndarray of float, shape ``(P,)``
        Mask IoU of each pair inside the shared window.
    """
    by_tile: dict[int, list[int]] = {}
    for i, d in enumerate(dets):
        by_tile.setdefault(int(d.attrs["tile"]), []).append(i)
    tile_of = {t.index: t for t in tiles}
    used = np.array(sorted(by_tile), dtype=np.int64)
    if used.size < 2:
        return np.zeros((0, 2), dtype=np.int64), np.zeros(0)
    wins = np.array([tile_of[i].window for i in used], dtype=np.int64)
    tile_pairs = overlapping_pairs(wins)
    boxes = np.array([d.bbox for d in dets], dtype=np.int64)
    pairs, ious = [], []
    for ta, tb in tile_pairs:
        shared = np.concatenate([np.maximum(wins[ta, :2], wins[tb, :2]),
                                 np.minimum(wins[ta, 2:], wins[tb, 2:])])
        ia = np.array(by_tile[int(used[ta])])
        ib = np.array(by_tile[int(used[tb])])
        in_a = _boxes_intersect(boxes[ia], shared[None])[:, 0]
        in_b = _boxes_intersect(boxes[ib], shared[None])[:, 0]
        ia, ib = ia[in_a], ib[in_b]
        if ia.size == 0 or ib.size == 0:
            continue
        for ka, kb in np.argwhere(_boxes_intersect(boxes[ia], boxes[ib])):
            i, j = int(ia[ka]), int(ib[kb])
            ma, mb = crop_mask(dets[i], tuple(shared)), crop_mask(dets[j], tuple(shared))
            union = np.count_nonzero(ma | mb)
            iou = np.count_nonzero(ma & mb) / union if union else 0.0
            if iou >= match_iou:
                pairs.append((i, j))
                ious.append(iou)
    return np.array(pairs, dtype=np.int64).reshape(-1, 2), np.array(ious, dtype=np.float64)


def union_annotation(members: Sequence[Annotation], category: str, **attrs) -> Annotation:
    """One annotation whose mask is the union of ``members``' masks."""
    boxes = np.array([m.bbox for m in members], dtype=np.int64)
    win = (int(boxes[:, 0].min()), int(boxes[:, 1].min()),
           int(boxes[:, 2].max()), int(boxes[:, 3].max()))
    mask = np.zeros((win[2] - win[0], win[3] - win[1]), dtype=bool)
    for m in members:
        y0, x0, y1, x1 = m.bbox
        mask[y0 - win[0]:y1 - win[0], x0 - win[1]:x1 - win[1]] |= m.mask
    return Annotation(category, win, mask, dict(attrs))


def _resolve_group(members: np.ndarray, dets: Sequence[Annotation],
                   match: dict[int, dict[int, float]]) -> list[tuple[list[int], bool]]:
    """Split one connected group of matching detections into objects.

    Whole (uncut) detections are kept greedily by score, each suppressing the detections of
    other tiles that match it; two detections of the same tile never suppress each other (the
    model already separated them). Cut detections matching no kept one are united per
    connected component.

    Returns
    -------
    list of (indices, united)
        Indices into ``dets``; for a kept detection it comes first, followed by those it
        supersedes; ``united`` marks a set of cut detections whose masks are to be united.
    """
    def iou(i: int, j: int) -> float:
        return match.get(i, {}).get(j, 0.0)

    cut = {int(i): bool(dets[i].attrs.get("cut")) for i in members}
    whole = sorted((i for i in cut if not cut[i]), key=lambda i: (-dets[i].attrs["score"], i))
    kept: list[list[int]] = []
    for i in whole:
        best = max(kept, key=lambda k: iou(k[0], i), default=None)
        if best is not None and iou(best[0], i) > 0:
            best.append(i)
        else:
            kept.append([i])
    rest = []
    for i in sorted(i for i in cut if cut[i]):
        best = max(kept, key=lambda k: iou(k[0], i), default=None)
        if best is not None and iou(best[0], i) > 0:
            best.append(i)
        else:
            rest.append(i)
    objects = [(k, False) for k in kept]
    if rest:
        sub = np.array(rest)
        pos = {i: n for n, i in enumerate(rest)}
        edges = [(pos[a], pos[b]) for a in rest for b in match.get(a, {}) if b in pos]
        e = np.array(edges, dtype=np.int64).reshape(-1, 2)
        graph = coo_matrix((np.ones(len(e)), (e[:, 0], e[:, 1])), shape=(len(rest),) * 2)
        _, labels = connected_components(graph, directed=False)
        for g in range(labels.max() + 1):
            objects.append(([int(i) for i in sub[labels == g]], True))
    return objects


def merge_detections(dets: Sequence[Annotation], tiles: Sequence[Tile],
                     match_iou: float = 0.3) -> list[Annotation]:
    """Merge per-tile detections into one object per source.

    Parameters
    ----------
    dets : sequence of Annotation
        Output of :func:`detections_from_output` for all tiles (any order).
    tiles : sequence of Tile
        The grid the detections came from.
    match_iou : float
        Minimum mask IoU inside the shared window of two tiles for two detections to be the
        same source.

    Returns
    -------
    list of Annotation
        Sorted by bounding box (top-left first). ``attrs``: ``score`` (highest objectness
        among the object's detections), ``merged`` (masks of several tiles united), ``ndet``
        (detections behind the object), ``class_scores`` (summed class votes), ``probs``
        (mean class probabilities, when the detections carry them). The class is the one
        with the most votes (see :func:`_group_attrs`).
    """
    if not dets:
        return []
    dets = sorted(dets, key=lambda d: (d.attrs["tile"], d.attrs["det"]))
    n = len(dets)
    pairs, ious = same_source_pairs(dets, tiles, match_iou)
    match: dict[int, dict[int, float]] = {}
    for (a, b), v in zip(pairs.tolist(), ious.tolist()):
        match.setdefault(a, {})[b] = v
        match.setdefault(b, {})[a] = v
    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    order = np.argsort(labels, kind="stable")
    groups = np.split(order, np.cumsum(np.bincount(labels))[:-1])
    out = []
    for members in groups:
        for indices, united in _resolve_group(members, dets, match):
            group = [dets[i] for i in indices]
            attrs, best = _group_attrs(group)
            attrs["merged"] = bool(united and len(group) > 1)
            if united:
                out.append(union_annotation(group, CLASS_NAMES[best], **attrs))
            else:
                out.append(Annotation(CLASS_NAMES[best], group[0].bbox, group[0].mask, attrs))
    out.sort(key=lambda a: a.bbox)
    return out


def _group_attrs(group: list[Annotation]) -> tuple[dict, int]:
    """Score, class vote and class probabilities of the detections of one object.

    The score is the highest among the detections. Each detection votes for the classes with
    its class probabilities where it has them (else with its score for its own class); the
    object's class is the one with the most votes, and its ``probs`` split its score between
    the classes as the mean of its detections' probabilities does, so that they sum to the
    score as a single detection's do (a catalogue user may cut on them).
    """
    scores = np.array([d.attrs["score"] for d in group])
    if all("probs" in d.attrs for d in group):
        mean = np.mean([d.attrs["probs"] for d in group], axis=0)
        votes = mean * len(group)
        total = float(mean.sum())
        probs = mean * (scores.max() / total) if total > 0 else mean
    else:
        probs = None
        cls = np.array([CLASS_NAMES.index(d.category) for d in group])
        votes = np.bincount(cls, weights=scores, minlength=len(CLASS_NAMES))
    best = int(np.argmax(votes))
    attrs = {"score": float(scores.max()), "ndet": len(group),
             "class_scores": {CLASS_NAMES[c]: float(votes[c]) for c in np.flatnonzero(votes)}}
    if probs is not None:
        attrs["probs"] = probs
    return attrs, best
