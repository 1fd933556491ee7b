"""``caesar-mrcnn compare --reference``: every finder on real images, scored against catalogues.

Each image is run through caesar-mrcnn, Aegean and PyBDSF, with the same beam: the header's,
or for images without one (SkyView's FIRST and NVSS cutouts) the ``--beam`` given, written
into a scratch copy that every finder reads. Every finder's catalogue is then scored by the
rules of :mod:`caesar_mrcnn.evaluation.reference`: against a reference catalogue (found,
matching, fragments), or against radio galaxies of known position and size (one entry per
galaxy, entries elsewhere).

caesar-mrcnn appears twice, from one run: with every entry it reports (the same footing as
Aegean and PyBDSF, which class nothing as an artefact) and with its ``spurious``-class entries
left out (what it claims as sources). A finder that could not run, or failed on an image, keeps
its rows with the reason and no numbers.
"""

from __future__ import annotations

import logging
import math
import os
import re
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from astropy.table import Table

from caesar_mrcnn.classes import EXTENDED_CLASSES
from caesar_mrcnn.errors import ConfigError, DatasetError
from caesar_mrcnn.evaluation import finders as finder_runs
from caesar_mrcnn.evaluation import reference as ref

log = logging.getLogger(__name__)

FINDERS = finder_runs.FINDERS
finder_rows, row_names = finder_runs.finder_rows, finder_runs.row_names

@dataclass
class ImageInput:
    """One image as the finders see it.

    Attributes
    ----------
    path : pathlib.Path
        The user's image.
    run_path : pathlib.Path
        What the finders read: a scratch copy with the beam keywords (:func:`prepare_image`).
    wcs : astropy.wcs.WCS
        Celestial WCS.
    beam_arcsec : float
        Beam major-axis FWHM (arcsec).
    valid : numpy.ndarray of bool
        Finite pixels.
    pixel_arcsec : float
        Pixel size (arcsec, geometric mean of the two axes).
    beam_source : str
        ``"header"``, ``"--beam"`` or ``"FITS reader"`` (a beam the reader inferred).
    """

    path: Path
    run_path: Path
    wcs: object
    beam_arcsec: float
    valid: np.ndarray
    pixel_arcsec: float
    beam_source: str


@dataclass
class FinderRun:
    """One finder on one image."""

    finder: str
    image: Path
    status: str = "ok"
    catalog: Table | None = None
    wall_s: float = float("nan")
    notes: list = field(default_factory=list)

    @property
    def ran(self) -> bool:
        return self.status == "ok"


def parse_beam_arcsec(text: str | None):
    """``BMAJ[,BMIN[,BPA]]`` (arcsec, arcsec, deg) as a :class:`~caesar_mrcnn.io.beam.Beam`,
    or None; the one parser of ``--beam`` (:func:`caesar_mrcnn.io.beam.parse_beam`).

    Raises
    ------
    ConfigError
        One line naming ``--beam`` when the text is not one to three numbers with positive axes.
    """
    from caesar_mrcnn.io.beam import parse_beam

    return None if text is None else parse_beam(text)


