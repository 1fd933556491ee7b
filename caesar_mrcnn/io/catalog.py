"""Source catalogues: FITS binary table, VOTable, CSV, ECSV (by extension), and JSON.

The table comes from :func:`caesar_mrcnn.measure.sources.measure_sources` (columns with units). Run
metadata (input image, weights, backbone, thresholds, software version) goes into the FITS
header, VOTable ``INFO`` elements and the ECSV header; CSV stays a bare table because TOPCAT and
STILTS reject comment lines in CSV. Files are written atomically.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
from astropy.table import Table

from caesar_mrcnn.errors import OutputError
from caesar_mrcnn.io.atomic import atomic_open, atomic_path

FORMATS: dict[str, str] = {
    ".fits": "fits",
    ".fit": "fits",
    ".fts": "fits",
    ".vot": "votable",
    ".xml": "votable",
    ".csv": "csv",
    ".ecsv": "ecsv",
}
"""Catalogue format of each file extension."""


def catalog_format(path: str | os.PathLike) -> str:
    """Format name (``fits``, ``votable``, ``csv``, ``ecsv``) chosen by the extension of ``path``.

    Raises
    ------
    OutputError
        For an unknown extension.
    """
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        known = ", ".join(FORMATS)
        raise OutputError(f"{path}: unknown catalogue extension {suffix or '(none)'!r}; "
                          f"use one of {known}")
    return FORMATS[suffix]


def _fits_meta(meta: dict[str, Any]) -> dict[str, Any]:
    """Metadata as FITS header cards: upper-case keys of at most 8 characters, scalar values."""
    out = {}
    for key, value in meta.items():
        k = str(key).upper()[:8]
        if isinstance(value, bool | int | str) or value is None:
            out[k] = value if value is not None else ""
        elif isinstance(value, float):
            out[k] = value if math.isfinite(value) else str(value)
        else:
            out[k] = json.dumps(value, default=str)
    return out


def _write_votable(table: Table, path: Path) -> None:
    """VOTable with the metadata as ``INFO`` elements (astropy drops ``Table.meta`` there)."""
    from astropy.io.votable import from_table
    from astropy.io.votable.tree import Info

    meta = dict(table.meta)
    plain = table.copy(copy_data=False)
    plain.meta = {}
    vot = from_table(plain)
    infos = vot.resources[0].tables[0].infos
    for key, value in meta.items():
        text = value if isinstance(value, str) else json.dumps(value, default=str)
        infos.append(Info(name=str(key), value=text))
    vot.to_xml(str(path))


def write_catalog(table: Table, path: str | os.PathLike,
                  meta: dict[str, Any] | None = None) -> str:
    """Write a source table in the format of ``path``'s extension, atomically.

    Parameters
    ----------
    table : astropy.table.Table
        Source table (may have no rows).
    path : path-like
        ``.fits`` (default choice of the CLI), ``.vot``/``.xml``, ``.csv`` or ``.ecsv``.
    meta : dict, optional
        Run metadata added to the table's own ``meta``, e.g. ``IMAGE``, ``WEIGHTS``,
        ``BACKBONE``, ``SCORETHR``, ``SOFTWARE``, ``VERSION``.

    Returns
    -------
    str
        The format written.

    Raises
    ------
    OutputError
        Unknown extension, or the file cannot be written.
    """
    fmt = catalog_format(path)
    out = table.copy(copy_data=False)
    out.meta = {**table.meta, **(meta or {})}
    try:
        with atomic_path(path) as tmp:
            if fmt == "fits":
                out.meta = _fits_meta(out.meta)
                out.write(tmp, format="fits")
            elif fmt == "votable":
                _write_votable(out, tmp)
            elif fmt == "csv":
                out.meta = {}
                out.write(tmp, format="ascii.csv")
            else:
                out.write(tmp, format="ascii.ecsv")
    except OSError as exc:
        raise OutputError(f"{path}: cannot write the catalogue ({exc})") from exc
    return fmt


def read_catalog(path: str | os.PathLike) -> Table:
    """Read a catalogue written by :func:`write_catalog`."""
    fmt = catalog_format(path)
    astropy_fmt = {"fits": "fits", "votable": "votable", "csv": "ascii.csv",
                   "ecsv": "ascii.ecsv"}[fmt]
    return Table.read(str(path), format=astropy_fmt)


def _json_value(v: Any) -> Any:
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


# original JSON key of each table column that has one
_JSON_KEYS = {"class": "class_name", "npix": "nPix", "x": "X0", "y": "Y0", "x_w": "X0w",
              "y_w": "Y0w", "ra": "X0w_wcs", "dec": "Y0w_wcs", "int_flux": "flux",
              "flag_edge": "edge", "flag_merged": "merged"}


def catalog_json(table: Table, objects: list | None = None,
                 meta: dict[str, Any] | None = None) -> dict[str, Any]:
    """The catalogue in the layout of the original caesar-mrcnn JSON output.

    That layout is one document ``{"sources": [...]}``; each source has ``name``,
    ``class_name``, ``class_id``, ``score``, its box ``x1, y1, x2, y2`` (inclusive pixel
    range), ``edge``, ``merged``, ``pixels`` (``[[y, x], ...]``) and measured parameters
    (``nPix``, ``X0``, ``Y0``, ``X0w``, ``Y0w``, ``X0w_wcs``, ``Y0w_wcs``, ``flux``). Every
    other table column is added under its table name; units are listed under ``units`` and the
    run metadata under ``meta``.

    Parameters
    ----------
    table : astropy.table.Table
        Source table.
    objects : list of Annotation, optional
        The same objects, to add their mask ``pixels`` (0-based).
    meta : dict, optional
        Run metadata.
    """
    sources = []
    for i, row in enumerate(table):
        src = {_JSON_KEYS.get(name, name): _json_value(row[name]) for name in table.colnames
               if not name.startswith("bbox_")}
        src["x1"], src["y1"] = int(row["bbox_x0"]), int(row["bbox_y0"])
        src["x2"], src["y2"] = int(row["bbox_x1"]) - 1, int(row["bbox_y1"]) - 1
        if objects is not None:
            ann = objects[i]
            ys, xs = np.nonzero(ann.mask)
            src["pixels"] = np.column_stack([ys + ann.bbox[0], xs + ann.bbox[1]]).tolist()
        sources.append(src)
    units = {_JSON_KEYS.get(n, n): str(table[n].unit) for n in table.colnames if table[n].unit}
    info = {k: _json_value(v) for k, v in {**table.meta, **(meta or {})}.items()}
    return {"sources": sources, "units": units, "meta": info}


def write_catalog_json(table: Table, path: str | os.PathLike, objects: list | None = None,
                       meta: dict[str, Any] | None = None) -> None:
    """Write :func:`catalog_json` to ``path`` atomically."""
    doc = catalog_json(table, objects, meta)
    with atomic_open(path, "w") as fh:
        json.dump(doc, fh, indent=1, default=str)
        fh.write("\n")
