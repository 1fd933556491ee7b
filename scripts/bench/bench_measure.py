#!/usr/bin/env python
"""Time source measurement on a simulated mosaic, with and without Gaussian fits.

The field's true masks stand in for detections, so the figures are those of
``caesar_mrcnn.measure.sources.measure_sources`` alone (background grid, moments, fits, WCS) and the
flux-density ratios can be checked against the truth. Prints, for the mask sums and for the
Gaussian fits of compact sources: wall time, sources per second, and the median ratio of
measured to true flux density of compact sources in SNR bins.

    python scripts/bench/bench_measure.py [--config configs/sim/demo.yaml] [--size 4096]
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

from caesar_mrcnn.config import load_config
from caesar_mrcnn.data.dataset import Annotation
from caesar_mrcnn.io.fits import open_image
from caesar_mrcnn.measure.background import background_grid
from caesar_mrcnn.measure.sources import measure_sources
from caesar_mrcnn.sim.config import SimConfig, resized
from caesar_mrcnn.sim.field import simulate_field
from caesar_mrcnn.sim.writer import write_field_fits

ROOT = Path(__file__).resolve().parents[2]
SNR_BINS = (3, 5, 7, 10, 20, 50, 100, 1000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(ROOT / "configs/sim/demo.yaml"))
    parser.add_argument("--size", type=int, default=4096)
    args = parser.parse_args()
    cfg = resized(load_config(SimConfig, args.config), args.size)
    field = simulate_field(cfg, np.random.default_rng(cfg.seed))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "field.fits"
        write_field_fits(field, path)
        with open_image(path) as img:
            wcs, beam_area_pix = img.wcs, img.beam_area_pix
    image, shape = field.image, field.shape
    truth = field.annotations
    objects = [Annotation(a.category, a.bbox, a.mask) for a in truth]
    true_flux = np.array([a.attrs["flux_jy"] for a in truth])
    true_snr = np.array([a.attrs["snr"] for a in truth])
    compact = np.array([a.category == "compact" for a in truth])
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores; "
          f"{shape[1]}x{shape[0]} field, {len(objects)} objects ({compact.sum()} compact)")
    bkg = background_grid(image, shape)
    print("| method | wall (s) | sources/s | compact flux ratio (median) per true SNR bin "
          + " ".join(f"{lo}-{hi}" for lo, hi in zip(SNR_BINS[:-1], SNR_BINS[1:])) + " |")
    for label, fit in (("mask sums", False), ("Gaussian fits", True)):
        t0 = time.perf_counter()
        table = measure_sources(objects, image, shape, wcs=wcs,
                                beam_area_pix=beam_area_pix, background=bkg,
                                fit_compact=fit)
        wall = time.perf_counter() - t0
        ratio = np.asarray(table["int_flux"]) / true_flux
        medians = []
        for lo, hi in zip(SNR_BINS[:-1], SNR_BINS[1:]):
            sel = compact & (true_snr >= lo) & (true_snr < hi) & np.isfinite(ratio)
            medians.append(f"{np.median(ratio[sel]):.3f}" if sel.any() else "–")
        print(f"| {label} | {wall:.1f} | {len(objects) / wall:.0f} | {' '.join(medians)} |")


if __name__ == "__main__":
    main()
