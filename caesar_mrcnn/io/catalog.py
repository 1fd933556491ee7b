"""Source catalogues: FITS binary table, VOTable, CSV, ECSV (by extension), and JSON.

The tables come from :func:`caesar_mrcnn.measure.sources.measure_catalogs` (columns with
units): the source table and, optionally, its component table (one row per fitted Gaussian or
mask island, linked to its entry by ``source`` and ``source_index``). Run metadata (input image,
weights, backbone, thresholds, software version) goes into the FITS header, VOTable ``INFO``
elements and the ECSV header; CSV stays a bare table because TOPCAT and STILTS reject comment
lines in CSV.

Where the components go
-----------------------
* FITS: a second binary-table HDU named ``COMPONENTS``; the first stays the source table, so
  readers that take the first table (``Table.read``, TOPCAT, STILTS) see the sources.
* VOTable, CSV, ECSV: a sibling file ``<stem>_components<suffix>`` beside the catalogue
  (:func:`components_path`). A VOTable could hold both tables, but astropy's reader then refuses
  to read the file without a ``table_id``, so the source file stays one table.

Files are written atomically: the catalogue and its sibling are written to temporary names and
renamed only once both are complete (the sibling first), so a failed write leaves neither.
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


COMPONENTS_EXTNAME = "COMPONENTS"
"""Name of the FITS HDU that holds the component table."""


def components_path(path: str | os.PathLike) -> Path:
    """The sibling file of the component table of a VOTable, CSV or ECSV catalogue:
    ``<stem>_components<suffix>`` in the same folder (``cat.csv`` -> ``cat_components.csv``).

    FITS catalogues hold their components in the HDU ``COMPONENTS`` instead; for them the
    catalogue's own path is returned.
    """
    path = Path(path)
    if catalog_format(path) == "fits":
        return path
    return path.with_name(f"{path.stem}_components{path.suffix}")


def _with_meta(table: Table, meta: dict[str, Any] | None) -> Table:
    out = table.copy(copy_data=False)
    out.meta = {**table.meta, **(meta or {})}
    return out


def _write_table(table: Table, path: Path, fmt: str) -> None:
    """One table in a text format or VOTable (``table.meta`` already complete)."""
    if fmt == "votable":
        _write_votable(table, path)
    elif fmt == "csv":
        table.meta = {}
        table.write(path, format="ascii.csv")
    else:
        table.write(path, format="ascii.ecsv")


def _write_fits(table: Table, path: Path, components: Table | None) -> None:
    """The source table as the first extension, the components (if any) appended as the HDU
    ``COMPONENTS`` (both with their units and column descriptions)."""
    table.meta = _fits_meta(table.meta)
    table.write(path, format="fits")
    if components is not None:
        components.meta = _fits_meta(components.meta)
        components.write(path, format="fits", append=True, name=COMPONENTS_EXTNAME)


def write_catalog(table: Table, path: str | os.PathLike,
                  meta: dict[str, Any] | None = None, *,
                  components: Table | None = None) -> str:
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
    components : astropy.table.Table, optional
        The component table of the same entries (may have no rows), with the same run
        metadata: the HDU ``COMPONENTS`` of a FITS file, else the sibling file
        :func:`components_path` in the same format. None writes the source table only.

    Returns
    -------
    str
        The format written.

    Raises
    ------
    OutputError
        Unknown extension, or the file cannot be written. Neither the catalogue nor its
        sibling is then left behind (an existing one stays as it was).
    """
    fmt = catalog_format(path)
    out = _with_meta(table, meta)
    comps = _with_meta(components, meta) if components is not None else None
    try:
        with atomic_path(path) as tmp:
            if fmt == "fits":
                _write_fits(out, tmp, comps)
            elif comps is None:
                _write_table(out, tmp, fmt)
            else:
                # the sibling is renamed into place first, the catalogue last: a catalogue
                # that is there has its components beside it
                with atomic_path(components_path(path)) as tmp_comps:
                    _write_table(comps, tmp_comps, fmt)
                    _write_table(out, tmp, fmt)
    except OSError as exc:
        raise OutputError(f"{path}: cannot write the catalogue ({exc})") from exc
    return fmt


_ASTROPY_FORMATS = {"fits": "fits", "votable": "votable", "csv": "ascii.csv",
                    "ecsv": "ascii.ecsv"}


