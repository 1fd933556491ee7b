#!/usr/bin/env python
"""Compare caesar-mrcnn with Aegean and PyBDSF on simulated fields.

A thin wrapper of ``caesar-mrcnn compare`` (same options), e.g.::

    python scripts/compare_classical.py --data sim_out --out compare_out [--weights model.keras]
"""

import sys

from caesar_mrcnn.cli import main

if __name__ == "__main__":
    sys.exit(main(["compare", *sys.argv[1:]]))
