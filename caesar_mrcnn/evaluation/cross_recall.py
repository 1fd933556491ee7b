"""Cross-recall of finders on real images: who finds the significant sources the others find.

A real image has no ground truth, but the sources that classical finders report far above the
noise are real beyond doubt. On each image every finder's catalogue is matched with every
other's, by position only (:data:`RULE`):

- **recall of B by A**: the fraction of B's entries at peak SNR >= ``snr_min`` that some entry
  of A matches;
- **consensus recall**: the fraction of the sources that *every* classical finder reports
  (entries of the first classical finder at SNR >= ``snr_min`` matched by each of the others)
  that A matches;
- **confirmed**: the fraction of A's own entries at SNR >= ``snr_min`` that some entry of a
  classical finder matches.

The match radius is symmetric and grows with either entry's size, so an extended entry that
contains several classical components matches each of them, and each component matches it; an
entry whose bounding box (caesar-mrcnn's entries have one) holds the other's position matches it
too, given the image's WCS.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from astropy.table import Table

from caesar_mrcnn.evaluation.reference import inside_boxes, separation_arcsec

RULE = ("Two entries are the same source when their positions lie within max(1 beam FWHM, half "
        "the major axis of either), or one lies inside the other's bounding box (finders that "
        "report one); a finder recalls a source when one of its entries (any SNR, any class) is "
        "the same source; SNR is each finder's own peak / local rms.")
"""The matching rule in words, printed with every cross-recall table."""


def same_source(a: Table, b: Table, beam_arcsec: float, wcs=None) -> np.ndarray:
    """``(len(a), len(b))`` bool: entries that are the same source under :data:`RULE`.

    Parameters
    ----------
    a, b : astropy.table.Table
        Catalogues in the common form (``ra, dec`` in deg, ``maj_arcsec`` FWHM in arcsec,
        NaN allowed; bounding boxes in pixels where the finder reports them,
        :data:`~caesar_mrcnn.evaluation.reference.BOX_COLUMNS`).
    beam_arcsec : float
        Beam major-axis FWHM (arcsec).
    wcs : astropy.wcs.WCS, optional
        Celestial WCS of the image; the boxes count only when it is given.
    """
    if not beam_arcsec > 0:
        raise ValueError(f"beam_arcsec must be positive, got {beam_arcsec}")
    if not len(a) or not len(b):
        return np.zeros((len(a), len(b)), bool)
    half_a = np.nan_to_num(np.asarray(a["maj_arcsec"], float), nan=0.0) / 2
    half_b = np.nan_to_num(np.asarray(b["maj_arcsec"], float), nan=0.0) / 2
    radius = np.maximum(beam_arcsec, np.maximum(half_a[:, None], half_b[None, :]))
    near = separation_arcsec(a["ra"], a["dec"], b["ra"], b["dec"]) <= radius
    return near | inside_boxes(a, b, wcs) | inside_boxes(b, a, wcs).T


def significant(catalog: Table, snr_min: float) -> Table:
    """Entries at peak SNR >= ``snr_min`` (NaN SNR never is)."""
    snr = np.asarray(catalog["snr"], float)
    return catalog[np.nan_to_num(snr, nan=-np.inf) >= snr_min]


def cross_recall(catalogs: Mapping[str, Table], beam_arcsec: float, classical: Sequence[str],
                 snr_min: float = 10.0, wcs=None) -> list[dict]:
    """Counts of one image: recall of each finder by each other, consensus, confirmation.

    Parameters
    ----------
    catalogs : mapping of str to Table
        Each finder's catalogue of the image (common form).
    beam_arcsec : float
        Beam major-axis FWHM (arcsec).
    classical : sequence of str
        Names in ``catalogs`` of the classical finders (the consensus and confirmation use
        those present).
    snr_min : float
        Significance of the sources counted.
    wcs : astropy.wcs.WCS, optional
        Celestial WCS of the image, for the bounding boxes of :func:`same_source`.

    Returns
    -------
    list of dict
        Rows ``{"finder", "of", "k", "n"}``: ``of`` is another finder's name (recall of its
        significant entries), ``"consensus"``, or ``"confirmed"`` (the finder's own
        significant entries matched by a classical finder).
    """
    strong = {name: significant(cat, snr_min) for name, cat in catalogs.items()}
    present = [c for c in classical if c in catalogs]
    consensus = None
    if present:
        first = strong[present[0]]
        keep = np.ones(len(first), bool)
        for other in present[1:]:
            keep &= same_source(first, catalogs[other], beam_arcsec, wcs).any(axis=1)
        consensus = first[keep]
    rows = []
    for name, cat in catalogs.items():
        for other in catalogs:
            if other != name:
                hit = same_source(strong[other], cat, beam_arcsec, wcs).any(axis=1)
                rows.append({"finder": name, "of": other, "k": int(hit.sum()), "n": len(hit)})
        if consensus is not None:
            hit = same_source(consensus, cat, beam_arcsec, wcs).any(axis=1)
            rows.append({"finder": name, "of": "consensus", "k": int(hit.sum()),
                         "n": len(hit)})
        others = [catalogs[c] for c in present if c != name]
        if others:
            hit = np.zeros(len(strong[name]), bool)
            for other in others:
                hit |= same_source(strong[name], other, beam_arcsec, wcs).any(axis=1)
            rows.append({"finder": name, "of": "confirmed", "k": int(hit.sum()),
                         "n": len(hit)})
    return rows
