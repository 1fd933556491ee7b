#!/usr/bin/env python
"""What a run does before its first tile, phase by phase.

Each phase in a fresh process unless noted, wall time, best of ``--repeat``:

* ``caesar-mrcnn --help`` and a bad-input error (``infer`` of a missing file): neither
  imports TensorFlow;
* ``import tensorflow``;
* in one process: loading the shipped detector (model built, weights assigned), the first
  model call on a batch of one tile (tracing the graph for that tile shape and optimising it),
  the next calls (steady state), and the first call on a second tile shape.

    python scripts/bench/bench_startup.py [--repeat 2] [--tile 256]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time

_IN_PROCESS = """
import json, sys, time
t0 = time.perf_counter()
import numpy as np
import tensorflow  # noqa: F401
t1 = time.perf_counter()
from caesar_mrcnn.detection.detector import load_detector
det = load_detector()
predict = det.predictor.keeping(0.5)  # as infer runs it: masks for what score_thr keeps
t2 = time.perf_counter()
tile = int(sys.argv[1])
channels = getattr(det.preprocess, "num_channels", 1)
def call(size):
    batch = np.zeros((1, size, size, channels), np.float32)
    t = time.perf_counter()
    predict(batch, np.zeros((1, 4)))
    return time.perf_counter() - t
first = call(tile)
steady = min(call(tile) for _ in range(3))
other = call(2 * tile)
print(json.dumps({"import tensorflow (in the run)": t1 - t0, "load the detector": t2 - t1,
                  f"first call, {tile}² (trace + optimise)": first,
                  f"next calls, {tile}² (best of 3)": steady,
                  f"first call, {2 * tile}² (second shape)": other}))
"""


def wall(cmd: list[str], env: dict) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, env=env, capture_output=True, check=False)
    return time.perf_counter() - t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--tile", type=int, default=256)
    args = parser.parse_args()
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    py = sys.executable
    cli = [py, "-m", "caesar_mrcnn.cli"]
    rows: dict[str, float] = {}
    for _ in range(args.repeat):
        found = {
            "caesar-mrcnn --help": wall([*cli, "--help"], env),
            "caesar-mrcnn infer MISSING.fits (error)": wall(
                [*cli, "infer", "missing.fits", "--regions", "out.reg"], env),
            "python -c 'import tensorflow'": wall([py, "-c", "import tensorflow"], env),
        }
        out = subprocess.run([py, "-c", _IN_PROCESS, str(args.tile)], env=env,
                             capture_output=True, text=True, check=True)
        found.update(json.loads(out.stdout.strip().splitlines()[-1]))
        for key, value in found.items():
            rows[key] = min(rows.get(key, float("inf")), value)
    print(f"# {platform.machine()}, {os.cpu_count()} CPU cores, load "
          f"{os.getloadavg()[0]:.1f}")
    print("| phase | wall (s) |")
    print("|---|---:|")
    for key, value in rows.items():
        print(f"| {key} | {value:.2f} |")


if __name__ == "__main__":
    main()
