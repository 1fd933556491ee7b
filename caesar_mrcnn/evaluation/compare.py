"""``caesar-mrcnn compare``: caesar-mrcnn side by side with Aegean and PyBDSF on simulated fields.

Every finder runs on the same FITS images; every finder's catalogue is matched to the same
ground truth by the same rules (:mod:`caesar_mrcnn.evaluation.catalog_match`), and scored with
the same metrics:

- completeness per true class and true-SNR bin, over the *real* truth sources (classes compact,
  extended, extended-multisland); spurious and flagged truth objects are not sources to find;
- reliability per measured-SNR bin: matched catalogue entries / entries. caesar-mrcnn entries
  it classifies as spurious or flagged are left out of its catalogue (it does not claim them as
  sources); an entry of any finder on a spurious artefact counts as a false source;
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
from caesar_mrcnn.evaluation.catalog_match import match_catalog, truth_pixel_positions

log = logging.getLogger(__name__)

FINDERS: tuple[str, ...] = ("caesar-mrcnn", "aegean", "pybdsf")
"""Finders known to the comparison, in table order."""

REAL_CLASSES: tuple[str, ...] = ("compact", "extended", "extended-multisland")
"""Truth classes that are real sources (completeness is computed over these)."""


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


def _caesar_catalog(image: Path, detector, config, predictor=None) -> Table:
    """caesar-mrcnn's catalogue of one image in the common form (real-source classes only)."""
    from caesar_mrcnn.detection import infer
    from caesar_mrcnn.evaluation.evaluate import _column

    result = infer.infer_image(image, detector=detector, predictor=predictor, config=config)
    cat = result.table
    out = classical._table(ra=_column(cat, "ra"), dec=_column(cat, "dec"),
                           flux_jy=_column(cat, "int_flux", "flux"),
                           peak_jyb=_column(cat, "peak_flux", "peak"), snr=_column(cat, "snr"),
                           maj_arcsec=_column(cat, "maj_fwhm"), min_arcsec=_column(cat, "min_fwhm"),
                           pa_deg=_column(cat, "pa"),
                           **{"class": np.asarray(cat["class"], dtype=str)})
    return out[np.isin(out["class"], REAL_CLASSES)]


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
        One row per finder (status, wall time, overall completeness / reliability, medians).
    bins : astropy.table.Table
        Long format: finder x class x SNR bin.
    """
    unknown = [f for f in finders if f not in FINDERS]
    if unknown:
        raise ConfigError(f"--finders: unknown finder(s) {', '.join(unknown)}; "
                          f"choose from {', '.join(FINDERS)}")
    scores = {name: FinderScore(name) for name in finders}
    if "caesar-mrcnn" in scores and weights is None and predictor_factory is None:
        scores["caesar-mrcnn"].status = "not run: no trained detector weights given (--weights)"
    for name in ("aegean", "pybdsf"):
        if name in scores and not classical.available(name):
            scores[name].status = f"not run: {name} is not installed (extra 'compare')"
    geometry = [_image_geometry(s) for s in samples]  # fail on bad inputs before any run
    detector = None
    if "caesar-mrcnn" in scores and scores["caesar-mrcnn"].ran and predictor_factory is None:
        from caesar_mrcnn.detection.detector import load_detector

        t0 = time.perf_counter()
        detector = load_detector(weights)  # once; its loading counts in the wall time
        scores["caesar-mrcnn"].wall_s += time.perf_counter() - t0
    for sample, (wcs, beam_pix, arcsec_pix) in zip(samples, geometry):
        for score in scores.values():
            if not score.ran:
                continue
            try:
                if score.name == "caesar-mrcnn":
                    t0 = time.perf_counter()
                    predictor = predictor_factory(sample) if predictor_factory else None
                    catalog = _caesar_catalog(sample.image_path, detector, config, predictor)
                    wall = time.perf_counter() - t0
                else:
                    runner = classical.run_aegean if score.name == "aegean" else \
                        classical.run_pybdsf
                    with tempfile.TemporaryDirectory(prefix="caesar-compare-") as tmp:
                        catalog, wall = runner(sample.image_path, tmp, cores=cores)
            except classical.FinderError as exc:
                log.warning("%s: %s", score.name, exc)
                score.status = f"failed: {exc}"
                continue
            score.wall_s += wall
            _score_field(score, sample, catalog, wcs, beam_pix, arcsec_pix, radius_beams)
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


def _fmt(v, digits: int = 3) -> str:
    if isinstance(v, (float, np.floating)):
        return "–" if not math.isfinite(v) else f"{v:.{digits}f}"
    return str(v)


def _interval(row, key: str) -> str:
    v = row[key]
    if not math.isfinite(v):
        return "–"
    return f"{v:.2f} [{row[key + '_lo']:.2f}, {row[key + '_hi']:.2f}]"


def markdown(summary: Table, bins: Table, command: str | None = None) -> str:
    """The side-by-side comparison as Markdown tables."""
    lines = []
    if command:
        lines += ["Made with:", "", "```", command, "```", ""]
    lines += ["| finder | status | fields | wall time (s) | truth | detections | fragments "
              "| completeness | reliability | flux ratio (median) "
              "| position error (median, arcsec) |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in summary:
        lines.append(f"| {r['finder']} | {r['status']} | {r['fields']} | {_fmt(r['wall_s'], 1)} "
                     f"| {r['n_truth'] if r['n_truth'] >= 0 else '–'} "
                     f"| {r['n_det'] if r['n_det'] >= 0 else '–'} "
                     f"| {r['n_fragments'] if r['n_fragments'] >= 0 else '–'} "
                     f"| {_interval(r, 'completeness')} | {_interval(r, 'reliability')} "
                     f"| {_fmt(r['flux_ratio_median'])} | {_fmt(r['pos_err_median_arcsec'], 2)} |")
    lines += ["", "fragments: unmatched catalogue entries lying inside a true source's mask "
              "(pieces of a source; counted as false detections in the reliability)."]
    ran = [r["finder"] for r in summary if r["status"] == "ok"]
    if ran and len(bins):
        lines += ["", "Completeness C (true SNR) and reliability R (measured SNR), all classes; "
                  "brackets: 95 % Wilson interval; n: truth sources / detections in the bin.", "",
                  "| SNR | " + " | ".join(f"{f} C | {f} R" for f in ran) + " |",
                  "|---|" + "---|---|" * len(ran)]
        allrows = bins[(bins["class"] == "all") & np.isfinite(bins["snr_lo"])]
        for lo, hi in sorted({(float(r["snr_lo"]), float(r["snr_hi"])) for r in allrows}):
            cells = []
            for f in ran:
                r = allrows[(allrows["finder"] == f) & (allrows["snr_lo"] == lo)][0]
                cells.append(f"{_interval(r, 'completeness')} (n={r['n_truth']})")
                cells.append(f"{_interval(r, 'reliability')} (n={r['n_det']})")
            lines.append(f"| {lo:g}–{hi:g} | " + " | ".join(cells) + " |")
        lines += ["", "Completeness per true class (all SNRs):", "",
                  "| class | " + " | ".join(ran) + " |", "|---|" + "---|" * len(ran)]
        for cls in REAL_CLASSES:
            cells = []
            for f in ran:
                r = bins[(bins["finder"] == f) & (bins["class"] == cls)
                         & ~np.isfinite(bins["snr_lo"])][0]
                cells.append(f"{_interval(r, 'completeness')} (n={r['n_truth']})")
            lines.append(f"| {cls} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot(summary: Table, bins: Table):
    """Completeness, reliability, flux ratio and position error vs SNR, one line per finder.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 8), layout="constrained")
    axes = fig.subplots(2, 2).ravel()
    panels = (("completeness", "Completeness (true SNR)"),
              ("reliability", "Reliability (measured SNR)"),
              ("flux_ratio_median", "Median S_measured / S_true (true SNR)"),
              ("pos_err_median_arcsec", "Median position error, arcsec (true SNR)"))
    ran = [r["finder"] for r in summary if r["status"] == "ok"]
    for k, finder in enumerate(ran):
        sel = bins[(bins["finder"] == finder) & (bins["class"] == "all")
                   & np.isfinite(bins["snr_lo"])]
        x = np.sqrt(np.asarray(sel["snr_lo"]) * np.asarray(sel["snr_hi"])) * (1 + 0.04 * k)
        for ax, (key, _) in zip(axes, panels):
            y = np.asarray(sel[key], float)
            err = None
            if key in ("completeness", "reliability"):
                # Wilson bounds contain the value; clip rounding noise (-1e-17) for errorbar.
                err = [np.maximum(y - np.asarray(sel[key + "_lo"], float), 0.0),
                       np.maximum(np.asarray(sel[key + "_hi"], float) - y, 0.0)]
            ok = np.isfinite(y)
            if ok.any():
                ax.errorbar(x[ok], y[ok], yerr=None if err is None else [e[ok] for e in err],
                            marker="o", ms=4, capsize=2, label=finder)
    for ax, (key, title) in zip(axes, panels):
        ax.set_xscale("log")
        ax.set_xlabel("SNR")
        ax.set_title(title)
        ax.grid(alpha=0.3)
        if key in ("completeness", "reliability"):
            ax.set_ylim(-0.03, 1.05)
        if key == "flux_ratio_median":
            ax.axhline(1.0, color="grey", lw=0.8)
        if ran:
            ax.legend(fontsize=8)
    not_run = [f"{r['finder']}: {r['status']}" for r in summary if r["status"] != "ok"]
    if not_run:
        fig.suptitle("; ".join(not_run), fontsize=8)
    return fig


def write_comparison(summary: Table, bins: Table, out: str | Path,
                     command: str | None = None) -> list[Path]:
    """Write summary/bins tables (ECSV + CSV), compare.md and compare.png into ``out``."""
    from caesar_mrcnn.evaluation.report import save_figure
    from caesar_mrcnn.io.atomic import atomic_open, atomic_path, make_output_folder

    fig = plot(summary, bins)  # before any file, so a plotting error leaves nothing behind
    text = markdown(summary, bins, command)
    out = make_output_folder(out)
    written = []
    for name, table in (("compare_summary", summary), ("compare_bins", bins)):
        for ext, fmt in (("ecsv", "ascii.ecsv"), ("csv", "ascii.csv")):
            with atomic_path(out / f"{name}.{ext}") as tmp:
                table.write(tmp, format=fmt)
            written.append(out / f"{name}.{ext}")
    with atomic_open(out / "compare.md", "w") as fh:
        fh.write(text)
    written.append(out / "compare.md")
    save_figure(fig, out / "compare.png")
    written.append(out / "compare.png")
    return written


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
    from caesar_mrcnn.evaluation.evaluate import infer_config, load_truth, parse_snr_bins
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
