"""Completeness, reliability, Wilson intervals and classification scores vs hand-computed values."""

import math

import numpy as np
import pytest

from caesar_mrcnn.evaluation import metrics


def test_wilson_interval_hand_computed():
    # k=8, n=10, z=1.959964: centre = (0.8 + z^2/20) / (1 + z^2/10), half-width by hand.
    z = 1.959963984540054
    p, n = 0.8, 10
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    lo, hi = metrics.wilson_interval(8, 10)
    assert lo == pytest.approx(centre - half) and hi == pytest.approx(centre + half)
    assert lo == pytest.approx(0.4902, abs=1e-4) and hi == pytest.approx(0.9433, abs=1e-4)


def test_wilson_edges():
    lo, hi = metrics.wilson_interval([0, 5, 0], [5, 5, 0])
    assert lo[0] == 0 and 0 < hi[0] < 1
    assert 0 < lo[1] < 1 and hi[1] == pytest.approx(1.0)
    assert (lo[2], hi[2]) == (0.0, 1.0)


def test_binned_fraction_counts():
    success = np.array([1, 0, 1, 1, 0, 1], bool)
    snr = np.array([3.5, 4.0, 6.0, 12.0, np.nan, 8.0])
    cls = np.array(["compact", "compact", "extended", "compact", "compact", "extended"], object)
    rows = metrics.binned_fraction(success, snr, cls, [3, 5, 10, 20], ["compact", "extended"])
    get = {(r["class"], r["snr_lo"] if not math.isnan(r["snr_lo"]) else None): r for r in rows}
    assert (get[("all", None)]["k"], get[("all", None)]["n"]) == (4, 6)
    assert (get[("all", 3.0)]["k"], get[("all", 3.0)]["n"]) == (1, 2)
    assert (get[("all", 5.0)]["k"], get[("all", 5.0)]["n"]) == (2, 2)
    assert (get[("compact", 10.0)]["k"], get[("compact", 10.0)]["n"]) == (1, 1)
    assert get[("compact", None)]["value"] == pytest.approx(2 / 4)
    assert get[("extended", 3.0)]["n"] == 0 and math.isnan(get[("extended", 3.0)]["value"])


def test_confusion_and_scores():
    names = ("a", "b", "c")
    m = metrics.confusion_matrix(["a", "a", "a", "b", "b", "c"], ["a", "a", "b", "b", "a", "b"],
                                 names)
    np.testing.assert_array_equal(m, [[2, 1, 0], [1, 1, 0], [0, 1, 0]])
    s = {r["class"]: r for r in metrics.classification_scores(m, names)}
    assert s["a"]["precision"] == pytest.approx(2 / 3) and s["a"]["recall"] == pytest.approx(2 / 3)
    assert s["b"]["precision"] == pytest.approx(1 / 3) and s["b"]["recall"] == pytest.approx(1 / 2)
    assert s["b"]["f1"] == pytest.approx(2 * (1 / 3) * (1 / 2) / (1 / 3 + 1 / 2))
    assert s["c"]["recall"] == 0 and math.isnan(s["c"]["precision"])


def test_binned_stats_and_separation():
    rows = metrics.binned_stats([1.0, 2.0, 3.0, 10.0], [4, 4, 4, 30], [3, 5, 50])
    assert rows[0]["n"] == 3 and rows[0]["median"] == 2.0 and rows[1]["median"] == 10.0
    sep = metrics.angular_separation_arcsec(10.0, 0.0, 10.0 + 1 / 3600, 0.0)
    assert sep == pytest.approx(1.0, rel=1e-6)
    assert metrics.angular_separation_arcsec(0, 60, 0.002, 60) == pytest.approx(3.6, rel=1e-4)
