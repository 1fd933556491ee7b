#!/usr/bin/env python
"""Many small images: one ``caesar-mrcnn infer`` run beside PyBDSF run on each in turn.

The 30 FIRST cutouts of MiraBest (``extended/mirabest_first/*.fits`` in the real-data folder)
are found twice, each finder in its own process, both processes' start-up included:

* caesar-mrcnn: ``caesar-mrcnn infer *.fits --out-dir DIR --beam 5.4`` with the shipped
  detector, loaded once for all images;
* PyBDSF: ``process_image`` on one image after the other (``caesar_mrcnn.evaluation.finders.
  run_pybdsf``), on copies that carry the same beam in their headers (the cutouts have none).

Prints the wall time of each and the sources found; ``--variant "--tile 512"`` adds a row for
``infer`` with those options too (repeatable).

    python scripts/bench/bench_batch_infer.py [--real DIR] [--beam 5.4] [--cores 1]
        [--variant "OPTIONS"]
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CUTOUTS = "extended/mirabest_first"
_PYBDSF = """
import sys
from pathlib import Path
from caesar_mrcnn.evaluation.finders import run_pybdsf
work, cores, n = Path(sys.argv[1]), int(sys.argv[2]), 0
for image in sys.argv[3:]:
    scratch = work / Path(image).stem
    scratch.mkdir()
    table, _ = run_pybdsf(image, scratch, cores=cores)
    n += len(table)
print(n)
"""


def default_real_dir() -> Path:
    return Path(os.environ.get("CAESAR_REAL_DATA", ROOT / ".." / "shared" / "real"))


def with_beam(images: list[Path], beam_arcsec: float, folder: Path) -> list[Path]:
    """Copies of ``images`` with a circular restoring beam in their headers where none is."""
    from astropy.io import fits

    out = []
    for image in images:
        with fits.open(image) as hdul:
            # their COMMENT cards hold tabs, which astropy refuses to write back
            header = fits.Header([c for c in hdul[0].header.cards
                                  if c.keyword not in ("COMMENT", "HISTORY", "")])
            if "BMAJ" not in header:
                header["BMAJ"] = header["BMIN"] = beam_arcsec / 3600.0
                header["BPA"] = 0.0
            copy = folder / image.name
            fits.PrimaryHDU(hdul[0].data, header).writeto(copy)
        out.append(copy)
    return out


def timed(cmd: list[str], log: Path) -> tuple[float, str]:
    """Wall time (s) and stdout of one process; its stderr goes to ``log``."""
    with open(log, "w") as err:
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=err, text=True)
        wall = time.perf_counter() - t0
    if proc.returncode != 0:
        tail = log.read_text(errors="replace").strip().splitlines()[-3:]
        raise SystemExit(f"{cmd[0]} failed (exit {proc.returncode}): {' | '.join(tail)}")
    return wall, proc.stdout


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--real", type=Path, default=None,
                   help="real-data folder (default $CAESAR_REAL_DATA or ../shared/real)")
    p.add_argument("--beam", type=float, default=5.4, help="beam FWHM in arcsec (default 5.4)")
    p.add_argument("--cores", type=int, default=1, help="PyBDSF ncores (default 1)")
    p.add_argument("--variant", action="append", default=[], metavar="OPTIONS",
                   help="also time infer with these options, e.g. \"--tile 512\"")
    args = p.parse_args()
    images = sorted(((args.real or default_real_dir()) / CUTOUTS).glob("*.fits"))
    if not images:
        p.error(f"no FITS cutouts under {(args.real or default_real_dir()) / CUTOUTS}; "
                "give --real DIR")
    cli = Path(sys.executable).parent / "caesar-mrcnn"
    print(f"# {len(images)} FIRST cutouts; {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPU cores; beam {args.beam} arcsec")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "beam").mkdir()
        (tmp / "pybdsf").mkdir()
        copies = with_beam(images, args.beam, tmp / "beam")
        rows = []
        for i, variant in enumerate(["", *args.variant]):
            wall, out = timed([str(cli), "infer", *map(str, images), "--out-dir",
                               str(tmp / f"caesar{i}"), "--beam", str(args.beam),
                               "--no-progress", *shlex.split(variant)], tmp / f"caesar{i}.log")
            rows.append(("caesar-mrcnn", f"one `infer` over {len(images)} images "
                         f"{variant}".strip(), wall, out.strip().splitlines()[-1]))
        wall, out = timed([sys.executable, "-c", _PYBDSF, str(tmp / "pybdsf"),
                           str(args.cores), *map(str, copies)], tmp / "pybdsf.log")
        rows.append(("PyBDSF", f"{len(images)} `process_image` in turn (ncores={args.cores})",
                     wall, f"{out.strip().splitlines()[-1]} sources"))
    print("| finder | run | wall (s) | per image (s) | result |")
    print("|---|---|---:|---:|---|")
    for finder, run, wall, result in rows:
        print(f"| {finder} | {run} | {wall:.1f} | {wall / len(images):.2f} | {result} |")


if __name__ == "__main__":
    main()
