"""The source catalogue's columns (names, types, units, descriptions) and tables built on them."""

from __future__ import annotations

import numpy as np
from astropy import units as u
from astropy.table import Table

from caesar_mrcnn.classes import CLASS_NAMES

COLUMNS = (
    ("name", str, None, "IAU-style designation"),
    ("class", str, None, "source class"),
    ("class_id", np.int16, None, "model class id (1-based)"),
    ("score", np.float32, None,
     "objectness: the network's probability that a source of any class is there"),
    *((f"p_{name.replace('-', '_')}", np.float32, None,
       f"probability of class {name} (the p_ columns sum to score)") for name in CLASS_NAMES),
    ("x", np.float64, u.pix, "mask centroid, column (0-based)"),
    ("y", np.float64, u.pix, "mask centroid, row (0-based)"),
    ("x_w", np.float64, u.pix, "flux-weighted centroid, column (0-based)"),
    ("y_w", np.float64, u.pix, "flux-weighted centroid, row (0-based)"),
    ("ra", np.float64, u.deg,
     "right ascension: fitted centre where fitted, else flux-weighted centroid"),
    ("dec", np.float64, u.deg,
     "declination: fitted centre where fitted, else flux-weighted centroid"),
    ("peak_flux", np.float64, u.Jy / u.beam, "peak brightness above the background"),
    ("int_flux", np.float64, u.Jy,
     "integrated flux density (Gaussian fit where fitted, else island sum)"),
    ("err_int_flux", np.float64, u.Jy, "integrated flux density error"),
    ("island_flux", np.float64, u.Jy, "sum of the mask pixels over the beam area"),
    ("err_island_flux", np.float64, u.Jy, "island flux density error from the local rms"),
    ("local_bkg", np.float64, u.Jy / u.beam, "local background"),
    ("local_rms", np.float64, u.Jy / u.beam, "local rms noise"),
    ("snr", np.float64, None, "peak / local rms"),
    ("snr_pix", np.float64, None,
     "brightest mask pixel above the background / local rms (the seed significance that "
     "min_snr applies to, as in a classical finder)"),
    ("maj_fwhm", np.float64, u.arcsec, "major axis FWHM (Gaussian fit or second moments)"),
    ("min_fwhm", np.float64, u.arcsec, "minor axis FWHM (Gaussian fit or second moments)"),
    ("pa", np.float64, u.deg, "position angle of the major axis, east of north"),
    ("maj_fwhm_pix", np.float64, u.pix, "major axis FWHM (pixels)"),
    ("min_fwhm_pix", np.float64, u.pix, "minor axis FWHM (pixels)"),
    ("npix", np.int64, u.pix, "pixels in the mask"),
    ("nislands", np.int32, None, "connected islands in the mask"),
    ("fitted", bool, None, "flux density and shape from an elliptical Gaussian fit"),
    ("unresolved", bool, None,
     "fitted and not significantly larger than the beam: int_flux = beam-shaped fit amplitude"),
    ("n_components", np.int32, None,
     "rows of this entry in the component table (Gaussians where fitted, else mask islands)"),
    ("err_peak_flux", np.float64, u.Jy / u.beam, "peak brightness error (Condon 1997)"),
    ("err_ra", np.float64, u.arcsec, "position error along RA (Condon 1997; NaN if not fitted)"),
    ("err_dec", np.float64, u.arcsec,
     "position error along Dec (Condon 1997; NaN if not fitted)"),
    ("err_maj_fwhm", np.float64, u.arcsec, "major axis FWHM error (fitted, resolved)"),
    ("err_min_fwhm", np.float64, u.arcsec, "minor axis FWHM error (fitted, resolved)"),
    ("err_pa", np.float64, u.deg, "position angle error (fitted, resolved)"),
    ("dc_maj_fwhm", np.float64, u.arcsec,
     "deconvolved major axis FWHM (0 if unresolved; NaN if not one fitted Gaussian)"),
    ("dc_min_fwhm", np.float64, u.arcsec,
     "deconvolved minor axis FWHM (0 if unresolved; NaN if not one fitted Gaussian)"),
    ("dc_pa", np.float64, u.deg, "deconvolved position angle, east of north"),
    ("bbox_y0", np.int64, u.pix, "bounding box first row"),
    ("bbox_x0", np.int64, u.pix, "bounding box first column"),
    ("bbox_y1", np.int64, u.pix, "bounding box end row (exclusive)"),
    ("bbox_x1", np.int64, u.pix, "bounding box end column (exclusive)"),
    ("flag_edge", bool, None, "mask touches the image border"),
    ("flag_nan", bool, None, "mask borders blank (NaN) pixels"),
    ("flag_merged", bool, None, "united from detections in several tiles"),
    ("flag_island", bool, None,
     "an island above min_snr that no network entry covered (score and p_ columns NaN)"),
)


