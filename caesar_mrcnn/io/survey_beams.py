"""Published restoring beams of radio surveys, for images whose header lacks BMAJ/BMIN.

Survey cutout services (SkyView, survey archives) often drop the beam keywords but say which
survey the pixels come from: the ``SURVEY`` keyword (SkyView), ``HISTORY`` lines such as
``survey = NVSS`` or ``name = FIRST`` (SkyView settings), ``ORIGIN`` (``ddf-pipeline`` of
LoTSS), the VLASS project code and file names (``PROPCODE``, ``FILNAM01``, ``VLASS3.1.ql...``
in HISTORY). The beams (FWHM) are the published ones:

========== ================================================================================
survey     beam
========== ================================================================================
FIRST      5.4" circular north of Dec +4.5 deg; 6.4" x 5.4" (PA 0) south of it
NVSS       45" circular
VLASS      2.5" circular, every epoch (the survey's nominal resolution; Quick-Look and
           Single-Epoch beams vary with declination and epoch between about 2.2" and 3.0"
           geometric mean, which BMAJ/BMIN record when present)
SUMSS      45" x 45" cosec|Dec| (major axis north-south)
TGSS       25" circular (ADR1; 25" x 25"/cos(Dec - 19 deg) south of Dec 19 deg)
LoTSS      6" circular
RACS-low   25" circular (the convolved survey images)
========== ================================================================================
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable

from astropy.io import fits

from caesar_mrcnn.io.beam_shape import ARCSEC, Beam

# FIRST's beam is elongated north-south below this declination (deg).
_FIRST_SOUTH_DEC = 4.5
# TGSS ADR1 beam grows as 1/cos(Dec - 19 deg) south of this declination (deg).
_TGSS_DEC = 19.0


def _circular(fwhm_arcsec: float) -> Callable[[float | None], Beam]:
    return lambda dec: Beam(fwhm_arcsec * ARCSEC, fwhm_arcsec * ARCSEC, 0.0)


def _first(dec: float | None) -> Beam:
    if dec is not None and dec < _FIRST_SOUTH_DEC:
        return Beam(6.4 * ARCSEC, 5.4 * ARCSEC, 0.0)
    return Beam(5.4 * ARCSEC, 5.4 * ARCSEC, 0.0)


def _sumss(dec: float | None) -> Beam:
    # elongated north-south by cosec|Dec|; at |Dec| < 30 deg SUMSS does not observe
    s = abs(math.sin(math.radians(dec))) if dec is not None else 1.0
    return Beam(45.0 * ARCSEC / max(s, 0.5), 45.0 * ARCSEC, 0.0)


def _tgss(dec: float | None) -> Beam:
    if dec is not None and dec < _TGSS_DEC:
        c = max(math.cos(math.radians(dec - _TGSS_DEC)), 0.1)
        return Beam(25.0 * ARCSEC / c, 25.0 * ARCSEC, 0.0)
    return Beam(25.0 * ARCSEC, 25.0 * ARCSEC, 0.0)


# (name, pattern matched against the identifying header text, beam(dec)).
# Order matters: the more specific names first (RACS before anything matching "ASKAP").
SURVEYS: tuple[tuple[str, re.Pattern, Callable[[float | None], Beam]], ...] = (
    ("VLASS", re.compile(r"\bVLASS", re.I), _circular(2.5)),
    ("NVSS", re.compile(r"\bNVSS\b", re.I), _circular(45.0)),
    ("FIRST", re.compile(r"\bFIRST\b", re.I), _first),
    ("SUMSS", re.compile(r"\bSUMSS\b", re.I), _sumss),
    ("TGSS", re.compile(r"\bTGSS", re.I), _tgss),
    ("LoTSS", re.compile(r"\bLOTSS|DDF-PIPELINE", re.I), _circular(6.0)),
    ("RACS-low", re.compile(r"\bRACS", re.I), _circular(25.0)),
)

# Keywords whose values name a survey; HISTORY lines are searched only where they state one.
_NAME_KEYS = ("SURVEY", "PROPCODE", "FILNAM01", "ORIGIN", "OBJECT", "TELESCOP", "PROJECT")
_HISTORY_NAMES = re.compile(r"^\s*(survey|name|shortname)\s*=|VLASS\d", re.I)


def identifying_text(header: fits.Header) -> list[str]:
    """The header values that may name a survey, most specific first."""
    out = []
    for key in _NAME_KEYS:
        value = header.get(key)
        if isinstance(value, str) and value.strip():
            out.append(value.strip())
    for card in header.get("HISTORY", []):
        text = str(card)
        if _HISTORY_NAMES.search(text):
            out.append(text)
    return out


def identify_survey(header: fits.Header) -> str | None:
    """Name of the survey the header identifies (a key of :data:`SURVEYS`), or None."""
    for text in identifying_text(header):
        for name, pattern, _ in SURVEYS:
            if pattern.search(text):
                return name
    return None


def survey_beam(header: fits.Header, dec_deg: float | None = None) -> tuple[str, Beam] | None:
    """``(survey name, published beam)`` for the survey the header names, or None.

    Parameters
    ----------
    header : astropy.io.fits.Header
        Image header.
    dec_deg : float, optional
        Declination of the image centre (deg); FIRST, SUMSS and TGSS beams depend on it.
        Without it the northern (circular) beam is used.
    """
    name = identify_survey(header)
    if name is None:
        return None
    beam_of = next(f for n, _, f in SURVEYS if n == name)
    return name, beam_of(dec_deg)