def prepare_image(path: str | os.PathLike, beam, workdir: str | os.PathLike) -> ImageInput:
    """Check an image and write the copy every finder reads, beam keywords included.

    The copy carries ``BMAJ``/``BMIN``/``BPA`` (Aegean and PyBDSF read only those keywords):
    the header's own, else ``beam``, else the beam the FITS reader infers (e.g. a survey's
    default); a header with the axes but no angle gets ``BPA = 0``. Commentary cards with
    unprintable characters, which stop BANE from writing its maps, are left out of the copy;
    the pixels are untouched.

    Parameters
    ----------
    path : path-like
        FITS image with a celestial WCS.
    beam : caesar_mrcnn.io.fits.Beam or None
        Beam for an image whose header has no BMAJ/BMIN keywords.
    workdir : path-like
        Scratch folder for the copy.

    Raises
    ------
    DatasetError
        No celestial WCS, or no beam at all.
    """
    from astropy.io import fits

    from caesar_mrcnn.io.fits import read_image

    path = Path(path)
    img = read_image(path)
    if img.wcs is None or img.pixel_scale_deg is None:
        raise DatasetError(f"{path}: no celestial WCS in the header; the comparison needs sky "
                           "positions")
    has_keys = "BMAJ" in img.header and "BMIN" in img.header
    use, source = img.beam, "header"
    if not has_keys:
        use, source = (beam, "--beam") if beam is not None else (img.beam, "FITS reader")
    if use is None:
        raise DatasetError(f"{path}: no restoring beam (BMAJ/BMIN) in the header; give it "
                           "with --beam BMAJ[,BMIN,BPA] (arcsec)")
    run_path = Path(workdir) / f"{len(list(Path(workdir).iterdir()))}_{path.stem}.fits"
    with fits.open(path) as hdul:
        for hdu in hdul:
            cards = hdu.header.cards
            bad = [i for i, c in enumerate(cards) if c.keyword in ("HISTORY", "COMMENT", "")
                   and not (str(c.value).isascii() and str(c.value).isprintable())]
            for i in reversed(bad):
                del hdu.header[i]
            if hdu.is_image and (hdu is hdul[0] or hdu.header.get("NAXIS")):
                # PyBDSF needs all three keywords: a header with the axes but no BPA (as some
                # ATCA images have) gets the angle the FITS reader assumed, 0.
                for key, value, what in (("BMAJ", use.bmaj_deg, "beam FWHM"),
                                         ("BMIN", use.bmin_deg, "beam FWHM"),
                                         ("BPA", use.bpa_deg, "beam PA")):
                    if not has_keys or key not in hdu.header:
                        hdu.header[key] = (value, f"[deg] {what} ({source})")
        hdul.writeto(run_path, output_verify="silentfix")
    pixel_arcsec = math.sqrt(img.pixel_scale_deg[0] * img.pixel_scale_deg[1]) * 3600.0
    return ImageInput(path, run_path, img.wcs, use.bmaj_deg * 3600.0, img.valid, pixel_arcsec,
                      source)


