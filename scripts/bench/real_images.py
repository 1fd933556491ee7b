#!/usr/bin/env python
"""The "Real images" table of docs/benchmarks.md: caesar-mrcnn beside Aegean and PyBDSF on real
survey images, scored against published catalogues and known radio galaxies.

Two parts, one command:

* four fields with a reference catalogue, cross-matched by
  :func:`caesar_mrcnn.evaluation.reference.cross_match` (found, matching, fragments, wall):
  LoTSS-DR1 P205+55 (400²) and P218+55 (200²) against the published LoTSS-DR1 source list,
  Parkes 1904-66 against Aegean's test catalogue, WSRT Abell 2255 against PyBDSF's test source
  list;
* the 30 FIRST cutouts of MiraBest radio galaxies, and the 73 of the MiraBest Confident test
  batch (``--parts``), scored by the central-galaxy rule
  (:func:`caesar_mrcnn.evaluation.reference.central_galaxy`): the galaxy at each centre as ONE
  entry, of class extended / extended-multisland, split into 2+, entries elsewhere, wall. Their
  headers have no beam: the FIRST beam, 5.4″, is given as for ``compare --beam``. Position and
  largest angular size (LAS) come from the file names (``<label>_<RA><Dec>_<z>_<LAS>.fits``).

caesar-mrcnn appears twice from one run (all entries; spurious-class entries left out). The
real images are read from ``--real`` (default: ``$CAESAR_REAL_DATA`` or ``../shared/real``
beside the repository); nothing is copied.

    python scripts/bench/real_images.py [--weights FILE] [--out DIR] [--cores 1]
"""

from __future__ import annotations

import argparse
import datetime
import logging
import os
import platform
import re
import sys
import tempfile
from pathlib import Path

from caesar_mrcnn.evaluation import compare_real as cr
from caesar_mrcnn.evaluation import compare_report as report
from caesar_mrcnn.evaluation.reference import read_reference
from caesar_mrcnn.io.atomic import atomic_open, make_output_folder

ROOT = Path(__file__).resolve().parents[2]
FIRST_BEAM = "5.4"
"""FIRST restoring beam FWHM (arcsec); SkyView's FIRST cutouts carry none in their headers."""

FIELDS = (
    ("fields/lotss_dr1_P205+55_cutout400.fits", "fields/lotss_dr1_P205+55_P218+55.srl.fits"),
    ("fields/lotss_dr1_P218+55_cutout200.fits", "fields/lotss_dr1_P205+55_P218+55.srl.fits"),
    ("fields/parkes_chipass_1904-66_SIN.fits", "fields/parkes_chipass_1904-66_aegean_comp.fits"),
    ("fields/wsrt_abell2255_pybdsf_ch0_I.fits", "fields/wsrt_abell2255_pybdsf.srl.fits"),
)
"""(image, reference catalogue), relative to the real-data folder."""

GALAXY_DIRS = {"galaxies": "extended/mirabest_first", "galaxies-test": "extended/mirabest_test"}
"""The parts scored by the central-galaxy rule, and their folders: the 30 MiraBest FIRST
galaxies, and the 73 MiraBest Confident test-batch galaxies as FITS."""
_NAME = re.compile(r"^(\d{3})_([0-9.]+)([+-][0-9.]+)_([0-9.]+)_([0-9.]+)\.fits$")


def default_real_dir() -> Path:
    return Path(os.environ.get("CAESAR_REAL_DATA", ROOT / ".." / "shared" / "real"))


def galaxies(folder: Path) -> list[cr.Galaxy]:
    """The MiraBest FIRST cutouts of ``folder``: position and LAS from each file name."""
    out = []
    for path in sorted(folder.glob("*.fits")):
        m = _NAME.match(path.name)
        if m:
            out.append(cr.Galaxy(path, float(m.group(2)), float(m.group(3)),
                                 float(m.group(5))))
    return out


