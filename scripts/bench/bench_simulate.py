#!/usr/bin/env python
"""Time the simulator: one field with its ground truth at several sizes.

Populations scale with the field area from the configuration (default configs/sim/demo.yaml,
whose 4096 x 4096 mosaic holds 3000 compact, 370 extended and 40 spurious objects). Prints one
line per size: wall-clock and CPU seconds (all threads) to simulate one field (image + noise +
ground truth, in memory), seconds to write its FITS image, and the object count. On a shared
machine the CPU time is the steadier figure.

    python scripts/bench/bench_simulate.py [--config YAML] [--sizes 1024 2048 4096] [--repeat 3]
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
from caesar_mrcnn.sim.config import SimConfig, resized
from caesar_mrcnn.sim.field import simulate_field
from caesar_mrcnn.sim.writer import write_field_fits

ROOT = Path(__file__).resolve().parents[2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(ROOT / "configs/sim/demo.yaml"))
    parser.add_argument("--sizes", type=int, nargs="+", default=[1024, 2048, 4096])
    parser.add_argument("--repeat", type=int, default=3, help="runs per size (best is shown)")
    args = parser.parse_args()
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, "
          f"numpy {np.__version__}, config {Path(args.config).name}")
    base = load_config(SimConfig, args.config)
    simulate_field(resized(base, 256), np.random.default_rng(0))  # warm-up
    print(f"{'size':>10} {'simulate_s':>11} {'cpu_s':>6} {'write_fits_s':>13} {'objects':>8}")
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            cfg = resized(base, size)
            best, best_cpu, best_write, n_obj = np.inf, np.inf, np.inf, 0
            for r in range(args.repeat):
                c0, t0 = time.process_time(), time.perf_counter()
                sim = simulate_field(cfg, np.random.default_rng(r))
                c1, t1 = time.process_time(), time.perf_counter()
                write_field_fits(sim, Path(tmp) / "bench.fits")
                t2 = time.perf_counter()
                best, best_write = min(best, t1 - t0), min(best_write, t2 - t1)
                best_cpu = min(best_cpu, c1 - c0)
                n_obj = len(sim.annotations)
                del sim
            print(f"{size:>5}x{size:<4} {best:>11.2f} {best_cpu:>6.2f} {best_write:>13.2f} "
                  f"{n_obj:>8d}")


if __name__ == "__main__":
    main()
