"""``caesar-mrcnn compare``: caesar-mrcnn side by side with Aegean and PyBDSF on simulated fields.

Every finder runs on the same FITS images; every finder's catalogue is matched to the same
ground truth by the same rules (:mod:`caesar_mrcnn.evaluation.catalog_match`), and scored with
the same metrics (this module runs and scores; :mod:`compare_report` writes the tables):

- completeness per true class and true-SNR bin, over the *real* truth sources (classes compact,
  extended, extended-multisland); spurious and flagged truth objects are not sources to find;
- reliability per measured-SNR bin: matched catalogue entries / entries; an entry of any
  finder on a spurious artefact counts as a false source. caesar-mrcnn is reported twice from
  one run: with every entry (the footing of Aegean and PyBDSF, which class nothing as an
  artefact) and with its ``spurious``-class entries left out (what it claims as sources);
- median flux ratio (integrated flux / true flux) and median position error (arcsec) of matched
  sources per true-SNR bin; total wall time per finder.

A finder that cannot run (not installed; no trained caesar-mrcnn weights given) appears in the
table with its reason and no numbers: nothing is made up.
"""

from __future__ import annotations

import logging
import math
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from astropy.table import Table

from caesar_mrcnn.data.dataset import Sample
from caesar_mrcnn.errors import ConfigError, DatasetError
from caesar_mrcnn.evaluation import finders as classical
from caesar_mrcnn.evaluation import metrics
from caesar_mrcnn.evaluation.catalog_match import (
    REAL_CLASSES,
    match_catalog,
    truth_pixel_positions,
)
from caesar_mrcnn.evaluation.finders import FINDERS, finder_rows, row_names

log = logging.getLogger(__name__)

__all__ = ["FINDERS", "REAL_CLASSES", "FinderScore", "compare", "compare_samples"]


@dataclass
class FinderScore:
    """What one finder achieved over all fields (arrays concatenated over fields)."""

    name: str
    status: str = "ok"
    wall_s: float = 0.0
    truth_class: list = field(default_factory=list)
    truth_snr: list = field(default_factory=list)
    truth_found: list = field(default_factory=list)
    det_snr: list = field(default_factory=list)
    det_true: list = field(default_factory=list)
    pair_snr: list = field(default_factory=list)
    flux_ratio: list = field(default_factory=list)
    pos_err: list = field(default_factory=list)
    fragments: int = 0

    @property
    def ran(self) -> bool:
        """Whether the finder produced numbers."""
        return self.status == "ok"

    def arrays(self, name: str) -> np.ndarray:
        """Concatenation of a per-field list attribute."""
        parts = getattr(self, name)
        if name == "truth_class":
            return np.array([c for p in parts for c in p], dtype=object)
        return np.concatenate(parts) if parts else np.zeros(0)


def _image_geometry(sample: Sample):
    from caesar_mrcnn.io.fits import read_image

    img = read_image(sample.image_path)
    if img.wcs is None or img.beam is None or img.pixel_scale_deg is None:
        raise DatasetError(f"{sample.image_path}: the comparison needs a celestial WCS and beam "
                           "keywords (BMAJ, BMIN, BPA) in the FITS header")
    scale = math.sqrt(img.pixel_scale_deg[0] * img.pixel_scale_deg[1])
    return img.wcs, img.beam.bmaj_deg / scale, scale * 3600.0