def run_finders(images: Sequence[ImageInput], finders: Sequence[str] = FINDERS,
                weights: str | os.PathLike | None = None, config=None, cores: int = 1,
                predictor_factory=None, progress=None) -> list[FinderRun]:
    """Run every finder on every image.

    Parameters
    ----------
    images : sequence of ImageInput
        From :func:`prepare_image`.
    finders : sequence of str
        Subset of :data:`FINDERS`.
    weights : path-like, optional
        caesar-mrcnn detector file; the shipped reference detector when None.
    config : caesar_mrcnn.detection.infer.InferConfig, optional
        caesar-mrcnn inference options.
    cores : int
        Processes Aegean and PyBDSF may use.
    predictor_factory : callable, optional
        ``factory(image_input) -> predictor`` run in place of the detector (tests).
    progress : callable, optional
        Called as ``progress(finder, image_path)`` before each run.

    Returns
    -------
    list of FinderRun
        Finder-major order; the detector's loading time is counted in caesar-mrcnn's first run.
    """
    unknown = [f for f in finders if f not in FINDERS]
    if unknown:
        raise ConfigError(f"--finders: unknown finder(s) {', '.join(unknown)}; "
                          f"choose from {', '.join(FINDERS)}")
    runs = []
    for name in [f for f in FINDERS if f in finders]:
        status = "ok"
        if name != "caesar-mrcnn" and not finder_runs.available(name):
            status = f"not run: {name} is not installed (extra 'compare')"
        detector, load_s = None, 0.0
        if name == "caesar-mrcnn" and predictor_factory is None:
            from caesar_mrcnn.detection.detector import load_detector

            t0 = time.perf_counter()
            detector = load_detector(weights)
            load_s = time.perf_counter() - t0
        for k, image in enumerate(images):
            run = FinderRun(name, image.path, status)
            runs.append(run)
            if not run.ran:
                continue
            if progress is not None:
                progress(name, image.path)
            try:
                if name == "caesar-mrcnn":
                    predictor = predictor_factory(image) if predictor_factory else None
                    run.catalog, run.wall_s = finder_runs.run_caesar_mrcnn(
                        image.run_path, detector, config, predictor)
                    if k == 0 and load_s:
                        run.wall_s += load_s
                        run.notes.append(f"caesar-mrcnn: loading the detector once "
                                         f"({load_s:.1f} s) is counted in its first image")
                else:
                    runner = (finder_runs.run_aegean if name == "aegean"
                              else finder_runs.run_pybdsf)
                    with tempfile.TemporaryDirectory(prefix="caesar-compare-") as tmp:
                        run.catalog, run.wall_s = runner(image.run_path, tmp, cores=cores)
                    run.notes += [f"{image.path.name}: {n}"
                                  for n in run.catalog.meta.get("notes", [])]
            except Exception as exc:  # noqa: BLE001 - a finder's crash is a result to report
                why = one_line(exc)
                log.warning("%s on %s: %s", name, image.path, why)
                run.status = f"failed: {why}"
        failed: dict[str, list[str]] = {}
        for run in runs:
            if run.finder == name and run.status.startswith("failed: "):
                failed.setdefault(run.status[len("failed: "):], []).append(run.image.name)
        for why, names in failed.items():
            shown = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")
            runs[-1].notes.append(f"{name} failed on {len(names)} image(s) ({shown}): {why}")
    return runs


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def one_line(exc: BaseException, limit: int = 200) -> str:
    """An exception's message on one line: colour codes removed; Keras' preamble ("Exception
    encountered when calling ...") and argument dump skipped."""
    lines = [ln.strip() for ln in _ANSI.sub("", str(exc)).splitlines() if ln.strip()]
    lines = [ln for ln in lines if not ln.startswith("Exception encountered when calling")]
    cut = next((i for i, ln in enumerate(lines) if ln.startswith("Arguments received")),
               len(lines))
    text = " ".join(lines[:cut]) or type(exc).__name__
    return text if len(text) <= limit else text[:limit - 1] + "…"


REFERENCE_COLUMNS = ("finder", "image", "status", "n_reference", "n_found", "n_entries",
                     "n_matching", "n_fragmented", "wall_s")


def score_reference(runs: Sequence[FinderRun], images: Sequence[ImageInput],
                    reference: Table) -> tuple[Table, list[str]]:
    """Score every run against the reference sources inside its image.

    Returns
    -------
    table : astropy.table.Table
        One row per finder row (:func:`finder_rows`) and image, then one ``all images`` row per
        finder row: :data:`REFERENCE_COLUMNS` (counts -1 and wall NaN where the finder did not
        run).
    notes : list of str
        Workarounds and failures, to print with the table.
    """
    by_path = {im.path: im for im in images}
    # A reference position half a beam past a blanked edge still belongs to the image.
    inside = {im.path: reference[ref.inside_image(reference, im.wcs, im.valid,
                                                  im.beam_arcsec / im.pixel_arcsec / 2)]
              for im in images}
    rows, notes = [], []
    for run in runs:
        notes += run.notes
        image = by_path[run.image]
        sources = inside[run.image]
        labels = (finder_rows(run.finder, run.catalog) if run.ran
                  else [(lab, None) for lab in row_names([run.finder])])
        for label, cat in labels:
            if cat is None:
                rows.append((label, run.image.name, run.status, len(sources), -1, -1, -1, -1,
                             float("nan")))
                continue
            m = ref.cross_match(sources, cat, image.beam_arcsec, image.wcs)
            rows.append((label, run.image.name, "ok", len(sources), int(m.found.sum()), len(cat),
                         int(m.matching.sum()), m.n_fragmented, run.wall_s))
    table = Table(rows=rows, names=REFERENCE_COLUMNS,
                  dtype=(str, str, str, int, int, int, int, int, float)) if rows else Table(
        names=REFERENCE_COLUMNS, dtype=(str, str, str, int, int, int, int, int, float))
    if len(images) > 1:
        table = _with_totals(table)
    return table, notes