def read_catalog(path: str | os.PathLike) -> Table:
    """Read the source table of a catalogue written by :func:`write_catalog`."""
    fmt = catalog_format(path)
    if fmt == "fits":
        return Table.read(str(path), format="fits", hdu=1)
    return Table.read(str(path), format=_ASTROPY_FORMATS[fmt])


def read_components(path: str | os.PathLike) -> Table:
    """Read the component table of a catalogue written by :func:`write_catalog`.

    Parameters
    ----------
    path : path-like
        The catalogue (not its sibling): the HDU ``COMPONENTS`` of a FITS file, else
        :func:`components_path` of ``path``.

    Raises
    ------
    FileNotFoundError
        The catalogue, or its component table (a FITS file without the HDU ``COMPONENTS``,
        a missing sibling), is not there: it was written without its components.
    """
    fmt = catalog_format(path)
    if fmt == "fits":
        from astropy.io import fits

        with fits.open(path) as hdus:
            if COMPONENTS_EXTNAME not in hdus:
                raise FileNotFoundError(f"{path}: no {COMPONENTS_EXTNAME} HDU; the catalogue "
                                      "was written without its component table")
        return Table.read(str(path), format="fits", hdu=COMPONENTS_EXTNAME)
    sibling = components_path(path)
    if not sibling.is_file():
        raise FileNotFoundError(f"{path}: no component table {sibling.name} beside it; the "
                              "catalogue was written without one")
    return Table.read(str(sibling), format=_ASTROPY_FORMATS[fmt])


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


def _component_lists(components: Table, n: int) -> list[list[dict[str, Any]]]:
    """The rows of ``components`` as JSON objects, grouped by ``source_index`` (``n`` entries)."""
    out: list[list[dict[str, Any]]] = [[] for _ in range(n)]
    for row in components:
        i = int(row["source_index"])
        if not 0 <= i < n:
            raise ValueError(f"component of {row['source']!r} has source_index {i}, outside "
                             f"the {n} rows of the source table")
        out[i].append({name: _json_value(row[name]) for name in components.colnames})
    return out


def catalog_json(table: Table, objects: list | None = None,
                 meta: dict[str, Any] | None = None,
                 components: Table | None = None) -> dict[str, Any]:
    """The catalogue in the layout of the original caesar-mrcnn JSON output.

    That layout is one document ``{"sources": [...]}``; each source has ``name``,
    ``class_name``, ``class_id``, ``score``, its box ``x1, y1, x2, y2`` (inclusive pixel
    range), ``edge``, ``merged``, ``pixels`` (``[[y, x], ...]``) and measured parameters
    (``nPix``, ``X0``, ``Y0``, ``X0w``, ``Y0w``, ``X0w_wcs``, ``Y0w_wcs``, ``flux``). Every
    other table column is added under its table name; units are listed under ``units`` and the
    run metadata under ``meta``. With ``components``, each source also has ``components``: its
    rows of the component table (keys the column names, brightest first, NaN as null), and the
    document lists their units under ``component_units``.

    Parameters
    ----------
    table : astropy.table.Table
        Source table.
    objects : list of Annotation, optional
        The same objects, to add their mask ``pixels`` (0-based).
    meta : dict, optional
        Run metadata.
    components : astropy.table.Table, optional
        The component table of the same entries (``source_index`` is the row in ``table``).
    """
    comps = _component_lists(components, len(table)) if components is not None else None
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
        if comps is not None:
            src["components"] = comps[i]
        sources.append(src)
    units = {_JSON_KEYS.get(n, n): str(table[n].unit) for n in table.colnames if table[n].unit}
    info = {k: _json_value(v) for k, v in {**table.meta, **(meta or {})}.items()}
    doc = {"sources": sources, "units": units, "meta": info}
    if components is not None:
        doc["component_units"] = {n: str(components[n].unit) for n in components.colnames
                                  if components[n].unit}
    return doc


def write_catalog_json(table: Table, path: str | os.PathLike, objects: list | None = None,
                       meta: dict[str, Any] | None = None,
                       components: Table | None = None) -> None:
    """Write :func:`catalog_json` to ``path`` atomically."""
    doc = catalog_json(table, objects, meta, components)
    with atomic_open(path, "w") as fh:
        json.dump(doc, fh, indent=1, default=str)
        fh.write("\n")
