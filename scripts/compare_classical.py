#!/usr/bin/env python
"""Compare caesar-mrcnn with Aegean and PyBDSF, on simulated fields or on real images.

A thin wrapper of ``caesar-mrcnn compare`` (same options), e.g.::

    python scripts/compare_classical.py --data sim_out --out compare_out [--weights model.keras]
    python scripts/compare_classical.py IMAGE.fits --reference CATALOG.fits --out compare_out

The real-image table of docs/benchmarks.md comes from ``scripts/bench/real_images.py``.
"""

import sys

from caesar_mrcnn.cli import main

if __name__ == "__main__":
    sys.exit(main(["compare", *sys.argv[1:]]))
