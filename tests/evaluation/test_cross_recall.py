"""Cross-recall of finders on one image, against hand-made catalogues."""

import numpy as np
import pytest

from caesar_mrcnn.evaluation.cross_recall import cross_recall, same_source
from caesar_mrcnn.evaluation.finders import common_catalog

DEC0 = 40.0
COS = np.cos(np.radians(DEC0))
BEAM = 5.0


def cat(*entries):
    """Entries ``(east_arcsec, snr, maj_arcsec[, class])`` around (150, 40)."""
    east = np.array([e[0] for e in entries], float)
    return common_catalog(ra=150.0 + east / 3600 / COS, dec=np.full(len(entries), DEC0),
                          snr=[e[1] for e in entries], maj_arcsec=[e[2] for e in entries],
                          **{"class": [e[3] if len(e) > 3 else "" for e in entries]})


def test_same_source_radius_grows_with_either_entry():
    point = cat((0.0, 20, np.nan))
    assert same_source(point, cat((4.9, 20, np.nan)), BEAM).all()
    assert not same_source(point, cat((5.1, 20, np.nan)), BEAM).any()
    # a 60" galaxy contains a component 25" from its centre, in either order
    galaxy = cat((25.0, 50, 60.0, "extended"))
    assert same_source(point, galaxy, BEAM).all() and same_source(galaxy, point, BEAM).all()
    assert same_source(point, cat(), BEAM).shape == (1, 0)



def test_same_source_counts_a_position_inside_a_box_in_either_order():
    """A double source whose lobes lie 40" either side of an entry centred between them, with
    no size (so the radius stays one beam): the entry's box holds both lobes, given the WCS."""
    from astropy.wcs import WCS

    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---SIN", "DEC--SIN"]
    wcs.wcs.crval = [150.0, DEC0]
    wcs.wcs.crpix = [101.0, 101.0]  # pixel (100, 100), 0-based
    wcs.wcs.cdelt = [-1.0 / 3600, 1.0 / 3600]
    lobes = cat((-40.0, 30, 6.0), (40.0, 30, 6.0))
    entry = cat((0.0, 40, np.nan, "extended"))
    for name, value in zip(("bbox_x0", "bbox_y0", "bbox_x1", "bbox_y1"), (55, 90, 146, 111)):
        entry[name] = [value]
    assert not same_source(lobes, entry, BEAM).any()
    assert same_source(lobes, entry, BEAM, wcs).all()
    assert same_source(entry, lobes, BEAM, wcs).all()
    # Without boxes (a classical finder's catalogue) the same positions are apart.
    assert not same_source(cat((0.0, 40, np.nan)), lobes, BEAM, wcs).any()


def test_recall_consensus_and_confirmation():
    aegean = cat((-20.0, 40, 6.0), (20.0, 30, 6.0), (200.0, 15, 6.0), (400.0, 4, 6.0))
    pybdsf = cat((-21.0, 35, 6.0), (19.0, 28, 6.0), (401.0, 5, 6.0))
    # one entry for the double source (both lobes inside it), nothing at +200"
    caesar = cat((0.0, 45, 60.0, "extended"), (600.0, 12, 5.0, "compact"))
    rows = cross_recall({"caesar-mrcnn": caesar, "aegean": aegean, "pybdsf": pybdsf}, BEAM,
                        classical=("aegean", "pybdsf"), snr_min=10)
    got = {(r["finder"], r["of"]): (r["k"], r["n"]) for r in rows}
    assert got[("caesar-mrcnn", "aegean")] == (2, 3)
    assert got[("caesar-mrcnn", "pybdsf")] == (2, 2)
    # the sources both classical finders report at >= 10 sigma: the two lobes
    assert got[("caesar-mrcnn", "consensus")] == (2, 2)
    assert got[("pybdsf", "consensus")] == (2, 2)
    # the +600" entry is confirmed by no classical finder
    assert got[("caesar-mrcnn", "confirmed")] == (1, 2)
    # aegean's +200" source is its own; PyBDSF's faint +401" is not counted (SNR 5)
    assert got[("pybdsf", "aegean")] == (2, 3) and got[("aegean", "pybdsf")] == (2, 2)
    assert got[("aegean", "confirmed")] == (2, 3)


def test_bad_beam():
    with pytest.raises(ValueError):
        same_source(cat((0.0, 1, 1.0)), cat((0.0, 1, 1.0)), 0.0)
