"""Footprint scoring of injected extended sources, on hand-made footprints and catalogues."""

import math

import numpy as np
import pytest
from astropy.table import Table, vstack

from caesar_mrcnn.evaluation.injection import (
    footprint_labels,
    robust_dex,
    score_footprints,
    sources_of_entries,
    summarise_footprints,
)

SHAPE = (40, 60)


def two_sources():
    """A 3 x 10 bar at rows 10-12, columns 5-14, and a two-island source (two 2 x 2 squares,
    columns 40-41 and 46-47, rows 20-21), each given as the window (y0, x0, mask)."""
    bar = (10, 5, np.ones((3, 10), bool))
    pair = np.zeros((2, 8), bool)
    pair[:, :2] = pair[:, 6:] = True
    return [bar, (20, 40, pair)]


def test_labels_grow_each_footprint_by_the_radius():
    labels = footprint_labels(SHAPE, two_sources(), grow_px=2.0)
    assert labels[11, 9] == 0 and labels[20, 46] == 1
    # 2 px beyond the bar's last column and its bottom row: on; 3 px: off
    assert labels[11, 16] == 0 and labels[11, 17] == -1
    assert labels[8, 9] == 0 and labels[7, 9] == -1
    # the gap between the two islands (columns 42-45) is within 2 px of one of them
    assert (labels[20, 42:46] == 1).all()
    # a diagonal step of (2, 2) is 2.83 px away: off
    assert labels[8, 3] == -1
    # the bar grown: 7 x 14 less 3 pixels at each corner; each square: 6 x 6 less 3 per corner
    assert (labels == 0).sum() == 7 * 14 - 4 * 3
    assert (labels == 1).sum() == 2 * (6 * 6 - 4 * 3)


def test_labels_clip_at_the_image_edge():
    labels = footprint_labels((8, 8), [(0, 0, np.ones((1, 1), bool))], grow_px=1.5)
    assert labels[0, 0] == 0 and labels[1, 1] == 0 and labels[2, 0] == -1
    assert (labels >= 0).sum() == 4


def test_entries_on_sources_and_their_scores():
    labels = footprint_labels(SHAPE, two_sources(), grow_px=2.0)
    # entries: two on the bar, one in the pair's gap, one off both, one off the image, one NaN
    x = np.array([6.2, 13.6, 43.4, 30.0, -3.0, np.nan])
    y = np.array([11.0, 12.4, 20.6, 30.0, 11.0, 11.0])
    on = sources_of_entries(labels, x, y)
    assert on.tolist() == [0, 0, 1, -1, -1, -1]
    # a position belongs to the nearest pixel centre: column 16 is on the grown bar, 17 is not
    assert sources_of_entries(labels, np.array([16.4, 16.6]), np.array([11.0, 11.0])).tolist() \
        == [0, -1]
    flux = np.array([0.25, 0.5, 2.0, 9.0, 9.0, 9.0])
    classes = np.array(["compact", "compact", "extended-multisland", "compact", "", ""])
    t = score_footprints(3, on, flux, classes)
    assert t["n_on"].tolist() == [2, 1, 0]
    assert t["found"].tolist() == [True, True, False]
    assert t["one_entry"].tolist() == [False, True, False]
    assert t["one_class"].tolist() == ["", "extended-multisland", ""]
    assert t["flux_sum"].tolist() == pytest.approx([0.75, 2.0, 0.0])
    # a NaN flux density counts as nothing; no classes, no class
    t = score_footprints(2, on, np.array([0.25, np.nan, 2.0, 9.0, 9.0, 9.0]))
    assert t["flux_sum"].tolist() == pytest.approx([0.25, 2.0])
    assert t["one_class"].tolist() == ["", ""]


def test_summary_rates_and_flux_ratios():
    def rows(finder, n_on, flux_sum, one_class=None):
        # each source's flux sum split evenly among the entries on it
        n = len(n_on)
        flux = [s / k for k, s in zip(n_on, flux_sum) for _ in range(k)]
        classes = (None if one_class is None else
                   np.array([c for k, c in zip(n_on, one_class) for _ in range(k)]))
        t = score_footprints(n, np.repeat(np.arange(n), n_on), np.array(flux), classes)
        t["finder"] = finder
        t["flux"] = np.full(n, 2.0)
        t["family"] = ["fr2", "fr2", "diffuse", "diffuse"]
        return t

    per = vstack([rows("caesar", [1, 1, 2, 0], [2.0, 1.6, 2.2, 0.0],
                       ["extended", "compact", "compact", ""]),
                  rows("comps", [2, 1, 2, 0], [2.0, 1.6, 2.2, 0.0]),
                  rows("aegean", [3, 2, 1, 1], [2.0, 1.8, 2.4, 1.0])])
    fam = np.asarray(per["family"], str)
    s = summarise_footprints(per, [("all", np.ones(len(per), bool)), ("fr2", fam == "fr2")],
                             classifying=("caesar",), flux_only=("comps",))
    got = {(r["sample"], r["finder"]): r for r in s}
    c = got[("all", "caesar")]
    assert (c["n"], c["found"], c["one_entry"], c["one_extended"]) == (4, 0.75, 0.5, 0.25)
    assert c["entries_mean"] == pytest.approx(4 / 3)
    assert c["flux_median"] == pytest.approx(1.0)  # ratios 1.0, 0.8, 1.1
    assert c["flux_scatter_dex"] == pytest.approx(1.4826 * abs(math.log10(1.1)))
    comps = got[("all", "comps")]
    assert comps["found"] == 0.75 and comps["flux_median"] == pytest.approx(1.0)
    assert np.isnan(comps["one_entry"]) and np.isnan(comps["entries_mean"])
    a = got[("all", "aegean")]
    assert (a["found"], a["one_entry"]) == (1.0, 0.5) and np.isnan(a["one_extended"])
    assert a["flux_median"] == pytest.approx(0.95)  # ratios 1.0, 0.9, 1.2, 0.5
    f = got[("fr2", "caesar")]
    assert (f["n"], f["one_entry"], f["one_extended"]) == (2, 1.0, 0.5)
    assert np.isnan(f["flux_scatter_dex"])  # two ratios: too few for a scatter


def test_robust_dex():
    r = np.array([1.0, 10.0, 0.1, 1.0, 1.0])
    assert robust_dex(r) == pytest.approx(0.0)
    assert robust_dex(np.array([1.0, 10.0, 100.0])) == pytest.approx(1.4826)
    assert math.isnan(robust_dex(np.array([1.0, -1.0, 2.0])))


def test_empty_catalogue():
    t = score_footprints(2, np.zeros(0, int), np.zeros(0))
    assert t["n_on"].tolist() == [0, 0] and not t["found"].any()
    assert isinstance(t, Table)
