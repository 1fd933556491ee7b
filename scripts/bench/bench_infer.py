#!/usr/bin/env python
"""Wall time and peak memory of source finding on growing images: caesar-mrcnn beside Aegean
and PyBDSF on the same simulated mosaics.

For each size, one field of configs/sim/demo.yaml (populations scaled by area) is written to
FITS; each finder then runs in its own process, whose peak resident memory is read from the
operating system when it ends (``wait4``; children it waited for included):

* caesar-mrcnn: ``caesar-mrcnn infer IMAGE --regions --catalog`` with the shipped detector
  (model loading included);
* Aegean: BANE then aegean (``caesar_mrcnn.evaluation.finders.run_aegean``);
* PyBDSF: ``process_image`` and the source list (``run_pybdsf``).

A finder that is not installed is reported as such.

    python scripts/bench/bench_infer.py [--sizes 1024 2048 4096] [--cores 2] [--finders ...]
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from caesar_mrcnn.config import load_config
from caesar_mrcnn.sim.config import SimConfig, resized
from caesar_mrcnn.sim.field import simulate_field
from caesar_mrcnn.sim.writer import write_field_fits

ROOT = Path(__file__).resolve().parents[2]
FINDERS = ("caesar-mrcnn", "aegean", "pybdsf")
_CLASSICAL = """
import sys
from caesar_mrcnn.evaluation import finders
run = finders.run_aegean if sys.argv[1] == "aegean" else finders.run_pybdsf
table, _ = run(sys.argv[2], sys.argv[3], cores=int(sys.argv[4]))
print(len(table))
"""


def run_measured(cmd: list[str], env: dict, log: Path) -> tuple[float, float, str]:
    """Wall time (s), peak resident memory (MiB) and stdout of one process (stderr to log)."""
    with open(log, "wb") as err, tempfile.TemporaryFile() as out:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read().decode(errors="replace")
    if proc.returncode != 0:
        tail = log.read_text(errors="replace").strip().splitlines()[-1:]
        raise RuntimeError(f"exit {proc.returncode}: {' '.join(tail)}")
    return wall, usage.ru_maxrss / 1024.0, text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(ROOT / "configs/sim/demo.yaml"))
    parser.add_argument("--sizes", type=int, nargs="+", default=[1024, 2048, 4096])
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--finders", nargs="+", default=list(FINDERS), choices=FINDERS)
    args = parser.parse_args()
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    cli = [sys.executable, "-m", "caesar_mrcnn.cli"]
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores")
    print("| size | objects | finder | wall (s) | peak memory (MiB) | sources |")
    print("|---|---|---|---|---|---|")
    for size in args.sizes:
        cfg = resized(load_config(SimConfig, args.config), size)
        field = simulate_field(cfg, np.random.default_rng(cfg.seed))
        with tempfile.TemporaryDirectory(prefix="bench-infer-") as tmp:
            image = Path(tmp) / f"field_{size}.fits"
            write_field_fits(field, image)
            for finder in args.finders:
                work = Path(tmp) / finder
                work.mkdir()
                if finder == "caesar-mrcnn":
                    cmd = [*cli, "infer", str(image), "--regions", str(work / "out.reg"),
                           "--catalog", str(work / "out.fits")]
                else:
                    cmd = [sys.executable, "-c", _CLASSICAL, finder, str(image), str(work),
                           str(args.cores)]
                try:
                    wall, peak, out = run_measured(cmd, env, work / "stderr.log")
                except RuntimeError as exc:
                    print(f"| {size}² | {len(field.annotations)} | {finder} | – | – | {exc} |")
                    continue
                if finder == "caesar-mrcnn":
                    from astropy.table import Table

                    n = len(Table.read(work / "out.fits", hdu=1))
                else:
                    n = int(out.strip().splitlines()[-1])
                print(f"| {size}² | {len(field.annotations)} | {finder} | {wall:.1f} | "
                      f"{peak:.0f} | {n} |", flush=True)


if __name__ == "__main__":
    main()
