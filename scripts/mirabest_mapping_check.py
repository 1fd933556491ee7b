"""Check the mapping of MiraBest's 8-bit images into noise units (docs/models.md).

Prints the distribution of the non-zero pixel fraction, of the smallest non-zero level ``m`` and
of the peak SNR the mapping gives, over all MiraBest images (training and test batches), then
compares, for the galaxies of which FIRST FITS cutouts exist (``extended/mirabest_first/``, same
file names), the mapped peak SNR with the peak S/N measured on the FITS image (peak over a
3-sigma-clipped rms, 5 iterations, as the MiraBest builder). Usage::

    python scripts/mirabest_mapping_check.py [REAL]     # REAL: the real-data folder
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
from astropy.stats import sigma_clipped_stats

from caesar_mrcnn.io.fits import read_image
from ssl_backbones import mirabest as mb


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("real", nargs="?", default=os.environ.get("CAESAR_MRCNN_REAL",
                                                                  "../shared/real"))
    parser.add_argument("--tolerance", type=float, default=0.08,
                        help="relative agreement counted as a match (default 0.08)")
    args = parser.parse_args(argv)
    real = Path(args.real)
    tarball = real / "mirabest" / "MiraBest_F_batches.tar.gz"
    splits = [mb.read_split(tarball, s) for s in ("train", "test")]
    images = np.concatenate([s.images for s in splits])
    names = [f for s in splits for f in s.filenames]
    nonzero = (images > 0).reshape(len(images), -1).mean(axis=1)
    m = np.array([img[img > 0].min() if (img > 0).any() else 0 for img in images])
    peak = mb.to_snr(images).reshape(len(images), -1).max(axis=1)
    pct = lambda v: f"{np.percentile(v, 5):.3g}–{np.percentile(v, 95):.3g}"  # noqa: E731
    print(f"{len(images)} images; non-zero pixels {pct(100 * nonzero)} % (5th–95th "
          f"percentile); m median {np.median(m):.0f}; peak SNR {pct(peak)}")
    by_name = dict(zip(names, peak))
    rows = []
    for fits_path in sorted((real / "extended" / "mirabest_first").glob("*.fits")):
        if fits_path.stem not in by_name:
            continue
        data = read_image(fits_path).data
        _, med, std = sigma_clipped_stats(data[np.isfinite(data)], sigma=3.0, maxiters=5)
        rows.append((fits_path.stem, by_name[fits_path.stem], (np.nanmax(data) - med) / std))
    if not rows:
        print("no FIRST cutout matches a MiraBest file name", file=sys.stderr)
        return 1
    ratio = np.array([a / b for _, a, b in rows])
    close = np.abs(ratio - 1.0) <= args.tolerance
    print(f"FIRST cutouts: {len(rows)}; mapped / measured peak SNR within "
          f"{100 * args.tolerance:.0f} % for {int(close.sum())} of {len(rows)}; the others "
          f"{', '.join(f'{r:.2f}' for r in sorted(ratio[~close]))}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