def shipped_name() -> str:
    from caesar_mrcnn.zoo.lookup import shipped_detector

    return f"{shipped_detector().name} (shipped)"


def _progress(finder: str, image: Path) -> None:
    print(f"  {finder}: {image.name}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    from caesar_mrcnn.detection.command import add_infer_overrides, infer_config_of

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--real", type=Path, default=None,
                   help="real-data folder (default $CAESAR_REAL_DATA or ../shared/real)")
    p.add_argument("--weights", default=None, metavar="FILE",
                   help="caesar-mrcnn detector file (default: the shipped detector)")
    p.add_argument("--out", type=Path, default=Path("real_images"), help="output folder")
    p.add_argument("--cores", type=int, default=1, help="processes for Aegean and PyBDSF")
    p.add_argument("--finders", default="caesar-mrcnn,aegean,pybdsf")
    add_infer_overrides(p)
    p.add_argument("--parts", default="fields,galaxies,galaxies-test",
                   help="comma-separated: fields, galaxies (MiraBest FIRST), galaxies-test "
                        "(MiraBest test batch)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    real = args.real or default_real_dir()
    if not (real / FIELDS[0][0]).exists():
        p.error(f"no real data under {real}; give --real DIR")
    finders = args.finders.split(",")
    parts = set(args.parts.split(","))
    cfg = infer_config_of(p, args) if "caesar-mrcnn" in finders else None
    command = "python scripts/bench/real_images.py " + " ".join(argv or sys.argv[1:])
    lines = [f"- Date: {datetime.date.today().isoformat()}",
             f"- Machine: {platform.machine()}, {os.cpu_count()} CPU cores, "
             f"{platform.system()}; Aegean and PyBDSF with --cores {args.cores}",
             f"- Detector: {Path(args.weights).name if args.weights else shipped_name()}",
             f"- Command: `{command}`", ""]
    with tempfile.TemporaryDirectory(prefix="caesar-real-") as tmp:
        if "fields" in parts:
            from astropy.table import vstack

            inputs = [cr.prepare_image(real / image, None, tmp) for image, _ in FIELDS]
            runs = cr.run_finders(inputs, finders, args.weights, cfg, args.cores,
                                  progress=_progress)  # the detector is loaded once
            notes_all, tables = [], []
            for im, (_, catalog) in zip(inputs, FIELDS):
                mine = [r for r in runs if r.image == im.path]
                table, notes = cr.score_reference(mine, [im], read_reference(real / catalog))
                notes_all += notes
                tables.append(table)

            fields = vstack(tables)
            report.write_reference_comparison(fields, notes_all, args.out / "fields",
                                              command=command)
            lines += [report.reference_markdown(fields, notes_all), ""]
        for part in [q for q in GALAXY_DIRS if q in parts]:
            folder = GALAXY_DIRS[part]
            gals = galaxies(real / folder)
            beam = cr.parse_beam_arcsec(FIRST_BEAM)
            print(f"{folder}: {len(gals)} cutouts", file=sys.stderr, flush=True)
            inputs = [cr.prepare_image(g.image, beam, tmp) for g in gals]
            runs = cr.run_finders(inputs, finders, args.weights, cfg, args.cores,
                                  progress=_progress)
            summary, per_image, notes = cr.score_galaxies(runs, inputs, gals)
            beam_note = (f"FIRST beam {FIRST_BEAM}\" written into a scratch copy of each "
                         "cutout (their headers have none); every finder reads that copy.")
            report.write_galaxies_comparison(summary, per_image, notes, args.out / part,
                                             beam=beam_note, command=command)
            lines += [f"{folder} ({len(gals)} galaxies):", "",
                      report.galaxies_markdown(summary, notes, beam_note), ""]
    text = "\n".join(lines)
    with atomic_open(make_output_folder(args.out) / "real_images.md", "w") as fh:
        fh.write(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
