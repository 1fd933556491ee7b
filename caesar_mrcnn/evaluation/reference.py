"""Reference catalogues of real images, and the rules that score a finder against them.

Real images have no ground truth; they have catalogues made by others (a survey's published
source list, a finder's test catalogue). A finder's catalogue is cross-matched with one by
position only, the same for every finder:

- **found**: a reference source counts as found when a catalogue entry lies within
  ``max(1 beam FWHM, half the source's major axis)`` of it, or when the source lies inside the
  bounding box of an entry that has one (caesar-mrcnn's entries do: a radio galaxy that a
  reference lists as two lobes is one entry there, centred between them);
- **matching**: a catalogue entry counts as matching when it lies within that radius of some
  reference source, or its bounding box holds one;
- **fragments**: reference sources with two or more entries within their radius (one source
  reported in pieces; by position only, since a compact entry may lie inside an extended
  entry's box).

Radio galaxies with a known position and largest angular size (LAS) are scored by the
**central-galaxy** rule: the entries within ``LAS/2 + 2 beam FWHM`` of the galaxy are its
entries; the galaxy comes out as ONE entry when exactly one lies there; every other entry in
the image lies "elsewhere".
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.table import Table

from caesar_mrcnn.errors import DatasetError

RULE = ("A reference source counts as found when a catalogue entry lies within max(1 beam FWHM, "
        "half its major axis) or the source lies inside an entry's bounding box (finders that "
        "report one); an entry counts as matching when it lies within that radius of a "
        "reference source or its box holds one; fragments: reference sources with 2+ entries "
        "within that radius.")
"""The cross-match rule in words, printed next to every table that uses it."""

CENTRAL_RULE = ("Central: within LAS/2 + 2 beam FWHM of the galaxy's position; the galaxy comes "
                "out as ONE entry when exactly one entry is central; 'elsewhere' counts every "
                "other entry in the image.")
"""The central-galaxy rule in words."""

_RA_NAMES = ("ra", "raj2000", "_raj2000", "ra_j2000", "ra_deg", "radeg", "ra_icrs", "alpha_j2000",
             "ra_d", "ra_centroid")
_DEC_NAMES = ("dec", "dej2000", "decj2000", "_dej2000", "dec_j2000", "dec_deg", "decdeg",
              "de_icrs", "dec_icrs", "delta_j2000", "dec_d", "dec_centroid")
_MAJ_NAMES = ("maj", "maj_fwhm", "major", "bmaj", "a", "maj_axis", "major_axis", "majaxis",
              "fwhm_maj", "maj_arcsec", "maj_deg")


@dataclass
class CrossMatch:
    """A finder's catalogue cross-matched with a reference catalogue (see the module docstring).

    Attributes
    ----------
    found : numpy.ndarray of bool, shape ``(n_ref,)``
        Reference source found.
    matching : numpy.ndarray of bool, shape ``(n_entries,)``
        Catalogue entry matching a reference source.
    entries_per_source : numpy.ndarray of int, shape ``(n_ref,)``
        Catalogue entries within each reference source's radius.
    """

    found: np.ndarray
    matching: np.ndarray
    entries_per_source: np.ndarray

    @property
    def n_fragmented(self) -> int:
        """Reference sources with two or more entries."""
        return int((self.entries_per_source >= 2).sum())


def _find(table: Table, names: tuple[str, ...]) -> str | None:
    lower = {c.lower(): c for c in table.colnames}
    return next((lower[n] for n in names if n in lower), None)


def _to_unit(column, default: u.Unit, to: u.Unit, what: str, path: Path) -> np.ndarray:
    unit = getattr(column, "unit", None) or default
    try:
        return (np.asarray(column, dtype=float) * u.Unit(unit)).to_value(to)
    except (ValueError, u.UnitsError, TypeError) as exc:
        raise DatasetError(f"{path}: column {column.name!r} ({what}) has unit {unit!s}, not an "
                           f"angle ({exc}); give it in degrees or arcsec") from None


def read_reference(path: str | os.PathLike) -> Table:
    """A reference catalogue (FITS, VOTable, CSV, ECSV) with its positions and sizes.

    Columns are found by common names, case-insensitively: RA (``RA``, ``ra``, ``RAJ2000``,
    ``RA_J2000``, ``ALPHA_J2000`` ...), Dec (``DEC``, ``DEJ2000`` ...) and, optionally, the major
    axis FWHM (``Maj``, ``a``, ``major`` ...). Units come from the file where it records them;
    otherwise positions are taken in deg and the major axis in arcsec.

    Returns
    -------
    astropy.table.Table
        ``ra, dec`` (deg) and ``maj_arcsec`` (FWHM, arcsec; NaN when the catalogue has none).

    Raises
    ------
    DatasetError
        Unreadable file, or no RA/Dec column under a known name.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"--reference {path}: no such file; give a FITS, VOTable or CSV "
                           "catalogue with RA/Dec columns")
    fmt = "ascii.csv" if path.suffix.lower() in (".csv", ".txt") else None
    try:
        table = Table.read(path, format=fmt) if fmt else Table.read(path)
    except Exception as exc:  # astropy raises many types for unreadable files
        raise DatasetError(f"--reference {path}: cannot read it as a catalogue ({exc}); give a "
                           "FITS, VOTable or CSV table") from None
    ra, dec, maj = (_find(table, n) for n in (_RA_NAMES, _DEC_NAMES, _MAJ_NAMES))
    if ra is None or dec is None:
        raise DatasetError(f"--reference {path}: no RA/Dec columns (looked for "
                           f"{', '.join(_RA_NAMES[:4])} / {', '.join(_DEC_NAMES[:4])}, any case); "
                           "rename its position columns")
    out = Table()
    out["ra"] = _to_unit(table[ra], u.deg, u.deg, "RA", path)
    out["dec"] = _to_unit(table[dec], u.deg, u.deg, "Dec", path)
    out["maj_arcsec"] = (_to_unit(table[maj], u.arcsec, u.arcsec, "major axis", path)
                         if maj is not None else np.full(len(table), np.nan))
    out.meta["path"] = str(path)
    return out


