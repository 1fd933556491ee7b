#!/usr/bin/env python
"""Cross-recall on real images: caesar-mrcnn, Aegean and PyBDSF, each against the others.

For every real image with a beam (the real-data folder's ``fields/`` and ``extended/``
images: the header's beam, or the survey beam the FITS reader knows for SkyView's FIRST and
NVSS cutouts) every finder runs with the same beam on a clean copy of the image (commentary
cards with tab characters, which stop BANE, left out; PyBDSF given the frequency of the header
or the survey). The table gives, at peak SNR >= 10 by default:

* each finder's recall of every other finder's significant sources;
* its recall of the *consensus*: the significant sources that Aegean and PyBDSF both report;
* the fraction of its own significant entries that a classical finder confirms.

The matching rule (:data:`caesar_mrcnn.evaluation.cross_recall.RULE`) is printed under the
table. caesar-mrcnn appears three times from one run: all entries, its spurious-class entries
left out, and all entries with their components (the component table's fitted Gaussians or
mask islands, as Aegean lists components rather than sources). With ``--mirabest`` the 30
MiraBest FIRST galaxies are added (FIRST beam 5.4″).

    python scripts/bench/cross_recall.py [--real DIR] [--weights FILE] [--snr 10]
        [--mirabest] [--set KEY=VALUE ...] [--out DIR]
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import tempfile
from pathlib import Path

from astropy.io import fits

from caesar_mrcnn.detection.command import add_infer_overrides, infer_config_of
from caesar_mrcnn.evaluation import compare_real as cr
from caesar_mrcnn.evaluation import finders
from caesar_mrcnn.evaluation.cross_recall import RULE, cross_recall
from caesar_mrcnn.io.atomic import atomic_open, make_output_folder

ROOT = Path(__file__).resolve().parents[2]
FIRST_BEAM = "5.4"
"""FIRST restoring beam FWHM (arcsec), for the MiraBest cutouts, whose headers carry none."""
CLASSICAL = ("aegean", "pybdsf")


def default_real_dir() -> Path:
    return Path(os.environ.get("CAESAR_REAL_DATA", ROOT / ".." / "shared" / "real"))


def is_image(path: Path) -> bool:
    """A FITS file whose primary HDU holds a 2D (or degenerate-axis) image."""
    try:
        with fits.open(path, memmap=True) as hdul:
            shape = [n for n in (hdul[0].shape or ()) if n > 1]
    except (OSError, ValueError):
        return False
    return len(shape) == 2


def real_images(real: Path, mirabest: bool) -> list[tuple[Path, str | None]]:
    """``(image, beam text or None)`` of the images to run, sorted by name."""
    found = sorted(p for d in ("fields", "extended", "extended/vlass")
                   for p in (real / d).glob("*.fits") if is_image(p))
    out: list[tuple[Path, str | None]] = [(p, None) for p in found]
    if mirabest:
        out += [(p, FIRST_BEAM) for p in sorted((real / "extended" / "mirabest_first")
                                                .glob("*.fits"))]
    return out


def _pct(k: int, n: int) -> str:
    return f"{100 * k / n:.1f} % ({k}/{n})" if n else "–"


def markdown(totals: dict, labels: list[str], snr: float, per_image: list[str],
             skipped: list[str]) -> str:
    cols = [*labels, "consensus", "confirmed"]
    head = ["finder \\ recall of", *[c + (f" ≥ {snr:g}σ" if c in labels else "") for c in cols]]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name in labels:
        cells = [name]
        for of in cols:
            k, n = totals.get((name, of), (0, 0))
            cells.append("–" if of == name or not n else _pct(k, n))
        lines.append("| " + " | ".join(cells) + " |")
    text = "\n".join(lines)
    text += (f"\n\nRule: {RULE} consensus: the sources at SNR ≥ {snr:g} that Aegean and PyBDSF "
             f"both report; confirmed: the finder's own entries at SNR ≥ {snr:g} that a "
             "classical finder (Aegean or PyBDSF) reports too.\n")
    text += "\nImages: " + ", ".join(per_image) + "\n"
    if skipped:
        text += "\nNot run: " + "; ".join(skipped) + "\n"
    return text


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--real", type=Path, default=default_real_dir(), help="real-data folder")
    p.add_argument("--weights", default=None, help="detector (default: the shipped one)")
    p.add_argument("--snr", type=float, default=10.0, help="significance of the sources counted")
    p.add_argument("--mirabest", action="store_true",
                   help="add the 30 MiraBest FIRST galaxies (FIRST beam given)")
    p.add_argument("--cores", type=int, default=1, help="processes for Aegean and PyBDSF")
    add_infer_overrides(p)
    p.add_argument("--out", type=Path, default=None, help="write cross_recall.md/.ecsv here")
    args = p.parse_args(argv)
    config = infer_config_of(p, args)
    if not args.real.is_dir():
        print(f"error: --real {args.real}: no such folder", file=sys.stderr)
        return 2
    totals: dict[tuple[str, str], tuple[int, int]] = {}
    labels = finders.row_names(finders.FINDERS)
    labels.insert(labels.index(finders.CAESAR_NO_SPURIOUS) + 1, finders.CAESAR_COMPONENTS)
    used, skipped, rows_out = [], [], []
    with tempfile.TemporaryDirectory(prefix="cross-recall-") as tmp:
        inputs = []
        for path, beam in real_images(args.real, args.mirabest):
            try:
                inputs.append(cr.prepare_image(path, cr.parse_beam_arcsec(beam), tmp))
            except Exception as exc:  # noqa: BLE001 - an image without beam or WCS is reported
                skipped.append(f"{path.name}: {cr.one_line(exc)}")
        runs = cr.run_finders(inputs, finders.FINDERS, weights=args.weights, config=config,
                              cores=args.cores,
                              progress=lambda f, im: print(f"{f}: {im.name}", file=sys.stderr))
    for im in inputs:
        mine = [r for r in runs if r.image == im.path]
        if not all(r.ran for r in mine):
            skipped += [f"{im.path.name}: {r.finder} {r.status}" for r in mine if not r.ran]
            continue
        catalogs = {label: cat for r in mine for label, cat in finders.finder_rows(r.finder,
                                                                                   r.catalog)}
        # the entries with their components, as Aegean lists components
        for r in mine:
            if r.finder == "caesar-mrcnn" and "level" in r.catalog.colnames:
                catalogs[finders.CAESAR_COMPONENTS] = r.catalog
        rows = cross_recall(catalogs, im.beam_arcsec, CLASSICAL, args.snr, im.wcs)
        for r in rows:
            k, n = totals.get((r["finder"], r["of"]), (0, 0))
            totals[(r["finder"], r["of"])] = (k + r["k"], n + r["n"])
            rows_out.append({"image": im.path.name, **r})
        used.append(im.path.name)
    text = (f"Cross-recall, {datetime.date.today()}, {platform.machine()} "
            f"{os.cpu_count()}-core CPU, command: python scripts/bench/cross_recall.py"
            + (" --mirabest" if args.mirabest else "") + "\n\n"
            + markdown(totals, labels, args.snr, used, skipped))
    print(text)
    if args.out is not None:
        from astropy.table import Table

        make_output_folder(args.out)
        with atomic_open(args.out / "cross_recall.md", "w") as fh:
            fh.write(text)
        Table(rows=rows_out, names=("image", "finder", "of", "k", "n")).write(
            args.out / "cross_recall.ecsv", overwrite=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
