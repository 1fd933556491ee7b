"""Score detections of many images against their ground truth (no model, no files).

:func:`score_detections` is the core of ``caesar-mrcnn evaluate``: it matches each image's
detections to its truth one-to-one by mask IoU (or, with ``match="position"``, by position
within the larger of the beam FWHM and half the true source's major axis, the rule of the
real-image comparisons), then computes completeness, reliability, classification scores,
COCO AP, and position / flux accuracy of matched sources.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from caesar_mrcnn.classes import CLASS_NAMES
from caesar_mrcnn.data.dataset import Annotation, Sample
from caesar_mrcnn.evaluation import metrics
from caesar_mrcnn.evaluation.coco_eval import coco_ap
from caesar_mrcnn.evaluation.matching import (
    Matching,
    artefacts,
    error_kinds,
    match_masks,
    match_positions,
)


@dataclass
class EvaluationResult:
    """Everything ``evaluate`` reports.

    Attributes
    ----------
    summary : dict
        JSON-ready: settings, counts, overall and per-class proportions, COCO AP, confusion,
        and ``errors``: unmatched detections per predicted class split into ``fragment``,
        ``on an artefact`` and ``off source``, missed sources per true class into ``outlined
        poorly`` and ``undetected`` (:func:`~caesar_mrcnn.evaluation.matching.error_kinds`).
    completeness, reliability : list of dict
        Rows of :func:`metrics.binned_fraction`.
    classification : list of dict
        Per-class precision / recall / F1 on matched pairs.
    confusion : numpy.ndarray
        Confusion matrix, rows true class, columns predicted class (:data:`CLASS_NAMES` order).
    matches : list of dict
        One row per matched pair (image, classes, IoU, SNRs, fluxes, position error).
    astrometry, photometry : list of dict
        Position error (arcsec) and flux ratio (measured / true) statistics per true-SNR bin.
    unmatched : list of dict
        One row per unmatched detection: ``image``, ``class``, measured ``snr``, ``kind``
        (``fragment``, ``on an artefact`` or ``off source``) and ``origin`` (``island`` for an
        entry of the island floor, else ``network``).
    """

    summary: dict
    completeness: list[dict]
    reliability: list[dict]
    classification: list[dict]
    confusion: np.ndarray
    matches: list[dict] = field(default_factory=list)
    astrometry: list[dict] = field(default_factory=list)
    photometry: list[dict] = field(default_factory=list)
    unmatched: list[dict] = field(default_factory=list)


def _attr(anns: Sequence[Annotation], key: str) -> np.ndarray:
    return np.array([float(a.attrs.get(key, np.nan)) if a.attrs.get(key) is not None
                     else np.nan for a in anns], dtype=float)


def positions(anns: Sequence[Annotation]) -> tuple[np.ndarray, np.ndarray]:
    """Pixel positions ``(x, y)``: ``attrs["x"], attrs["y"]`` where given, else mask centroid."""
    x = _attr(anns, "x")
    y = _attr(anns, "y")
    for i in np.flatnonzero(~(np.isfinite(x) & np.isfinite(y))):
        yy, xx = np.nonzero(anns[i].mask)
        y[i] = yy.mean() + anns[i].bbox[0]
        x[i] = xx.mean() + anns[i].bbox[1]
    return x, y


def position_error_arcsec(truth: Sequence[Annotation], dets: Sequence[Annotation],
                          meta: dict) -> np.ndarray:
    """Offset (arcsec) between paired objects: on the sky where both give ra/dec, else in pixels
    scaled by ``meta["dx"]``, ``meta["dy"]`` (arcsec/pixel; NaN if unknown)."""
    ra_t, dec_t, ra_d, dec_d = (_attr(truth, "ra"), _attr(truth, "dec"),
                                _attr(dets, "ra"), _attr(dets, "dec"))
    sky = metrics.angular_separation_arcsec(ra_t, dec_t, ra_d, dec_d)
    xt, yt = positions(truth)
    xd, yd = positions(dets)
    dx = abs(float(meta.get("dx", np.nan) or np.nan))
    dy = abs(float(meta.get("dy", meta.get("dx", np.nan)) or np.nan))
    pix = np.hypot((xd - xt) * dx, (yd - yt) * dy)
    return np.where(np.isfinite(sky), sky, pix)


def position_radius(truth: Sequence[Annotation], meta: dict) -> np.ndarray:
    """Matching radius (pixels) of each true source: the larger of the beam FWHM and half its
    major axis (``meta["bmaj"]`` and ``attrs["major_arcsec"]`` in arcsec, ``meta["dx"]``
    arcsec/pixel)."""
    dx = abs(float(meta.get("dx") or np.nan))
    beam = float(meta.get("bmaj") or np.nan) / dx
    if not np.isfinite(beam) or beam <= 0:
        raise ValueError("positional matching needs the beam (bmaj, arcsec) and pixel size "
                         "(dx, arcsec) in each sample's meta")
    major = np.nan_to_num(_attr(truth, "major_arcsec") / dx, nan=0.0)
    return np.maximum(beam, major / 2.0)


def _match(truth, dets, meta, match: str, iou_threshold: float):
    if match == "iou":
        return match_masks(truth, dets, iou_threshold)
    if match == "position":
        return _match_positions(truth, dets, meta)
    raise ValueError(f"match must be 'iou' or 'position', got {match!r}")


def _match_positions(truth, dets, meta) -> Matching:
    """One-to-one positional matching, sources first: a ``spurious`` truth object (the
    sidelobe pattern of a bright source, centred on it) is matched only to an entry that no
    true source takes, so that it never takes its source's entry."""
    xt, yt = positions(truth)
    xd, yd = positions(dets)
    txy, dxy = np.stack([xt, yt], -1), np.stack([xd, yd], -1)
    radius = position_radius(truth, meta)
    artefact = artefacts(truth)
    out_t, out_d, out_q = [], [], []
    free = np.arange(len(dets))
    for group in (np.flatnonzero(~artefact), np.flatnonzero(artefact)):
        m = match_positions(txy[group], dxy[free], radius[group])
        out_t.append(group[m.truth_idx])
        out_d.append(free[m.det_idx])
        out_q.append(m.quality)
        free = np.setdiff1d(free, free[m.det_idx])
    t, d, q = (np.concatenate(v) for v in (out_t, out_d, out_q))
    order = np.argsort(t, kind="stable")
    return Matching(t[order].astype(np.int64), d[order].astype(np.int64), q[order],
                    len(truth), len(dets))


