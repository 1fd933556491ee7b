#!/usr/bin/env python
"""Choose ``FitRules.resolved_nsigma`` on simulated faint sources: the flux-density bias of the
resolved/unresolved decision.

A compact component is measured with its free Gaussian fit when its fitted area exceeds the
beam's by more than ``resolved_nsigma`` times a point source's spread, else with the beam's
shape (``docs/measurement.md``). A point source called resolved reads high, a slightly
resolved source called a point reads low; which threshold balances the two depends on the
SNR and on the mix of sizes. This benchmark measures it on simulated images only (Gaussian
noise correlated as the beam, no real image): sources of peak SNR ``--snr`` (log-uniform),
half point-like, half elliptical Gaussians of intrinsic major FWHM 0.5–3 beams (log-uniform,
axis ratio 0.5–1, any angle), convolved with the beam — the mix of
``scripts/bench/inject_real.py``. Each source is measured through
:func:`caesar_mrcnn.measure.sources.measure_catalogs` on its 3σ island, once per threshold.

    python scripts/bench/resolved_threshold.py [--images 12] [--snr 5,10] [--seed 1]
        [--thresholds 0,1,2,3,4]

Per threshold: measured / true integrated flux density, median for all sources, the points
and the resolved ones, and the scatter (1.4826 MAD of log10, dex).
"""

from __future__ import annotations

import argparse
import math
import sys

import numpy as np
from scipy import ndimage

from caesar_mrcnn.data.dataset import Annotation
from caesar_mrcnn.measure.background import background_grid
from caesar_mrcnn.measure.components import FitRules
from caesar_mrcnn.measure.sources import measure_catalogs

FWHM_PIX = 5.0
SIGMA_PIX = FWHM_PIX / (2 * math.sqrt(2 * math.log(2)))
BEAM_AREA_PIX = 2 * math.pi * SIGMA_PIX**2
GRID = 40  # pixels between sources (8 beams)


def _source_cov(rng: np.random.Generator, point: bool) -> np.ndarray:
    beam = np.diag([SIGMA_PIX**2] * 2)
    if point:
        return beam
    maj = SIGMA_PIX * math.exp(rng.uniform(math.log(0.5), math.log(3.0)))
    mn = maj * rng.uniform(0.5, 1.0)
    th = rng.uniform(0, math.pi)
    rot = np.array([[math.cos(th), -math.sin(th)], [math.sin(th), math.cos(th)]])
    return rot @ np.diag([maj * maj, mn * mn]) @ rot.T + beam


def simulate(rng: np.random.Generator, snr_range: tuple[float, float], ny: int = 8,
             nx: int = 6) -> tuple[np.ndarray, list[tuple[float, float, bool, float]]]:
    """One image of unit-rms beam-correlated noise with ``ny * nx`` sources on a grid; the
    sources as ``(y, x, point, flux)`` (flux in units of rms x beam)."""
    shape = (ny * GRID, nx * GRID)
    noise = ndimage.gaussian_filter(rng.standard_normal(shape), SIGMA_PIX / math.sqrt(2))
    img = noise / noise.std()
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    truth = []
    for i in range(ny):
        for j in range(nx):
            y = GRID / 2 + GRID * i + rng.uniform(-2, 2)
            x = GRID / 2 + GRID * j + rng.uniform(-2, 2)
            point = bool(rng.random() < 0.5)
            snr = math.exp(rng.uniform(*np.log(snr_range)))
            cov = _source_cov(rng, point)
            icov = np.linalg.inv(cov)  # (y, x) order
            dy, dx = yy - y, xx - x
            img += snr * np.exp(-0.5 * (icov[0, 0] * dy * dy + 2 * icov[0, 1] * dx * dy
                                        + icov[1, 1] * dx * dx))
            truth.append((y, x, point, snr * 2 * math.pi * math.sqrt(np.linalg.det(cov))
                          / BEAM_AREA_PIX))
    return img.astype(np.float32), truth


def islands_of(img: np.ndarray, truth) -> tuple[list[Annotation], list[tuple[bool, float]]]:
    """Each source's 3σ island as a compact detection (sources without one are skipped)."""
    labels, _ = ndimage.label(img >= 3.0, structure=np.ones((3, 3), bool))
    boxes = ndimage.find_objects(labels)
    objects, kept = [], []
    for y, x, point, flux in truth:
        lab = labels[int(round(y)), int(round(x))]
        if lab == 0:
            continue
        box = boxes[lab - 1]
        objects.append(Annotation("compact", (box[0].start, box[1].start, box[0].stop,
                                              box[1].stop), labels[box] == lab))
        kept.append((point, flux))
    return objects, kept


def _dex(r: np.ndarray) -> float:
    lg = np.log10(r[np.isfinite(r) & (r > 0)])
    return float(1.4826 * np.median(np.abs(lg - np.median(lg))))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=int, default=12, help="simulated images of 48 sources")
    p.add_argument("--snr", default="5,10", help="peak SNR range, log-uniform")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--thresholds", default="0,1,2,3,4")
    args = p.parse_args(argv)
    lo, hi = (float(v) for v in args.snr.split(","))
    thresholds = [float(v) for v in args.thresholds.split(",")]
    rng = np.random.default_rng(args.seed)
    ratios = {z: [] for z in thresholds}
    points: list[bool] = []
    for _ in range(args.images):
        img, truth = simulate(rng, (lo, hi))
        objects, kept = islands_of(img, truth)
        bkg = background_grid(img, img.shape, box=64)
        points += [pt for pt, _ in kept]
        for z in thresholds:
            table, _ = measure_catalogs(objects, img, img.shape, beam_area_pix=BEAM_AREA_PIX,
                                        background=bkg, rules=FitRules(resolved_nsigma=z))
            ratios[z] += list(np.asarray(table["int_flux"], float)
                              / np.array([f for _, f in kept]))
    pt = np.array(points)
    print(f"{len(pt)} sources at peak SNR {lo:g}–{hi:g} ({pt.sum()} points), seed {args.seed}\n")
    print("| resolved_nsigma | median, all | median, points | median, resolved | scatter (dex) |")
    print("|---|---|---|---|---|")
    for z in thresholds:
        r = np.array(ratios[z])
        print(f"| {z:g} | {np.nanmedian(r):.3f} | {np.nanmedian(r[pt]):.3f} "
              f"| {np.nanmedian(r[~pt]):.3f} | {_dex(r):.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
