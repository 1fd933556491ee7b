#!/usr/bin/env python
"""Which rms: caesar-mrcnn's against the classical finders' at the sources of the reference
catalogues.

For every field of ``../shared/real/fields`` with a reference catalogue that lists a local rms
(LoTSS-DR1 ``Isl_rms`` from PyBDSF, Parkes 1904-66 ``local_rms`` from Aegean's BANE, Abell 2255
``Isl_rms`` from PyBDSF), the rms of three estimators on the same grid of 64-pixel cells, each
from the cell's pixels clipped at 3σ (astropy's ``SigmaClip``, 5 iterations), interpolated at
each reference source and divided by the catalogue's own rms there (median over the sources
inside the image):

* ``mad``: 1.4826 × the median absolute deviation, caesar-mrcnn's rms
  (:func:`caesar_mrcnn.measure.background.background_grid`);
* ``std``: the standard deviation, the estimator of BANE and PyBDSF;
* ``std, emission masked``: the standard deviation after the pixels 5 ``mad`` above the
  background, grown by one beam FWHM, are left out (cells left with under 30 % of their pixels
  take the nearest cell's value).

Where ``std`` reads above ``mad`` the pixels have heavier wings than a Gaussian; where masking
the emission brings it back to ``mad``, those wings are the sources' own, not the noise's.

    python scripts/bench/rms_estimators.py [--real ../shared/real]
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np
from astropy import units as u
from astropy.table import Table
from scipy import ndimage

from caesar_mrcnn.evaluation.injection import default_real_dir
from caesar_mrcnn.io.fits import read_image
from caesar_mrcnn.measure.background import BackgroundGrid, background_grid, fill_nan_cells
from caesar_mrcnn.measure.sources import beam_fwhm_pix

BOX = 64
MASK_NSIGMA = 5.0

FIELDS = (
    ("fields/lotss_dr1_P205+55_cutout400.fits", "fields/lotss_dr1_P205+55_P218+55.srl.fits",
     "Isl_rms", "RA", "DEC"),
    ("fields/lotss_dr1_P218+55_cutout200.fits", "fields/lotss_dr1_P205+55_P218+55.srl.fits",
     "Isl_rms", "RA", "DEC"),
    ("fields/parkes_chipass_1904-66_SIN.fits", "fields/parkes_chipass_1904-66_aegean_comp.fits",
     "local_rms", "ra", "dec"),
    ("fields/wsrt_abell2255_pybdsf_ch0_I.fits", "fields/wsrt_abell2255_pybdsf.srl.fits",
     "Isl_rms", "RA", "DEC"),
)
"""(image, reference catalogue, its rms column, RA and Dec columns), under the real-data
folder."""


def std_grid(data: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Standard deviation of each cell's 3σ-clipped pixels (``mask``: pixels left out)."""
    from astropy.stats import SigmaClip

    clip = SigmaClip(sigma=3.0, maxiters=5)
    values = np.where(mask, np.nan, data) if mask is not None else data
    ny, nx = data.shape
    out = np.full((-(-ny // BOX), -(-nx // BOX)), np.nan)
    for by in range(out.shape[0]):
        for bx in range(out.shape[1]):
            cell = values[by * BOX:(by + 1) * BOX, bx * BOX:(bx + 1) * BOX]
            if np.isfinite(cell).sum() >= 0.3 * BOX * BOX:
                out[by, bx] = np.ma.std(clip(cell, masked=True))
    return fill_nan_cells(out)  # too few pixels left: the nearest cell's value


def estimates(img) -> dict[str, BackgroundGrid]:
    """The three rms grids of an image (see the module docstring)."""
    data = np.asarray(img.data, np.float32)
    mad = background_grid(data, data.shape, box=BOX)
    bkg, rms = mad.window(0, data.shape[0], 0, data.shape[1])
    with np.errstate(invalid="ignore"):
        emission = np.nan_to_num((data - bkg) / rms) > MASK_NSIGMA
    grow = max(1, int(round(beam_fwhm_pix(img.beam_area_pix))))
    emission = ndimage.binary_dilation(emission, iterations=grow)
    grids = {"mad": mad,
             "std": BackgroundGrid(mad.bkg, std_grid(data), BOX),
             "std, emission masked": BackgroundGrid(mad.bkg, std_grid(data, emission), BOX)}
    return grids


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--real", type=Path, default=default_real_dir(),
                   help="real-data folder (default $CAESAR_REAL_DATA or ../shared/real)")
    args = p.parse_args(argv)
    if not (args.real / "fields").is_dir():
        print(f"error: {args.real}/fields not found; give --real", file=sys.stderr)
        return 2
    names = ("mad", "std", "std, emission masked")
    print("| image (reference rms) | sources | reference rms, median (Jy/beam) | "
          + " | ".join(f"{n} / reference" for n in names) + " |")
    print("|---|---|---|" + "---|" * len(names))
    for image, catalog, col, ra, dec in FIELDS:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            img = read_image(args.real / image)
            grids = estimates(img)
            ref = Table.read(args.real / catalog)
        unit = ref[col].unit or u.Jy / u.beam  # Aegean's table carries no units: Jy/beam
        ref_rms = (np.asarray(ref[col], float) * unit).to_value(u.Jy / u.beam)
        x, y = img.wcs.all_world2pix(np.asarray(ref[ra], float), np.asarray(ref[dec], float), 0)
        ny, nx = img.shape
        inside = (x >= 0) & (y >= 0) & (x <= nx - 1) & (y <= ny - 1)
        inside[inside] &= np.isfinite(np.asarray(img.data)[np.round(y[inside]).astype(int),
                                                           np.round(x[inside]).astype(int)])
        ratios = [np.median(g.at(y[inside], x[inside])[1] / ref_rms[inside])
                  for g in (grids[n] for n in names)]
        print(f"| {Path(image).name} ({col}) | {int(inside.sum())} | "
              f"{np.median(ref_rms[inside]):.3g} | "
              + " | ".join(f"{r:.3f}" for r in ratios) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