def score_detections(samples: Sequence[Sample], detections: Sequence[Sequence[Annotation]],
                     iou_threshold: float = 0.5,
                     snr_bins: Sequence[float] = metrics.DEFAULT_SNR_BINS,
                     confidence: float = 0.95, match: str = "iou") -> EvaluationResult:
    """Match and score detections against the ground truth of each sample.

    Parameters
    ----------
    samples : sequence of Sample
        Images with their truth annotations (``attrs["snr"]`` and ``attrs["flux_jy"]`` used
        where present) and ``meta`` (``dx``, ``dy`` in arcsec/pixel).
    detections : sequence of sequence of Annotation
        Per sample, in the same order: detections (``attrs["score"]``, and optionally measured
        ``snr``, ``flux_jy`` (Jy), ``x``, ``y``, ``ra``, ``dec``).
    iou_threshold : float
        Minimum mask IoU of a match (``match="iou"``).
    snr_bins : sequence of float
        SNR bin edges.
    confidence : float
        Confidence level of the Wilson intervals.
    match : {"iou", "position"}
        Match by mask IoU, or by position (:func:`position_radius`; needs ``bmaj`` and ``dx``
        in each sample's meta; true sources first, then ``spurious`` truth objects with the
        entries left).

    Returns
    -------
    EvaluationResult
    """
    if len(samples) != len(detections):
        raise ValueError(f"{len(samples)} samples but {len(detections)} detection lists")
    t_cls, t_snr, t_hit = [], [], []
    d_cls, d_snr, d_hit = [], [], []
    pair_rows: list[dict] = []
    unmatched: list[dict] = []
    errors = {"false_detections": {}, "missed": {}}
    for sample, dets in zip(samples, detections):
        truth = sample.annotations
        m = _match(truth, dets, sample.meta, match, iou_threshold)
        det_kinds, truth_kinds = error_kinds(truth, dets, m)
        for key, objs, kinds in (("false_detections", dets, det_kinds),
                                 ("missed", truth, truth_kinds)):
            for obj, kind in zip(objs, kinds):
                if kind is not None:
                    per_class = errors[key].setdefault(obj.category, {})
                    per_class[kind] = per_class.get(kind, 0) + 1
        image = str(sample.meta.get("image_id", sample.image_path.name))
        unmatched += [{"image": image, "class": d.category,
                       "snr": float(d.attrs.get("snr", np.nan)), "kind": kind,
                       "origin": d.attrs.get("origin", "network")}
                      for d, kind in zip(dets, det_kinds) if kind is not None]
        t_cls += [a.category for a in truth]
        d_cls += [a.category for a in dets]
        t_snr.append(_attr(truth, "snr"))
        d_snr.append(_attr(dets, "snr"))
        t_hit.append(m.truth_matched)
        d_hit.append(m.det_matched)
        if m.truth_idx.size == 0:
            continue
        tp = [truth[i] for i in m.truth_idx]
        dp = [dets[j] for j in m.det_idx]
        err = position_error_arcsec(tp, dp, sample.meta)
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = _attr(dp, "flux_jy") / _attr(tp, "flux_jy")
        for k, (a, b) in enumerate(zip(tp, dp)):
            pair_rows.append({
                "image": image, "truth_index": int(m.truth_idx[k]),
                "det_index": int(m.det_idx[k]),
                "truth_class": a.category, "pred_class": b.category,
                "iou": float(m.quality[k]), "score": float(b.attrs.get("score", np.nan)),
                "truth_snr": float(a.attrs.get("snr", np.nan)),
                "det_snr": float(b.attrs.get("snr", np.nan)),
                "truth_flux_jy": float(a.attrs.get("flux_jy", np.nan)),
                "det_flux_jy": float(b.attrs.get("flux_jy", np.nan)),
                "flux_ratio": float(ratio[k]), "pos_err_arcsec": float(err[k])})
    cat = lambda parts: np.concatenate(parts) if parts else np.zeros(0)  # noqa: E731
    t_snr_a, t_hit_a, d_snr_a, d_hit_a = cat(t_snr), cat(t_hit), cat(d_snr), cat(d_hit)
    completeness = metrics.binned_fraction(t_hit_a, t_snr_a, np.array(t_cls, dtype=object),
                                           snr_bins, confidence=confidence)
    reliability = metrics.binned_fraction(d_hit_a, d_snr_a, np.array(d_cls, dtype=object),
                                          snr_bins, confidence=confidence)
    confusion = metrics.confusion_matrix([r["truth_class"] for r in pair_rows],
                                         [r["pred_class"] for r in pair_rows])
    classification = metrics.classification_scores(confusion)
    pair_snr = np.array([r["truth_snr"] for r in pair_rows], dtype=float)
    astrometry = metrics.binned_stats([r["pos_err_arcsec"] for r in pair_rows], pair_snr,
                                      snr_bins)
    photometry = metrics.binned_stats([r["flux_ratio"] for r in pair_rows], pair_snr, snr_bins)
    coco = coco_ap([s.annotations for s in samples], detections, [s.shape for s in samples])
    overall = lambda rows: next(r for r in rows if r["class"] == "all" and  # noqa: E731
                                np.isnan(r["snr_lo"]))
    per_class = lambda rows: {r["class"]: r for r in rows  # noqa: E731
                              if r["class"] != "all" and np.isnan(r["snr_lo"])}
    n_pairs = len(pair_rows)
    summary = {
        "settings": {"iou_threshold": iou_threshold, "snr_bins": [float(b) for b in snr_bins],
                     "confidence": confidence,
                     "matching": ("one-to-one Hungarian on mask IoU" if match == "iou" else
                                  "one-to-one Hungarian on position, within max(beam FWHM, "
                                  "half the true major axis), sources before artefacts"),
                     "completeness_snr": "true SNR", "reliability_snr": "measured SNR"},
        "counts": {"images": len(samples), "truth": int(t_hit_a.size),
                   "detections": int(d_hit_a.size), "matched": n_pairs},
        "completeness": overall(completeness), "reliability": overall(reliability),
        "completeness_per_class": per_class(completeness),
        "reliability_per_class": per_class(reliability),
        "classification_accuracy": (float(np.trace(confusion) / n_pairs) if n_pairs
                                    else float("nan")),
        "classification": classification,
        "confusion": {"classes": list(CLASS_NAMES), "matrix": confusion.tolist()},
        "coco": coco, "astrometry_arcsec": astrometry, "flux_ratio": photometry,
        "errors": errors,
    }
    return EvaluationResult(summary, completeness, reliability, classification, confusion,
                            pair_rows, astrometry, photometry, unmatched)
