"""The restoring beam of an image: from the user, the header, AIPS history, a CASA beam table.

:func:`resolve_beam` applies one order of precedence and says where the beam came from:

1. a beam given by the user (``--beam``);
2. the ``BMAJ``/``BMIN``/``BPA`` keywords;
3. an AIPS ``CLEAN BMAJ= ... BMIN= ... BPA= ...`` HISTORY card;
4. a CASA ``BEAMS`` binary table (one beam per channel and Stokes plane: the plane in use);
5. the published beam of the survey the header names (:mod:`caesar_mrcnn.io.survey_beams`).

The source travels with the beam (``beam_source``) so catalogues can record it. The beam itself,
:class:`~caesar_mrcnn.io.beam_shape.Beam`, is defined in :mod:`caesar_mrcnn.io.beam_shape`.
"""

from __future__ import annotations

import logging
import math
import re
from pathlib import Path

import numpy as np
from astropy.io import fits

from caesar_mrcnn.errors import ConfigError
from caesar_mrcnn.io.beam_shape import ARCSEC, MAX_BEAM_DEG, Beam
from caesar_mrcnn.io.survey_beams import survey_beam

log = logging.getLogger(__name__)

# AIPS writes the restoring beam only into HISTORY, e.g.
# "AIPS   CLEAN BMAJ=  1.3889E-03 BMIN=  1.3889E-03 BPA=   0.00".
_AIPS_BEAM = re.compile(
    r"BMAJ\s*=\s*([-+0-9.EeDd]+)\s+BMIN\s*=\s*([-+0-9.EeDd]+)(?:\s+BPA\s*=\s*([-+0-9.EeDd]+))?"
)


def parse_beam(text: str) -> Beam:
    """A beam from the command line: ``BMAJ[,BMIN[,BPA]]``, axes in arcsec, PA in deg.

    ``BMIN`` defaults to ``BMAJ`` (circular), ``BPA`` to 0. The larger axis is the major one.

    Raises
    ------
    ConfigError
        One line naming ``--beam`` when the text is not 1 to 3 numbers or the axes are not
        positive.
    """
    parts = [p.strip() for p in str(text).replace('"', "").split(",")]
    try:
        if not 1 <= len(parts) <= 3 or any(p == "" for p in parts):
            raise ValueError
        values = [float(p) for p in parts]
    except ValueError:
        raise ConfigError(f"--beam {text}: expected BMAJ[,BMIN[,BPA]] in arcsec (PA in deg), "
                          'e.g. --beam 5.4 or --beam 6.4,5.4,0') from None
    bmaj = values[0]
    bmin = values[1] if len(values) > 1 else bmaj
    bpa = values[2] if len(values) > 2 else 0.0
    if bmin > bmaj:
        bmaj, bmin, bpa = bmin, bmaj, bpa + 90.0
    beam = Beam(bmaj / 3600.0, bmin / 3600.0, bpa)
    if not beam.usable:
        raise ConfigError(f"--beam {text}: beam axes must be positive arcsec below "
                          f"{MAX_BEAM_DEG * 3600:.0f}, e.g. --beam 5.4")
    return beam


def _number(value) -> float | None:
    try:
        out = float(str(value).replace("D", "E")) if isinstance(value, str) else float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def header_beam(header: fits.Header) -> Beam | None:
    """The beam of the BMAJ/BMIN/BPA keywords (deg), or None when absent or unusable."""
    bmaj, bmin = _number(header.get("BMAJ")), _number(header.get("BMIN"))
    if bmaj is None or bmin is None:
        return None
    bpa = _number(header.get("BPA", 0.0))
    return Beam(bmaj, bmin, bpa if bpa is not None else 0.0)


def aips_history_beam(header: fits.Header) -> Beam | None:
    """The last ``CLEAN BMAJ= ... BMIN= ... [BPA= ...]`` HISTORY card (deg), or None."""
    for card in reversed(list(header.get("HISTORY", []))):
        m = _AIPS_BEAM.search(str(card))
        if m:
            bmaj, bmin = _number(m.group(1)), _number(m.group(2))
            bpa = _number(m.group(3)) if m.group(3) else 0.0
            if bmaj is not None and bmin is not None:
                return Beam(bmaj, bmin, bpa or 0.0)
    return None


