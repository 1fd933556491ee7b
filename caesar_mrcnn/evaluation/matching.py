"""One-to-one matching of detections to ground truth.

Mask IoU is computed between bounding-box-cropped masks without ever pasting them into a full
image: each mask becomes a row of a sparse (object x pixel) incidence matrix, and the product of
the truth and detection matrices holds the intersection of every pair that shares a pixel (and
only of those). Assignment is Hungarian (``scipy.optimize.linear_sum_assignment``) on each
connected group of candidate pairs, so a field with thousands of sources never needs a dense
thousands-by-thousands cost matrix.

The assignment maximises first the *number* of matched pairs, then their summed quality (IoU, or
positional closeness). Counting many-to-one best matches instead, as the original caesar-mrcnn
did, lets one truth source be "found" by several detections and one detection "find" several
sources, which inflates completeness and reliability alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.optimize import linear_sum_assignment
from scipy.sparse.csgraph import connected_components

from caesar_mrcnn.data.dataset import Annotation


@dataclass(frozen=True)
class Matching:
    """Result of a one-to-one assignment.

    Attributes
    ----------
    truth_idx, det_idx : numpy.ndarray of int
        Indices of matched pairs (same length), sorted by ``truth_idx``.
    quality : numpy.ndarray of float
        Matching quality of each pair (mask IoU, or 1 - distance / radius).
    n_truth, n_det : int
        Number of truth objects and of detections that were matched.
    """

    truth_idx: np.ndarray
    det_idx: np.ndarray
    quality: np.ndarray
    n_truth: int
    n_det: int

    @property
    def truth_matched(self) -> np.ndarray:
        """Boolean array over truth objects: True where matched."""
        out = np.zeros(self.n_truth, dtype=bool)
        out[self.truth_idx] = True
        return out

    @property
    def det_matched(self) -> np.ndarray:
        """Boolean array over detections: True where matched."""
        out = np.zeros(self.n_det, dtype=bool)
        out[self.det_idx] = True
        return out

    def det_of_truth(self) -> np.ndarray:
        """For each truth object, the index of its detection, or -1."""
        out = np.full(self.n_truth, -1, dtype=np.int64)
        out[self.truth_idx] = self.det_idx
        return out


def _incidence(anns: Sequence[Annotation], origin: tuple[int, int], width: int
               ) -> sparse.csr_matrix:
    """Sparse (n_objects x n_pixels) matrix with a 1 at every mask pixel of every object."""
    rows, cols = [], []
    for i, ann in enumerate(anns):
        yy, xx = np.nonzero(ann.mask)
        rows.append(np.full(yy.size, i, dtype=np.int64))
        cols.append((yy + (ann.bbox[0] - origin[0])).astype(np.int64) * width
                    + (xx + (ann.bbox[1] - origin[1])))
    row = np.concatenate(rows) if rows else np.zeros(0, np.int64)
    col = np.concatenate(cols) if cols else np.zeros(0, np.int64)
    npix = int(col.max()) + 1 if col.size else 1
    return sparse.csr_matrix((np.ones(row.size, dtype=np.float64), (row, col)),
                             shape=(len(anns), npix))


def mask_overlaps(truth: Sequence[Annotation], dets: Sequence[Annotation]
                  ) -> tuple[sparse.coo_matrix, np.ndarray, np.ndarray]:
    """Shared pixels of every (truth, detection) pair whose masks touch, and the mask areas.

    Returns
    -------
    shared : scipy.sparse.coo_matrix, shape ``(len(truth), len(dets))``
        Pixels in both masks (absent entries: 0).
    truth_area, det_area : numpy.ndarray
        Pixels in each mask.
    """
    if not truth or not dets:
        return (sparse.coo_matrix((len(truth), len(dets))),
                np.array([a.mask.sum() for a in truth], dtype=np.float64),
                np.array([a.mask.sum() for a in dets], dtype=np.float64))
    boxes = np.array([a.bbox for a in (*truth, *dets)], dtype=np.int64)
    origin = (int(boxes[:, 0].min()), int(boxes[:, 1].min()))
    width = int(boxes[:, 3].max()) - origin[1]
    a = _incidence(truth, origin, width)
    b = _incidence(dets, origin, width)
    npix = max(a.shape[1], b.shape[1])
    a.resize((a.shape[0], npix))
    b.resize((b.shape[0], npix))
    return ((a @ b.T).tocoo(), np.asarray(a.sum(axis=1)).ravel(),
            np.asarray(b.sum(axis=1)).ravel())


def mask_iou_matrix(truth: Sequence[Annotation], dets: Sequence[Annotation]) -> sparse.coo_matrix:
    """Mask IoU of every (truth, detection) pair whose masks share at least one pixel.

    Parameters
    ----------
    truth, dets : sequence of Annotation
        Objects of one image; masks are cropped to their bounding boxes.

    Returns
    -------
    scipy.sparse.coo_matrix, shape ``(len(truth), len(dets))``
        IoU in (0, 1] for overlapping pairs; absent entries are 0.
    """
    inter, area_a, area_b = mask_overlaps(truth, dets)
    union = area_a[inter.row] + area_b[inter.col] - inter.data
    return sparse.coo_matrix((inter.data / union, (inter.row, inter.col)), shape=inter.shape)


def artefacts(truth: Sequence[Annotation]) -> np.ndarray:
    """Per true object: is it an artefact (a ``spurious`` sidelobe pattern) rather than a
    source."""
    return np.array([a.category == "spurious" for a in truth], dtype=bool)


def error_kinds(truth: Sequence[Annotation], dets: Sequence[Annotation], matching: Matching,
                inside: float = 0.5, touched_iou: float = 0.1) -> tuple[list, list]:
    """Why each unmatched object is unmatched.

    Parameters
    ----------
    truth, dets : sequence of Annotation
        Objects of one image.
    matching : Matching
        Their one-to-one matching.
    inside : float
        Fraction of a detection's pixels inside one true mask that makes it a fragment.
    touched_iou : float
        Best mask IoU with a detection above which a missed source counts as outlined poorly.

    Returns
    -------
    det_kinds : list of str or None
        Per detection: None when matched, ``"fragment"`` (mostly inside a true source: a piece
        of it, or a second detection of it), ``"on an artefact"`` (mostly inside a true
        ``spurious`` object, a sidelobe pattern, and not inside a source) or ``"off source"``
        (mostly outside every true object: noise, an artefact missing from the truth, or a
        badly placed outline).
    truth_kinds : list of str or None
        Per true object: None when matched, ``"outlined poorly"`` (a detection overlaps it,
        below the match IoU) or ``"undetected"``.
    """
    inter, area_t, area_d = mask_overlaps(truth, dets)
    artefact = artefacts(truth)
    in_source = np.zeros(len(dets))
    in_artefact = np.zeros(len(dets))
    best_iou = np.zeros(len(truth))
    if inter.nnz:
        frac = inter.data / area_d[inter.col]
        on_art = artefact[inter.row]
        np.maximum.at(in_source, inter.col[~on_art], frac[~on_art])
        np.maximum.at(in_artefact, inter.col[on_art], frac[on_art])
        iou = inter.data / (area_t[inter.row] + area_d[inter.col] - inter.data)
        np.maximum.at(best_iou, inter.row, iou)
    det_ok, truth_ok = matching.det_matched, matching.truth_matched
    det_kinds = [None if det_ok[j] else
                 "fragment" if in_source[j] >= inside else
                 "on an artefact" if in_artefact[j] >= inside else "off source"
                 for j in range(len(dets))]
    truth_kinds = [None if truth_ok[i] else
                   ("outlined poorly" if best_iou[i] >= touched_iou else "undetected")
                   for i in range(len(truth))]
    return det_kinds, truth_kinds


def match_pairs(quality: sparse.spmatrix, threshold: float = 0.0) -> Matching:
    """One-to-one assignment maximising the number of matches, then their summed quality.

    Parameters
    ----------
    quality : scipy.sparse matrix, shape ``(n_truth, n_det)``
        Quality of candidate pairs, larger is better, in [0, 1]. Entries below ``threshold``
        and absent entries are not candidates. Explicitly stored zeros are candidates when
        ``threshold`` is 0.
    threshold : float
        Minimum quality of a match (e.g. the IoU threshold).

    Returns
    -------
    Matching
    """
    q = sparse.coo_matrix(quality)
    n_t, n_d = q.shape
    keep = q.data >= threshold
    rows, cols, vals = q.row[keep], q.col[keep], q.data[keep].astype(float)
    empty = np.zeros(0, dtype=np.int64)
    if rows.size == 0:
        return Matching(empty, empty, np.zeros(0), n_t, n_d)
    # Bipartite graph: truth nodes 0..n_t-1, detection nodes n_t..n_t+n_d-1.
    graph = sparse.coo_matrix((np.ones(rows.size), (rows, cols + n_t)), shape=(n_t + n_d,) * 2)
    _, label = connected_components(graph, directed=False)
    comp = label[rows]
    order = np.argsort(comp, kind="stable")
    rows, cols, vals, comp = rows[order], cols[order], vals[order], comp[order]
    starts = np.flatnonzero(np.r_[True, comp[1:] != comp[:-1]])
    ends = np.r_[starts[1:], comp.size]
    single = (ends - starts) == 1  # one candidate pair: nothing to decide
    out_t = [rows[starts[single]]]
    out_d = [cols[starts[single]]]
    out_q = [vals[starts[single]]]
    for s, e in zip(starts[~single], ends[~single]):
        ut, it = np.unique(rows[s:e], return_inverse=True)
        ud, id_ = np.unique(cols[s:e], return_inverse=True)
        # Lexicographic objective: a bonus larger than any summed quality for every pair,
        # so one more match always beats better quality among fewer matches.
        bonus = min(ut.size, ud.size) + 1.0
        w = np.zeros((ut.size, ud.size))
        valid = np.zeros_like(w, dtype=bool)
        w[it, id_] = bonus + vals[s:e]
        valid[it, id_] = True
        r, c = linear_sum_assignment(w, maximize=True)
        ok = valid[r, c]
        out_t.append(ut[r[ok]])
        out_d.append(ud[c[ok]])
        out_q.append(w[r[ok], c[ok]] - bonus)
    t = np.concatenate(out_t).astype(np.int64)
    d = np.concatenate(out_d).astype(np.int64)
    qq = np.concatenate(out_q)
    o = np.argsort(t, kind="stable")
    return Matching(t[o], d[o], qq[o], n_t, n_d)


def match_masks(truth: Sequence[Annotation], dets: Sequence[Annotation],
                iou_threshold: float = 0.5) -> Matching:
    """Match detections to truth one-to-one by mask IoU (class-agnostic).

    Parameters
    ----------
    truth, dets : sequence of Annotation
        Ground truth and detections of one image.
    iou_threshold : float
        Minimum mask IoU of a match.

    Returns
    -------
    Matching
        ``quality`` holds the mask IoU of each pair.
    """
    return match_pairs(mask_iou_matrix(truth, dets), iou_threshold)


def match_positions(truth_xy: np.ndarray, det_xy: np.ndarray, radius: np.ndarray) -> Matching:
    """Match detections to truth one-to-one by position (class-agnostic).

    A detection is a candidate for a truth source when it lies within that source's radius;
    the assignment maximises the number of matches, then their summed closeness
    ``1 - distance / radius``.

    Parameters
    ----------
    truth_xy, det_xy : numpy.ndarray, shape ``(n, 2)``
        Positions ``(x, y)`` in pixels (NaN never matches).
    radius : numpy.ndarray, shape ``(n_truth,)``
        Matching radius of each truth source (pixels), e.g. the larger of the beam FWHM and
        half the source's major axis, as for the real-image catalogues.

    Returns
    -------
    Matching
        ``quality`` holds ``1 - distance / radius`` of each pair.
    """
    t = np.asarray(truth_xy, float).reshape(-1, 2)
    d = np.asarray(det_xy, float).reshape(-1, 2)
    r = np.asarray(radius, float).reshape(-1)
    if t.shape[0] != r.size:
        raise ValueError(f"{t.shape[0]} truth positions but {r.size} radii")
    if t.size == 0 or d.size == 0:
        return match_pairs(sparse.coo_matrix((t.shape[0], d.shape[0])))
    dist = np.hypot(t[:, None, 0] - d[None, :, 0], t[:, None, 1] - d[None, :, 1])
    with np.errstate(invalid="ignore"):
        rows, cols = np.nonzero(dist <= r[:, None])
    closeness = 1.0 - dist[rows, cols] / r[rows]
    return match_pairs(sparse.coo_matrix((closeness, (rows, cols)),
                                         shape=(t.shape[0], d.shape[0])))