def _with_totals(table: Table) -> Table:
    out = Table(table, copy=True)
    for label in dict.fromkeys(table["finder"]):
        sel = table[table["finder"] == label]
        ok = sel["status"] == "ok"
        failed = sorted(set(sel["status"][~ok]))
        status = ("ok" if ok.all() else f"ok on {ok.sum()}/{len(sel)} (see notes)" if ok.any()
                  else failed[0] if len(failed) == 1 else "failed (see notes)")
        counts = [int(sel[c][ok].sum()) if ok.any() else -1
                  for c in ("n_found", "n_entries", "n_matching", "n_fragmented")]
        out.add_row((label, "all images", status, int(sel["n_reference"].sum()), *counts,
                     float(sel["wall_s"][ok].sum()) if ok.any() else float("nan")))
    return out


GALAXY_COLUMNS = ("finder", "status", "galaxies", "one_entry", "one_entry_extended", "split",
                  "missed", "elsewhere", "wall_s")


@dataclass
class Galaxy:
    """A radio galaxy at a known position in an image."""

    image: Path
    ra_deg: float
    dec_deg: float
    las_arcsec: float


def score_galaxies(runs: Sequence[FinderRun], images: Sequence[ImageInput],
                   galaxies: Sequence[Galaxy]) -> tuple[Table, Table, list[str]]:
    """Score every run by the central-galaxy rule (:mod:`caesar_mrcnn.evaluation.reference`).

    Returns
    -------
    summary : astropy.table.Table
        One row per finder row: :data:`GALAXY_COLUMNS` (counts over the images it ran on;
        ``one_entry_extended`` is -1 for finders that do not classify).
    per_image : astropy.table.Table
        ``finder, image, n_central, central_classes, n_elsewhere``.
    notes : list of str
    """
    by_path = {im.path: im for im in images}
    gal = {g.image: g for g in galaxies}
    per, notes, agg = [], [], {}
    for run in runs:
        notes += run.notes
        labels = (finder_rows(run.finder, run.catalog) if run.ran
                  else [(lab, None) for lab in row_names([run.finder])])
        for label, cat in labels:
            a = agg.setdefault(label, {"status": set(), "n": 0, "one": 0, "ext": 0, "split": 0,
                                       "missed": 0, "elsewhere": 0, "wall": 0.0, "ran": 0,
                                       "classes": run.finder == "caesar-mrcnn"})
            a["n"] += 1
            if cat is None:
                a["status"].add(run.status)
                continue
            g = gal[run.image]
            c = ref.central_galaxy(cat, g.ra_deg, g.dec_deg, g.las_arcsec,
                                   by_path[run.image].beam_arcsec)
            a["ran"] += 1
            a["one"] += c.one_entry
            a["ext"] += c.one_entry_of(EXTENDED_CLASSES)
            a["split"] += c.n_central >= 2
            a["missed"] += c.n_central == 0
            a["elsewhere"] += c.n_elsewhere
            a["wall"] += run.wall_s
            per.append((label, run.image.name, c.n_central, ",".join(c.central_classes),
                        c.n_elsewhere))
    rows = []
    for label, a in agg.items():
        status = ("ok" if a["ran"] == a["n"] else
                  next(iter(a["status"])) if a["ran"] == 0 and len(a["status"]) == 1 else
                  "failed (see notes)" if a["ran"] == 0 else
                  f"ok on {a['ran']}/{a['n']} (see notes)")
        ran = a["ran"] > 0
        rows.append((label, status, a["n"], a["one"] if ran else -1,
                     a["ext"] if ran and a["classes"] else -1, a["split"] if ran else -1,
                     a["missed"] if ran else -1, a["elsewhere"] if ran else -1,
                     a["wall"] if ran else float("nan")))
    dtype = (str, str, int, int, int, int, int, int, float)
    summary = Table(rows=rows, names=GALAXY_COLUMNS, dtype=dtype) if rows else Table(
        names=GALAXY_COLUMNS, dtype=dtype)
    pdt = (str, str, int, str, int)
    pnames = ("finder", "image", "n_central", "central_classes", "n_elsewhere")
    per_image = Table(rows=per, names=pnames, dtype=pdt) if per else Table(names=pnames,
                                                                           dtype=pdt)
    return summary, per_image, notes


