"""Anchors against hand-computed values."""

from __future__ import annotations

import numpy as np

from caesar_mrcnn.modeling.anchors import cell_anchors, grid_anchors, multilevel_anchors


def test_cell_anchors_area_and_ratio():
    a = cell_anchors(8.0, (0.5, 1.0, 2.0))
    h, w = a[:, 2] - a[:, 0], a[:, 3] - a[:, 1]
    np.testing.assert_allclose(h * w, 64.0)
    np.testing.assert_allclose(h / w, [0.5, 1.0, 2.0])
    np.testing.assert_allclose(a[1], [-4, -4, 4, 4])


def test_grid_anchors_hand_values():
    a = grid_anchors(2, 3, stride=4, size=8, aspect_ratios=(1.0,))
    assert a.shape == (6, 4) and a.dtype == np.float32
    # order (row, column): cell (0, 0) centre (2, 2); cell (0, 2) centre (2, 10); (1, 0) (6, 2)
    np.testing.assert_array_equal(a[0], [-2, -2, 6, 6])
    np.testing.assert_array_equal(a[2], [-2, 6, 6, 14])
    np.testing.assert_array_equal(a[3], [2, -2, 10, 6])


def test_grid_anchors_ratio_is_fastest_axis():
    a = grid_anchors(1, 2, stride=16, size=16, aspect_ratios=(0.5, 1.0, 2.0))
    s = np.sqrt(2.0)
    np.testing.assert_allclose(a[0], [8 - 8 / s, 8 - 8 * s, 8 + 8 / s, 8 + 8 * s], rtol=1e-6)
    np.testing.assert_allclose(a[4], [0, 16, 16, 32], atol=1e-5)  # second cell, ratio 1


def test_multilevel_counts():
    anchors, counts = multilevel_anchors([(4, 4), (2, 2)], [4, 8], [8, 16], (0.5, 1.0, 2.0))
    assert counts == [48, 12]
    assert anchors.shape == (60, 4)
    np.testing.assert_allclose(anchors[48 + 1], [-4, -4, 12, 12])