def _score_field(score: FinderScore, sample: Sample, catalog: Table, wcs, beam_pix: float,
                 arcsec_per_pix: float, radius_beams: float) -> None:
    truth = [a for a in sample.annotations if a.category in REAL_CLASSES]
    m, cx, cy = match_catalog(truth, catalog, wcs, beam_pix, radius_beams)
    snr_t = np.array([float(a.attrs.get("snr", np.nan)) for a in truth])
    score.truth_class.append([a.category for a in truth])
    score.truth_snr.append(snr_t)
    score.truth_found.append(m.truth_matched)
    score.det_snr.append(np.asarray(catalog["snr"], float))
    score.det_true.append(m.det_matched)
    ti, di = m.truth_idx, m.det_idx
    flux_t = np.array([float(truth[i].attrs.get("flux_jy", np.nan)) for i in ti])
    with np.errstate(invalid="ignore", divide="ignore"):
        score.flux_ratio.append(np.asarray(catalog["flux_jy"], float)[di] / flux_t)
    ra_t = np.array([float(truth[i].attrs.get("ra", np.nan)) for i in ti])
    dec_t = np.array([float(truth[i].attrs.get("dec", np.nan)) for i in ti])
    sky = metrics.angular_separation_arcsec(ra_t, dec_t, np.asarray(catalog["ra"], float)[di],
                                            np.asarray(catalog["dec"], float)[di])
    tx, ty = truth_pixel_positions([truth[i] for i in ti], wcs)
    pix = np.hypot(cx[di] - tx, cy[di] - ty) * arcsec_per_pix
    score.pos_err.append(np.where(np.isfinite(sky), sky, pix))
    score.pair_snr.append(snr_t[ti])
    score.fragments += _count_fragments(truth, cx[~m.det_matched], cy[~m.det_matched])


def _count_fragments(truth, x: np.ndarray, y: np.ndarray) -> int:
    """Unmatched catalogue entries whose position lies inside a real truth mask: pieces of a
    source another entry was matched to (or of a source found by none), not empty-sky noise."""
    ix, iy = np.rint(x).astype(int), np.rint(y).astype(int)
    inside = np.zeros(ix.size, bool)
    for ann in truth:
        y0, x0, y1, x1 = ann.bbox
        sel = (ix >= x0) & (ix < x1) & (iy >= y0) & (iy < y1)
        inside[sel] |= ann.mask[iy[sel] - y0, ix[sel] - x0]
    return int(inside.sum())


def _median(v: np.ndarray) -> float:
    v = v[np.isfinite(v)]
    return float(np.median(v)) if v.size else float("nan")


def _rows(score: FinderScore, bins: Sequence[float], confidence: float) -> list[dict]:
    """Long-format rows of one finder: per class x SNR bin (plus 'all' rows)."""
    if not score.ran:
        return []
    comp = metrics.binned_fraction(score.arrays("truth_found"), score.arrays("truth_snr"),
                                   score.arrays("truth_class"), bins, REAL_CLASSES, confidence)
    n_det = score.arrays("det_true").size
    rel = metrics.binned_fraction(score.arrays("det_true"), score.arrays("det_snr"),
                                  np.full(n_det, "all", dtype=object), bins, (), confidence)
    rel = {r["snr_lo"] if not math.isnan(r["snr_lo"]) else None: r for r in rel}
    snr, ratio, err = score.arrays("pair_snr"), score.arrays("flux_ratio"), score.arrays("pos_err")
    rows = []
    for c in comp:
        key = c["snr_lo"] if not math.isnan(c["snr_lo"]) else None
        in_bin = (np.ones(snr.size, bool) if key is None
                  else (snr >= c["snr_lo"]) & (snr < c["snr_hi"]))
        if c["class"] != "all":
            cls = score.arrays("truth_class")[score.arrays("truth_found").astype(bool)]
            in_bin &= cls == c["class"]
        r = rel[key] if c["class"] == "all" else None
        rows.append({
            "finder": score.name, "class": c["class"], "snr_lo": c["snr_lo"],
            "snr_hi": c["snr_hi"], "n_truth": c["n"], "n_found": c["k"],
            "completeness": c["value"], "completeness_lo": c["lo"], "completeness_hi": c["hi"],
            "n_det": r["n"] if r else -1, "n_det_true": r["k"] if r else -1,
            "reliability": r["value"] if r else float("nan"),
            "reliability_lo": r["lo"] if r else float("nan"),
            "reliability_hi": r["hi"] if r else float("nan"),
            "flux_ratio_median": _median(ratio[in_bin]),
            "pos_err_median_arcsec": _median(err[in_bin])})
    return rows