def compare_reference(images: Sequence[str | os.PathLike], reference: str | os.PathLike,
                      out: str | os.PathLike, finders: Sequence[str] = FINDERS,
                      weights: str | os.PathLike | None = None, beam: str | None = None,
                      cores: int = 1, config=None, overrides: Sequence[str] = (),
                      command: str | None = None) -> tuple[Table, list[str]]:
    """Cross-match every finder's catalogue of real images with a reference catalogue.

    Parameters
    ----------
    images : sequence of path-like
        FITS images with a celestial WCS.
    reference : path-like
        Reference catalogue (:func:`~caesar_mrcnn.evaluation.reference.read_reference`); only
        its sources on an image's finite pixels count for that image.
    out : path-like
        Output folder: reference.{ecsv,csv}, reference.md, reference.png (written atomically).
    finders : sequence of str
        Subset of :data:`FINDERS`.
    weights : path-like, optional
        caesar-mrcnn detector file (the shipped reference detector when None).
    beam : str, optional
        ``BMAJ[,BMIN[,BPA]]`` (arcsec) for images whose header has no beam.
    cores : int
        Processes Aegean and PyBDSF may use.
    config, overrides :
        caesar-mrcnn inference options: YAML file and ``key=value`` overrides.
    command : str, optional
        Command line quoted in reference.md.

    Returns
    -------
    table : astropy.table.Table
        :data:`REFERENCE_COLUMNS`, per finder row and image (plus totals for several images).
    notes : list of str
    """
    from caesar_mrcnn.detection.command import infer_config
    from caesar_mrcnn.evaluation.compare_report import write_reference_comparison
    from caesar_mrcnn.evaluation.report import check_output_folder

    if not images:
        raise ConfigError("compare --reference: give at least one IMAGE")
    if cores < 1:
        raise ConfigError(f"--cores: must be at least 1, got {cores}")
    unknown = [f for f in finders if f not in FINDERS]
    if unknown:
        raise ConfigError(f"--finders: unknown finder(s) {', '.join(unknown)}; "
                          f"choose from {', '.join(FINDERS)}")
    check_output_folder(out)
    if weights is not None and not Path(weights).exists():
        from caesar_mrcnn.errors import WeightsError

        raise WeightsError(f"--weights {weights}: no such file; give a detector file or leave "
                           "--weights out for the shipped one")
    catalog = ref.read_reference(reference)
    parsed_beam = parse_beam_arcsec(beam)
    cfg = infer_config(config, overrides) if "caesar-mrcnn" in finders else None
    with tempfile.TemporaryDirectory(prefix="caesar-compare-") as tmp:
        inputs = [prepare_image(p, parsed_beam, tmp) for p in images]  # all checked first
        runs = run_finders(inputs, finders, weights, cfg, cores)
        table, notes = score_reference(runs, inputs, catalog)
    notes += [f"{im.path.name}: beam {im.beam_arcsec:.2f}\" from {im.beam_source}"
              for im in inputs if im.beam_source != "header"]
    write_reference_comparison(table, notes, out, reference=Path(reference).name,
                               command=command)
    return table, notes
