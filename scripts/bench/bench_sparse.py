#!/usr/bin/env python
"""Sparse and dense skies: caesar-mrcnn with and without skipping empty tiles, beside PyBDSF
and Aegean, on the same images in one run.

Fields (``--cases``, any of):

* ``sparse-1024``: a simulated 1024² field, 3-pixel beam (6″ at 2″ pixels), 40 sources
  (34 compact, 4 extended, 2 multi-island), no blank border;
* ``sparse-4096``: the same sky on 4096² (640 sources);
* ``demo-4096``: the ``make demo`` mosaic (``configs/sim/demo.yaml``, 3410 objects);
* ``real``: the real cutout given with ``--real`` (a scratch copy with beam keywords, as
  ``compare`` writes it, read by every finder).

Each finder runs in its own process, start-up included (``bench_infer.run_measured``: wall
time and peak memory): caesar-mrcnn ``infer IMAGE --regions --catalog`` with the shipped
detector, once as it is (skipping, the default) and once with ``--set skip_empty=false``;
PyBDSF ``process_image`` and Aegean BANE + aegean (``--finders``). The two caesar-mrcnn
catalogues are compared: same entries (names), classes and pixel boxes, fluxes within 1e-6.

    python scripts/bench/bench_sparse.py [--cases sparse-1024 real] [--real IMAGE]
        [--cores 2] [--finders caesar-mrcnn pybdsf aegean] [--no-full]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
from dataclasses import replace
from datetime import date
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_infer import _CLASSICAL, run_measured  # noqa: E402

from caesar_mrcnn.config import load_config  # noqa: E402
from caesar_mrcnn.sim.config import SimConfig, resized  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
CASES = ("sparse-1024", "sparse-4096", "demo-4096", "real")
FINDERS = ("caesar-mrcnn", "pybdsf", "aegean")
SPARSE_PER_1024 = {"compact": 34, "extended": 4, "multisland": 2}
"""Sources of a sparse 1024² field, by population (scaled by area for other sizes)."""


def sparse_config(size: int) -> SimConfig:
    """A sparse sky: the demo field's noise and populations' shapes, a 3-pixel beam, and
    40 sources per 1024²."""
    cfg = load_config(SimConfig, ROOT / "configs/sim/demo.yaml")
    scale = size * size / 1024 ** 2
    n = {k: int(round(v * scale)) for k, v in SPARSE_PER_1024.items()}
    cfg = replace(cfg, field=replace(cfg.field, nx=size, ny=size),
                  beam=replace(cfg.beam, bmaj_arcsec=3 * cfg.field.pixel_arcsec,
                               bmin_arcsec=3 * cfg.field.pixel_arcsec),
                  nan_border=replace(cfg.nan_border, enabled=False),
                  compact=replace(cfg.compact, n=n["compact"]),
                  extended=replace(cfg.extended, n=n["extended"],
                                   n_multisland=n["multisland"]),
                  spurious=replace(cfg.spurious, n=0))
    cfg.validate()
    return cfg


def write_case(case: str, folder: Path, real: str | None) -> tuple[Path, str]:
    """The image of one case in ``folder``, and a description of it."""
    if case == "real":
        if real is None:
            raise SystemExit("--cases real needs --real IMAGE")
        from caesar_mrcnn.evaluation.compare_real import prepare_image

        scratch = folder / "real"
        scratch.mkdir()
        image = prepare_image(real, None, scratch)
        return image.run_path, Path(real).name
    from caesar_mrcnn.sim.field import simulate_field
    from caesar_mrcnn.sim.writer import write_field_fits

    size = int(case.rsplit("-", 1)[1])
    if case.startswith("sparse"):
        cfg = sparse_config(size)
    else:
        cfg = resized(load_config(SimConfig, ROOT / "configs/sim/demo.yaml"), size)
    field = simulate_field(cfg, np.random.default_rng(cfg.seed))
    path = folder / f"{case}.fits"
    write_field_fits(field, path)
    return path, f"{size}², {len(field.annotations)} objects"


def same_catalogue(a: Path, b: Path) -> str:
    """``yes`` when two caesar-mrcnn catalogues hold the same entries (names, classes, pixel
    boxes, fluxes within 1e-6), else what differs."""
    from astropy.table import Table

    ta, tb = Table.read(a, hdu=1), Table.read(b, hdu=1)
    if len(ta) != len(tb):
        return f"no: {len(ta)} vs {len(tb)} entries"
    for col in ("name", "class", "bbox_y0", "bbox_x0", "bbox_y1", "bbox_x1", "npix"):
        if list(ta[col]) != list(tb[col]):
            return f"no: {col} differs"
    for col in ("int_flux", "peak_flux"):
        if not np.allclose(ta[col], tb[col], rtol=1e-6, equal_nan=True):
            return f"no: {col} differs"
    return "yes"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", default=["sparse-1024"], choices=CASES)
    parser.add_argument("--real", help="a real FITS image for the 'real' case")
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--finders", nargs="+", default=list(FINDERS), choices=FINDERS)
    parser.add_argument("--no-full", dest="full", action="store_false",
                        help="leave out caesar-mrcnn's full pass (skip_empty=false)")
    args = parser.parse_args()
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    cli = [sys.executable, "-m", "caesar_mrcnn.cli"]
    print(f"# {date.today()}, {platform.machine()}, {os.cpu_count()} CPU cores, load "
          f"{os.getloadavg()[0]:.1f}")
    print("| image | finder | wall (s) | peak memory (MiB) | sources | tiles run | "
          "same catalogue |")
    print("|---|---|---:|---:|---:|---|---|")
    for case in args.cases:
        with tempfile.TemporaryDirectory(prefix="bench-sparse-") as tmp:
            image, what = write_case(case, Path(tmp), args.real)
            runs = []
            if "caesar-mrcnn" in args.finders:
                runs += [("caesar-mrcnn", [])]
                if args.full:
                    runs += [("caesar-mrcnn, skip_empty=false", ["--set", "skip_empty=false"])]
            runs += [(f, None) for f in args.finders if f != "caesar-mrcnn"]
            catalogues = []
            for name, extra in runs:
                work = Path(tmp) / f"run{len(catalogues)}_{len(runs)}_{name.split(',')[0]}"
                work.mkdir()
                if extra is not None:
                    cmd = [*cli, "infer", str(image), "--regions", str(work / "out.reg"),
                           "--catalog", str(work / "out.fits"), *extra]
                else:
                    cmd = [sys.executable, "-c", _CLASSICAL, name, str(image), str(work),
                           str(args.cores)]
                try:
                    wall, peak, out = run_measured(cmd, env, work / "stderr.log")
                except RuntimeError as exc:
                    print(f"| {what} | {name} | – | – | {exc} | | |", flush=True)
                    continue
                tiles = same = ""
                if extra is not None:
                    from astropy.io import fits

                    catalogues.append(work / "out.fits")
                    head = fits.getheader(work / "out.fits", 1)
                    n = int(head["NSOURCES"])
                    tiles = f"{head.get('NTILES', '?')} of {head.get('NTILEALL', '?')}"
                    if len(catalogues) == 2:
                        same = same_catalogue(*catalogues)
                else:
                    n = int(out.strip().splitlines()[-1])
                print(f"| {what} | {name} | {wall:.1f} | {peak:.0f} | {n} | {tiles} | {same} |",
                      flush=True)


if __name__ == "__main__":
    main()