def inside_image(reference: Table, wcs, valid: np.ndarray, margin_pix: float = 0.0
                 ) -> np.ndarray:
    """Reference rows whose position lies in the image, on or near a finite pixel.

    Parameters
    ----------
    reference : astropy.table.Table
        From :func:`read_reference`.
    wcs : astropy.wcs.WCS
        Celestial WCS of the image.
    valid : numpy.ndarray of bool, shape ``(ny, nx)``
        Finite pixels.
    margin_pix : float
        How far (pixels) from the nearest finite pixel a position may lie: a fitted centre can
        fall just past a blanked edge (e.g. half a beam).
    """
    from scipy import ndimage

    if not len(reference):
        return np.zeros(0, bool)
    ix, iy, ok = pixel_indices(reference, wcs, valid.shape)
    near = valid if margin_pix <= 0 or valid.all() else (
        ndimage.distance_transform_edt(~valid) <= margin_pix)
    ok[ok] = near[iy[ok], ix[ok]]
    return ok


def pixel_indices(reference: Table, wcs, shape: tuple[int, int]
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Nearest pixel ``(column, row)`` of each reference position, and whether it lies in an
    image of ``shape``."""
    x, y = _nearest_pixels(reference, wcs)
    ix, iy = x.astype(int), y.astype(int)
    ny, nx = shape
    return ix, iy, (ix >= 0) & (ix < nx) & (iy >= 0) & (iy < ny)


def _nearest_pixels(positions: Table, wcs) -> tuple[np.ndarray, np.ndarray]:
    """Nearest pixel column and row (float, NaN for an undefined position) of ``ra, dec``."""
    from astropy.coordinates import SkyCoord

    x, y = wcs.world_to_pixel(SkyCoord(positions["ra"], positions["dec"], unit="deg"))
    with np.errstate(invalid="ignore"):
        return np.rint(np.asarray(x, float)), np.rint(np.asarray(y, float))


def separation_arcsec(ra1, dec1, ra2, dec2) -> np.ndarray:
    """(n1, n2) angular separations (arcsec), haversine."""
    r1, d1, r2, d2 = (np.radians(np.asarray(v, float)) for v in (ra1, dec1, ra2, dec2))
    h = (np.sin((d2[None, :] - d1[:, None]) / 2) ** 2
         + np.cos(d1)[:, None] * np.cos(d2)[None, :] * np.sin((r2[None, :] - r1[:, None]) / 2) ** 2)
    return np.degrees(2 * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0)))) * 3600.0


BOX_COLUMNS = ("bbox_x0", "bbox_y0", "bbox_x1", "bbox_y1")
"""An entry's bounding box: first column and row, end column and row (exclusive), in pixels of
the image the catalogue was made from."""


def cross_match(reference: Table, catalog: Table, beam_arcsec: float, wcs=None) -> CrossMatch:
    """Cross-match a finder's catalogue with reference sources (see the module docstring).

    Parameters
    ----------
    reference : astropy.table.Table
        ``ra, dec`` (deg), ``maj_arcsec`` (FWHM, arcsec; NaN allowed).
    catalog : astropy.table.Table
        The finder's entries, ``ra, dec`` (deg), and optionally their bounding boxes
        (:data:`BOX_COLUMNS`; a row without one holds -1).
    beam_arcsec : float
        Beam major-axis FWHM (arcsec).
    wcs : astropy.wcs.WCS, optional
        Celestial WCS of the image; the boxes count only when it is given.
    """
    if not beam_arcsec > 0:
        raise ValueError(f"beam_arcsec must be positive, got {beam_arcsec}")
    maj = np.nan_to_num(np.asarray(reference["maj_arcsec"], float), nan=0.0)
    radius = np.maximum(beam_arcsec, maj / 2)
    d = separation_arcsec(reference["ra"], reference["dec"], catalog["ra"], catalog["dec"])
    within = d <= radius[:, None]  # NaN positions are never within
    held = within | inside_boxes(reference, catalog, wcs)
    return CrossMatch(found=held.any(axis=1), matching=held.any(axis=0),
                      entries_per_source=within.sum(axis=1).astype(int))


def inside_boxes(positions: Table, catalog: Table, wcs) -> np.ndarray:
    """``(len(positions), len(catalog))`` bool: the pixel of each position (``ra, dec`` in
    deg) lies in the entry's bounding box (:data:`BOX_COLUMNS`). All False without ``wcs``,
    for a catalogue without boxes, and for rows whose box is -1."""
    inside = np.zeros((len(positions), len(catalog)), bool)
    if wcs is None or not len(positions) or not len(catalog) or not all(
            c in catalog.colnames for c in BOX_COLUMNS):
        return inside
    ix, iy = _nearest_pixels(positions, wcs)
    x0, y0, x1, y1 = (np.asarray(catalog[c], float)[None, :] for c in BOX_COLUMNS)
    has_box = (x1 > x0) & (y1 > y0)
    return has_box & (ix[:, None] >= x0) & (ix[:, None] < x1) & (iy[:, None] >= y0) & (
        iy[:, None] < y1)


@dataclass
class CentralGalaxy:
    """A finder's entries around one galaxy (the central-galaxy rule of the module docstring).

    Attributes
    ----------
    n_central : int
        Entries within ``LAS/2 + 2 beams`` of the galaxy.
    central_classes : list of str
        Their classes (``""`` for finders that do not classify).
    n_elsewhere : int
        All other entries of the image.
    """

    n_central: int
    central_classes: list
    n_elsewhere: int

    @property
    def one_entry(self) -> bool:
        """The galaxy came out as exactly one entry."""
        return self.n_central == 1

    def one_entry_of(self, classes) -> bool:
        """One entry, of one of ``classes``."""
        return self.one_entry and self.central_classes[0] in classes


def central_galaxy(catalog: Table, ra_deg: float, dec_deg: float, las_arcsec: float,
                   beam_arcsec: float) -> CentralGalaxy:
    """Score a catalogue against one galaxy of known position and largest angular size.

    Parameters
    ----------
    catalog : astropy.table.Table
        The finder's entries (``ra, dec`` in deg, ``class``).
    ra_deg, dec_deg : float
        Galaxy position (deg).
    las_arcsec, beam_arcsec : float
        Largest angular size and beam FWHM (arcsec).
    """
    radius = las_arcsec / 2 + 2 * beam_arcsec
    if not math.isfinite(radius) or radius <= 0:
        raise ValueError(f"central radius must be positive, got LAS {las_arcsec}, "
                         f"beam {beam_arcsec}")
    d = separation_arcsec([ra_deg], [dec_deg], catalog["ra"], catalog["dec"])[0]
    central = d <= radius
    classes = (np.asarray(catalog["class"], dtype=str) if "class" in catalog.colnames
               else np.full(len(catalog), "", dtype=str))
    return CentralGalaxy(int(central.sum()), [str(c) for c in classes[central]],
                         int((~central).sum()))