def _summary_row(score: FinderScore, rows: list[dict], n_fields: int) -> dict:
    overall = next((r for r in rows if r["class"] == "all" and math.isnan(r["snr_lo"])), None)
    nan = float("nan")
    pick = lambda k: overall[k] if overall else nan  # noqa: E731
    return {"finder": score.name, "status": score.status, "fields": n_fields,
            "wall_s": score.wall_s if score.ran else nan,
            "n_truth": int(pick("n_truth")) if overall else -1,
            "n_det": int(pick("n_det")) if overall else -1,
            "n_fragments": score.fragments if score.ran else -1,
            "completeness": pick("completeness"), "completeness_lo": pick("completeness_lo"),
            "completeness_hi": pick("completeness_hi"), "reliability": pick("reliability"),
            "reliability_lo": pick("reliability_lo"), "reliability_hi": pick("reliability_hi"),
            "flux_ratio_median": pick("flux_ratio_median"),
            "pos_err_median_arcsec": pick("pos_err_median_arcsec")}


def compare_samples(samples: Sequence[Sample], finders: Sequence[str] = FINDERS,
                    weights: str | Path | None = None, config=None, predictor_factory=None,
                    snr_bins: Sequence[float] = metrics.DEFAULT_SNR_BINS,
                    radius_beams: float = 0.5, cores: int = 1, confidence: float = 0.95
                    ) -> tuple[Table, Table]:
    """Run and score each finder on labelled images (the core of ``caesar-mrcnn compare``).

    Parameters
    ----------
    samples : sequence of Sample
        FITS images (WCS and beam in the header) with truth annotations (``attrs`` ``snr``,
        ``flux_jy`` (Jy), ``ra``, ``dec`` (deg) or ``x``, ``y`` (pixels) used where present).
    finders : sequence of str
        Subset of :data:`FINDERS`.
    weights : path-like, optional
        Trained caesar-mrcnn weights; without them caesar-mrcnn is reported as not run.
    config : caesar_mrcnn.detection.infer.InferConfig, optional
        caesar-mrcnn inference options.
    predictor_factory : callable, optional
        ``factory(sample) -> predictor`` run in place of the trained model under the
        caesar-mrcnn name (for tests and upper bounds, e.g. ``detector.TruthPredictor``).
    snr_bins : sequence of float
        SNR bin edges.
    radius_beams : float
        Match radius for compact sources, in beam FWHM.
    cores : int
        Processes the classical finders may use.
    confidence : float
        Confidence level of the Wilson intervals.

    Returns
    -------
    summary : astropy.table.Table
        One row per finder row (caesar-mrcnn: all entries, and spurious left out): status,
        wall time, overall completeness / reliability, medians.
    bins : astropy.table.Table
        Long format: finder x class x SNR bin.
    """
    unknown = [f for f in finders if f not in FINDERS]
    if unknown:
        raise ConfigError(f"--finders: unknown finder(s) {', '.join(unknown)}; "
                          f"choose from {', '.join(FINDERS)}")
    finders = [f for f in FINDERS if f in finders]
    status = {name: "ok" for name in finders}
    if "caesar-mrcnn" in status and weights is None and predictor_factory is None:
        status["caesar-mrcnn"] = "not run: no trained detector weights given (--weights)"
    for name in ("aegean", "pybdsf"):
        if name in status and not classical.available(name):
            status[name] = f"not run: {name} is not installed (extra 'compare')"
    # One score per table row: caesar-mrcnn gives two rows (all entries; spurious left out).
    scores = {label: FinderScore(label, status[name])
              for name in finders for label in row_names([name])}
    rows_of = {name: row_names([name]) for name in finders}
    geometry = [_image_geometry(s) for s in samples]  # fail on bad inputs before any run
    detector, load_s = None, 0.0
    if status.get("caesar-mrcnn") == "ok" and predictor_factory is None:
        from caesar_mrcnn.detection.detector import load_detector

        t0 = time.perf_counter()
        detector = load_detector(weights)  # once; its loading counts in the wall time
        load_s = time.perf_counter() - t0
    for label in rows_of.get("caesar-mrcnn", ()):
        scores[label].wall_s += load_s
    for sample, (wcs, beam_pix, arcsec_pix) in zip(samples, geometry):
        for name in finders:
            if not scores[rows_of[name][0]].ran:
                continue
            try:
                if name == "caesar-mrcnn":
                    predictor = predictor_factory(sample) if predictor_factory else None
                    catalog, wall = classical.run_caesar_mrcnn(sample.image_path, detector,
                                                               config, predictor)
                else:
                    runner = classical.run_aegean if name == "aegean" else classical.run_pybdsf
                    with tempfile.TemporaryDirectory(prefix="caesar-compare-") as tmp:
                        catalog, wall = runner(sample.image_path, tmp, cores=cores)
            except classical.FinderError as exc:
                log.warning("%s: %s", name, exc)
                for label in rows_of[name]:
                    scores[label].status = f"failed: {exc}"
                continue
            for label, rows_catalog in finder_rows(name, catalog):
                scores[label].wall_s += wall
                _score_field(scores[label], sample, rows_catalog, wcs, beam_pix, arcsec_pix,
                             radius_beams)
    for score in scores.values():
        if not score.ran:
            log.warning("%s %s", score.name, score.status)
    rows, summary = [], []
    for score in scores.values():
        r = _rows(score, snr_bins, confidence)
        rows += r
        summary.append(_summary_row(score, r, len(samples)))
    bins_table = Table(rows=rows, names=list(_BIN_COLUMNS)) if rows else Table(
        names=list(_BIN_COLUMNS), dtype=[str, str] + [float] * (len(_BIN_COLUMNS) - 2))
    return Table(rows=summary), bins_table


