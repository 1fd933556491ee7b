#!/usr/bin/env python
"""Time a gzip-compressed FITS image against the same image uncompressed.

A simulated field is written as ``.fits`` and as ``.fits.gz``; each is then read as a source
finding run reads it: opened once, then every 256 x 256 tile (64 px overlap) read as a window,
and the background/rms grid computed from windows (CPU seconds, best of ``--repeat``). With
``--infer`` the whole ``infer_image`` run (tiles, merging, measuring, writing a catalogue) is
timed too, with a detector that finds nothing, so the figure is the input layer's, not the
network's; with ``--detector`` the run uses the shipped detector (loaded once), as
``caesar-mrcnn infer`` does. Prints one line per size and case, and the ratio gz / plain.

    python scripts/bench/bench_fits_gz.py [--sizes 1024 2048] [--repeat 3] [--infer] [--detector]
"""

from __future__ import annotations

import argparse
import gzip
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

from caesar_mrcnn.config import load_config
from caesar_mrcnn.detection.tiling import tile_grid
from caesar_mrcnn.io.fits import open_image
from caesar_mrcnn.measure.background import background_grid
from caesar_mrcnn.sim.config import SimConfig, resized
from caesar_mrcnn.sim.field import simulate_field
from caesar_mrcnn.sim.writer import write_field_fits

ROOT = Path(__file__).resolve().parents[2]


def read_like_infer(path: Path) -> None:
    """Open once, read every tile window, compute the background grid from windows."""
    with open_image(path) as img:
        for t in tile_grid(img.shape, 256, 64):
            img.read_window(t.y0, t.y1, t.x0, t.x1)
        background_grid(img, img.shape, box=64)


def _no_detections(batch, windows):
    n, size = len(batch), batch.shape[1]
    return {"scores": np.zeros((n, 1)), "classes": np.zeros((n, 1), dtype=np.int64),
            "masks": np.zeros((n, 1, size, size), np.float32),
            "valid": np.zeros((n, 1), dtype=bool)}


def infer_run(path: Path, out: Path, detector=None) -> None:
    from caesar_mrcnn.detection.infer import InferConfig, infer_image

    if detector is None:
        infer_image(path, predictor=_no_detections, config=InferConfig(tile=256, overlap=64),
                    regions=out / "cat.reg", catalog=out / "cat.fits")
    else:
        infer_image(path, detector=detector, regions=out / "cat.reg", catalog=out / "cat.fits")


def best_cpu(fn, path: Path, repeat: int) -> float:
    """Least CPU time (s, this process, all threads) of ``repeat`` calls ``fn(path)``."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.process_time()
        fn(path)
        best = min(best, time.process_time() - t0)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1024, 2048])
    parser.add_argument("--repeat", type=int, default=3, help="runs per case (best is shown)")
    parser.add_argument("--infer", action="store_true", help="also time infer_image")
    parser.add_argument("--detector", action="store_true",
                        help="also time infer_image with the shipped detector")
    args = parser.parse_args()
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, "
          f"numpy {np.__version__}; CPU seconds, best of {args.repeat}")
    base = load_config(SimConfig, ROOT / "configs/sim/demo.yaml")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for size in args.sizes:
            cfg = resized(base, size)
            sim = simulate_field(cfg, np.random.default_rng(size))
            plain = tmp / f"field{size}.fits"
            write_field_fits(sim, plain)
            packed = tmp / f"field{size}.fits.gz"
            packed.write_bytes(gzip.compress(plain.read_bytes(), compresslevel=6))
            cases = [("read", read_like_infer)]
            if args.infer:
                out = tmp / "out"
                out.mkdir(exist_ok=True)
                cases.append(("infer", lambda p, out=out: infer_run(p, out)))
            if args.detector:
                from caesar_mrcnn.detection.detector import load_detector

                out = tmp / "out"
                out.mkdir(exist_ok=True)
                det = load_detector(None)
                cases.append(("model", lambda p, out=out, det=det: infer_run(p, out, det)))
            for name, fn in cases:
                t_plain = best_cpu(fn, plain, args.repeat)
                t_gz = best_cpu(fn, packed, args.repeat)
                print(f"{size}x{size} {name:5s}: .fits {t_plain:7.3f} s  .fits.gz "
                      f"({packed.stat().st_size / 2**20:.1f} MiB) {t_gz:7.3f} s  "
                      f"ratio {t_gz / t_plain:5.2f}")


if __name__ == "__main__":
    main()
