"""Fixtures of the ssl_backbones tests: tiny FITS cutout folders written with astropy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

MORPHOLOGIES = ("compact", "FR-I", "FR-II")


def _blob_image(rng: np.random.Generator, size: int, kind: int) -> np.ndarray:
    """Noise plus a compact blob (0), an elongated blob (1) or a double source (2)."""
    yy, xx = np.mgrid[:size, :size].astype(np.float64)
    cx, cy = rng.uniform(0.35 * size, 0.65 * size, 2)
    img = rng.normal(0.0, 0.05, (size, size))
    if kind == 0:
        img += np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * 1.5**2))
    elif kind == 1:
        img += np.exp(-((xx - cx) ** 2 / (2 * (size / 7) ** 2) + (yy - cy) ** 2 / (2 * 1.5**2)))
    else:
        d = size / 6
        img += np.exp(-((xx - cx - d) ** 2 + (yy - cy) ** 2) / 4.0)
        img += np.exp(-((xx - cx + d) ** 2 + (yy - cy) ** 2) / 4.0)
    return img.astype(np.float32)


@pytest.fixture
def make_cutouts():
    """Factory: ``make_cutouts(folder, n, size=40, seed=0, labels=False)`` writes ``n`` FITS
    cutouts (and ``labels.csv`` with columns file,label when ``labels``); returns the folder."""

    def make(folder: Path, n: int, size: int = 40, seed: int = 0, labels: bool = False) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(seed)
        rows = ["file,label"]
        for i in range(n):
            kind = i % len(MORPHOLOGIES)
            fits.writeto(folder / f"cut_{i:04d}.fits", _blob_image(rng, size, kind))
            rows.append(f"cut_{i:04d}.fits,{MORPHOLOGIES[kind]}")
        if labels:
            (folder / "labels.csv").write_text("\n".join(rows) + "\n")
        return folder

    return make