def class_probability_columns(objects) -> dict[str, np.ndarray]:
    """The ``p_<class>`` columns of ``objects`` (``attrs["probs"]`` in :data:`CLASS_NAMES`
    order); NaN for an object whose detector gave no probabilities."""
    probs = np.full((len(objects), len(CLASS_NAMES)), np.nan)
    for i, obj in enumerate(objects):
        if obj.attrs.get("probs") is not None:
            probs[i] = obj.attrs["probs"]
    return {f"p_{name.replace('-', '_')}": probs[:, k] for k, name in enumerate(CLASS_NAMES)}


def empty_source_table() -> Table:
    """A source table with all columns and no rows."""
    return source_table({name: np.zeros(0, dtype=dt) for name, dt, _, _ in COLUMNS})


def source_table(cols: dict[str, np.ndarray], meta: dict | None = None) -> Table:
    table = Table(meta=dict(meta or {}))
    for name, dtype, unit, desc in COLUMNS:
        data = np.asarray(cols[name])
        table[name] = data if dtype is str else data.astype(dtype)
        table[name].unit = unit
        table[name].description = desc
    return table


COMPONENT_COLUMNS = (
    ("source", str, None, "name of the catalogue entry the component belongs to"),
    ("source_index", np.int64, None, "row of that entry in the source table (0-based)"),
    ("component", np.int32, None, "component number within the entry (1 = brightest)"),
    ("kind", str, None,
     "gaussian (a fitted component) or island (the sum over an image island in the mask)"),
    ("x", np.float64, u.pix, "centre, column (0-based)"),
    ("y", np.float64, u.pix, "centre, row (0-based)"),
    ("ra", np.float64, u.deg, "right ascension of the centre"),
    ("dec", np.float64, u.deg, "declination of the centre"),
    ("err_ra", np.float64, u.arcsec, "position error along RA (Condon 1997)"),
    ("err_dec", np.float64, u.arcsec, "position error along Dec (Condon 1997)"),
    ("peak_flux", np.float64, u.Jy / u.beam, "fitted amplitude (gaussian) or brightest pixel"),
    ("err_peak_flux", np.float64, u.Jy / u.beam, "peak brightness error"),
    ("int_flux", np.float64, u.Jy, "integrated flux density"),
    ("err_int_flux", np.float64, u.Jy, "integrated flux density error"),
    ("local_rms", np.float64, u.Jy / u.beam, "local rms noise at the centre"),
    ("maj_fwhm", np.float64, u.arcsec, "fitted major axis FWHM"),
    ("min_fwhm", np.float64, u.arcsec, "fitted minor axis FWHM"),
    ("pa", np.float64, u.deg, "fitted position angle, east of north"),
    ("err_maj_fwhm", np.float64, u.arcsec, "major axis FWHM error"),
    ("err_min_fwhm", np.float64, u.arcsec, "minor axis FWHM error"),
    ("err_pa", np.float64, u.deg, "position angle error"),
    ("dc_maj_fwhm", np.float64, u.arcsec, "deconvolved major axis FWHM (0 if unresolved)"),
    ("dc_min_fwhm", np.float64, u.arcsec, "deconvolved minor axis FWHM (0 if unresolved)"),
    ("dc_pa", np.float64, u.deg, "deconvolved position angle, east of north"),
    ("resolved", bool, None, "significantly larger than the beam (gaussian components)"),
)
"""Columns of the component table: one row per fitted Gaussian or per mask island."""


def component_table(cols: dict[str, np.ndarray] | None = None, meta: dict | None = None
                    ) -> Table:
    """A component table from its columns (all of :data:`COMPONENT_COLUMNS`); empty when
    ``cols`` is None."""
    if cols is None:
        cols = {name: np.zeros(0, dtype=dt) for name, dt, _, _ in COMPONENT_COLUMNS}
    table = Table(meta=dict(meta or {}))
    for name, dtype, unit, desc in COMPONENT_COLUMNS:
        data = np.asarray(cols[name])
        table[name] = data if dtype is str else data.astype(dtype)
        table[name].unit = unit
        table[name].description = desc
    return table