_BIN_COLUMNS = ("finder", "class", "snr_lo", "snr_hi", "n_truth", "n_found", "completeness",
                "completeness_lo", "completeness_hi", "n_det", "n_det_true", "reliability",
                "reliability_lo", "reliability_hi", "flux_ratio_median", "pos_err_median_arcsec")


def compare(data: str | Path, out: str | Path, weights: str | Path | None = None,
            finders: Sequence[str] = FINDERS, snr_bins: str | Sequence[float] | None = None,
            radius_beams: float = 0.5, cores: int = 1, config=None,
            overrides: Sequence[str] = (), command: str | None = None) -> tuple[Table, Table]:
    """Compare caesar-mrcnn, Aegean and PyBDSF on a labelled (simulated) dataset.

    Parameters
    ----------
    data : path-like
        Simulated-field folder or dataset readable by ``data.readers.load_dataset``.
    out : path-like
        Output folder: compare_summary.{ecsv,csv}, compare_bins.{ecsv,csv}, compare.md,
        compare.png.
    weights : path-like, optional
        Trained caesar-mrcnn weights; without them only the classical finders run.
    finders, snr_bins, radius_beams, cores :
        See :func:`compare_samples`.
    config, overrides :
        caesar-mrcnn inference options: YAML file and ``key=value`` overrides.
    command : str, optional
        Command line quoted at the top of compare.md.

    Returns
    -------
    summary, bins : astropy.table.Table
    """
    from caesar_mrcnn.detection.command import infer_config
    from caesar_mrcnn.evaluation.compare_report import write_comparison
    from caesar_mrcnn.evaluation.evaluate import load_truth, parse_snr_bins
    from caesar_mrcnn.evaluation.report import check_output_folder

    bins = parse_snr_bins(snr_bins)
    if not radius_beams > 0:
        raise ConfigError(f"--radius-beams: must be positive, got {radius_beams}")
    if cores < 1:
        raise ConfigError(f"--cores: must be at least 1, got {cores}")
    check_output_folder(out)
    if weights is not None and not Path(weights).exists():
        from caesar_mrcnn.errors import WeightsError

        raise WeightsError(f"--weights {weights}: no such file; train a model first or leave "
                           "--weights out to compare the classical finders alone")
    cfg = infer_config(config, overrides) if weights is not None else None
    samples = load_truth(data)
    summary, table = compare_samples(samples, finders, weights, cfg, None, bins, radius_beams,
                                     cores)
    write_comparison(summary, table, out, command)
    return summary, table
