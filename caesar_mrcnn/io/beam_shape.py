"""The restoring beam as a value: a 2D Gaussian's FWHM axes and position angle.

Kept apart from :mod:`caesar_mrcnn.io.beam` (where an image's beam comes from) so that the table
of published survey beams (:mod:`caesar_mrcnn.io.survey_beams`), which the beam resolution
consults last, can build beams without importing the resolution.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

ARCSEC = 1.0 / 3600.0
"""One arcsecond in degrees."""

MAX_BEAM_DEG = 30.0
"""Beam axes above this (deg) are not restoring beams but garbage."""


@dataclass(frozen=True)
class Beam:
    """Restoring beam: a 2D Gaussian.

    Attributes
    ----------
    bmaj_deg, bmin_deg : float
        Full widths at half maximum of the major and minor axes (deg).
    bpa_deg : float
        Position angle of the major axis, east of north (deg).
    """

    bmaj_deg: float
    bmin_deg: float
    bpa_deg: float

    def area_pix(self, pixel_scale_deg: tuple[float, float]) -> float:
        """Beam solid angle in pixels, ``pi * bmaj * bmin / (4 ln 2) / (dx * dy)``.

        Parameters
        ----------
        pixel_scale_deg : (float, float)
            ``(|dx|, |dy|)`` pixel size (deg/pixel).
        """
        dx, dy = (abs(float(v)) for v in pixel_scale_deg)
        return math.pi * self.bmaj_deg * self.bmin_deg / (4.0 * math.log(2.0)) / (dx * dy)

    def describe(self) -> str:
        """``'6.4" x 5.4", PA 0 deg'`` (arcsec FWHM)."""
        return (f'{self.bmaj_deg * 3600:.3g}" x {self.bmin_deg * 3600:.3g}", '
                f"PA {self.bpa_deg:.3g} deg")

    @property
    def usable(self) -> bool:
        """Finite, positive, plausible axes and a finite position angle."""
        return (all(math.isfinite(v) for v in (self.bmaj_deg, self.bmin_deg, self.bpa_deg))
                and 0 < self.bmin_deg <= MAX_BEAM_DEG and 0 < self.bmaj_deg <= MAX_BEAM_DEG)