def casa_beams_table(hdul: fits.HDUList, header: fits.Header, plane_index: dict[str, int]
                     ) -> Beam | None:
    """The beam of the plane in use from a CASA ``BEAMS`` table extension, or None.

    CASA writes per-plane beams (``CASAMBM = T``) into a binary table named ``BEAMS`` with
    columns ``BMAJ``, ``BMIN``, ``BPA`` (units from ``TUNITn``, arcsec by default), ``CHAN``
    and ``POL``.

    Parameters
    ----------
    hdul : astropy.io.fits.HDUList
        The open file.
    header : astropy.io.fits.Header
        Header of the image HDU (unused beyond naming; kept for symmetry).
    plane_index : dict
        ``{"CHAN": i, "POL": j}``: 0-based index of the plane in use along the spectral and
        Stokes axes (0 for degenerate or absent axes).
    """
    table = next((h for h in hdul if isinstance(h, fits.BinTableHDU)
                  and h.name.upper() == "BEAMS"), None)
    if table is None or table.data is None or len(table.data) == 0:
        return None
    names = {n.upper(): n for n in table.columns.names}
    if not {"BMAJ", "BMIN"} <= set(names):
        return None
    data = table.data
    rows = np.ones(len(data), dtype=bool)
    for col in ("CHAN", "POL"):
        if col in names:
            rows &= np.asarray(data[names[col]]) == plane_index.get(col, 0)
    if not rows.any():
        return None
    row = data[int(np.flatnonzero(rows)[0])]

    def deg(col: str) -> float | None:
        value = _number(row[names[col]]) if col in names else 0.0
        if value is None:
            return None
        unit = str(table.columns[names[col]].unit or ("deg" if col == "BPA" else "arcsec"))
        unit = unit.strip().lower()
        if col == "BPA":
            return math.degrees(value) if unit.startswith("rad") else value
        return {"deg": value, "degree": value, "degrees": value,
                "arcmin": value / 60.0, "rad": math.degrees(value)}.get(unit, value * ARCSEC)

    bmaj, bmin, bpa = deg("BMAJ"), deg("BMIN"), deg("BPA")
    if bmaj is None or bmin is None:
        return None
    return Beam(bmaj, bmin, bpa or 0.0)


def resolve_beam(path: Path, header: fits.Header, *, override: Beam | None = None,
                 hdul: fits.HDUList | None = None, plane_index: dict[str, int] | None = None,
                 centre_dec_deg: float | None = None) -> tuple[Beam | None, str]:
    """The restoring beam and where it came from, in the order of precedence of this module.

    Parameters
    ----------
    path : pathlib.Path
        The image file (named in the warnings).
    header : astropy.io.fits.Header
        Header of the image HDU.
    override : Beam, optional
        A beam given by the user; wins over everything.
    hdul : astropy.io.fits.HDUList, optional
        The open file, to look for a CASA ``BEAMS`` table.
    plane_index : dict, optional
        Plane in use (see :func:`casa_beams_table`).
    centre_dec_deg : float, optional
        Declination of the image centre (deg), for survey beams that depend on it.

    Returns
    -------
    beam : Beam or None
    source : str
        ``"option"``, ``"header"``, ``"AIPS history"``, ``"CASA beam table"``,
        ``"<SURVEY> survey default"`` or ``"none"``.
    """
    if override is not None:
        return override, "option"
    candidates = [("header", lambda: header_beam(header)),
                  ("AIPS history", lambda: aips_history_beam(header))]
    if hdul is not None:
        candidates.append(("CASA beam table",
                           lambda: casa_beams_table(hdul, header, plane_index or {})))
    ignored = None
    for source, find in candidates:
        try:
            beam = find()
        except (KeyError, ValueError, TypeError, IndexError, OSError):
            beam = None
        if beam is None:
            continue
        if beam.usable:
            return beam, source
        ignored = ignored or source
    if ignored is not None:
        log.warning("%s: restoring beam in the %s is not positive and finite; ignored",
                    path, ignored)
    found = survey_beam(header, centre_dec_deg)
    if found is not None:
        name, beam = found
        log.warning("%s: no BMAJ/BMIN in the header; beam from the %s survey default (%s); "
                    "give --beam to override", path, name, beam.describe())
        return beam, f"{name} survey default"
    log.warning("%s: no restoring beam (BMAJ/BMIN) in the header; beam-dependent quantities "
                "are unavailable (give --beam BMAJ[,BMIN,BPA] in arcsec)", path)
    return None, "none"
