"""Detection and classification metrics on matched catalogues.

Definitions used throughout (and in docs/benchmarks.md):

- completeness = matched truth objects / truth objects, binned by the *true* SNR and grouped by
  the *true* class (a truth object counts as found whatever class its detection was given);
- reliability = matched detections / detections, binned by the detection's *measured* SNR
  (unmatched detections have no true SNR, so binning by true SNR would leave false detections
  out of every bin) and grouped by the *predicted* class;
- classification (confusion matrix, precision, recall, F1) uses matched pairs only.

Proportions come with Wilson score intervals, which stay inside [0, 1] and behave for the small
counts of the highest-SNR bins.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from caesar_mrcnn.classes import CLASS_NAMES

DEFAULT_SNR_BINS: tuple[float, ...] = (3, 5, 7, 10, 20, 50, 100, 1000)
"""Default SNR bin edges of completeness and reliability curves."""


def wilson_interval(k, n, confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval of a binomial proportion ``k / n``.

    Parameters
    ----------
    k, n : int or array_like of int
        Successes and trials (``0 <= k <= n``).
    confidence : float
        Two-sided confidence level, e.g. 0.95.

    Returns
    -------
    lo, hi : numpy.ndarray of float
        Interval bounds; ``(0, 1)`` where ``n == 0``.
    """
    from astropy.stats import binom_conf_interval

    k, n = np.broadcast_arrays(np.asarray(k, dtype=int), np.asarray(n, dtype=int))
    empty = n <= 0
    # astropy refuses n = 0; an empty bin says nothing, so its interval is all of [0, 1].
    lo, hi = binom_conf_interval(np.where(empty, 0, k), np.where(empty, 1, n),
                                 confidence_level=confidence, interval="wilson")
    return np.where(empty, 0.0, lo), np.where(empty, 1.0, hi)


def proportion(k, n, confidence: float = 0.95) -> dict:
    """``{"k", "n", "value", "lo", "hi"}`` of a proportion; value is NaN when ``n == 0``."""
    lo, hi = wilson_interval(k, n, confidence)
    return {"k": int(k), "n": int(n), "value": float(k / n) if n else float("nan"),
            "lo": float(lo), "hi": float(hi)}


def binned_fraction(success: np.ndarray, value: np.ndarray, groups: np.ndarray,
                    bins: Sequence[float], group_names: Sequence[str] = CLASS_NAMES,
                    confidence: float = 0.95) -> list[dict]:
    """Fraction of successes per group and per bin of ``value``, with Wilson intervals.

    Parameters
    ----------
    success : numpy.ndarray of bool
        Per object: matched or not.
    value : numpy.ndarray of float
        Per object: the binned quantity (SNR). NaN values fall in no bin (but count in the
        bin-less ``"all"`` rows).
    groups : numpy.ndarray of str
        Per object: its class.
    bins : sequence of float
        Increasing bin edges; bin i is ``[bins[i], bins[i+1])``.
    group_names : sequence of str
        Groups to report (besides ``"all"``), in order.
    confidence : float
        Confidence level of the intervals.

    Returns
    -------
    list of dict
        Rows with keys ``class, snr_lo, snr_hi, k, n, value, lo, hi``; ``snr_lo``/``snr_hi`` are
        NaN in rows over all SNRs.
    """
    success = np.asarray(success, dtype=bool)
    value = np.asarray(value, dtype=float)
    groups = np.asarray(groups, dtype=object)
    edges = np.asarray(bins, dtype=float)
    idx = np.searchsorted(edges, value, side="right") - 1
    inside = np.isfinite(value) & (idx >= 0) & (idx < edges.size - 1)
    rows = []
    for name in ("all", *group_names):
        sel = np.ones(success.size, bool) if name == "all" else groups == name
        rows.append({"class": name, "snr_lo": float("nan"), "snr_hi": float("nan"),
                     **proportion(int(success[sel].sum()), int(sel.sum()), confidence)})
        k = np.bincount(idx[sel & inside], weights=success[sel & inside],
                        minlength=edges.size - 1)
        n = np.bincount(idx[sel & inside], minlength=edges.size - 1)
        for i in range(edges.size - 1):
            rows.append({"class": name, "snr_lo": float(edges[i]), "snr_hi": float(edges[i + 1]),
                         **proportion(int(k[i]), int(n[i]), confidence)})
    return rows


def confusion_matrix(true_cls: Sequence[str], pred_cls: Sequence[str],
                     names: Sequence[str] = CLASS_NAMES) -> np.ndarray:
    """Counts ``M[i, j]`` of matched pairs with true class ``names[i]`` predicted ``names[j]``."""
    lookup = {n: i for i, n in enumerate(names)}
    t = np.array([lookup[c] for c in true_cls], dtype=np.int64)
    p = np.array([lookup[c] for c in pred_cls], dtype=np.int64)
    m = np.zeros((len(names), len(names)), dtype=np.int64)
    np.add.at(m, (t, p), 1)
    return m


def classification_scores(matrix: np.ndarray, names: Sequence[str] = CLASS_NAMES) -> list[dict]:
    """Per-class precision, recall and F1 from a confusion matrix (NaN where undefined)."""
    m = np.asarray(matrix, dtype=float)
    tp = np.diag(m)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = tp / m.sum(axis=0)
        recall = tp / m.sum(axis=1)
        f1 = 2 * precision * recall / (precision + recall)
    f1 = np.where((tp == 0) & np.isfinite(precision) & np.isfinite(recall), 0.0, f1)
    return [{"class": n, "support": int(m[i].sum()), "precision": float(precision[i]),
             "recall": float(recall[i]), "f1": float(f1[i])} for i, n in enumerate(names)]


def binned_stats(value: np.ndarray, snr: np.ndarray, bins: Sequence[float]) -> list[dict]:
    """Median and 16th/84th percentiles of ``value`` per SNR bin (NaN-free values only).

    Returns
    -------
    list of dict
        Rows ``snr_lo, snr_hi, n, median, p16, p84`` (NaN statistics where ``n == 0``).
    """
    value = np.asarray(value, dtype=float)
    snr = np.asarray(snr, dtype=float)
    edges = np.asarray(bins, dtype=float)
    ok = np.isfinite(value) & np.isfinite(snr)
    rows = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        v = value[ok & (snr >= lo) & (snr < hi)]
        stats = np.percentile(v, [50, 16, 84]) if v.size else np.full(3, np.nan)
        rows.append({"snr_lo": float(lo), "snr_hi": float(hi), "n": int(v.size),
                     "median": float(stats[0]), "p16": float(stats[1]), "p84": float(stats[2])})
    return rows


def angular_separation_arcsec(ra1, dec1, ra2, dec2) -> np.ndarray:
    """Great-circle separation (arcsec) between positions in degrees (haversine formula)."""
    ra1, dec1, ra2, dec2 = (np.radians(np.asarray(v, dtype=float)) for v in (ra1, dec1, ra2, dec2))
    h = (np.sin((dec2 - dec1) / 2) ** 2
         + np.cos(dec1) * np.cos(dec2) * np.sin((ra2 - ra1) / 2) ** 2)
    return np.degrees(2 * np.arcsin(np.sqrt(np.clip(h, 0, 1)))) * 3600.0
