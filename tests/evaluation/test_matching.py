"""One-to-one matching by mask IoU on hand-made cases."""

import numpy as np
import pytest
from scipy import sparse

from caesar_mrcnn.data.dataset import Annotation
from caesar_mrcnn.evaluation.matching import (
    error_kinds,
    mask_iou_matrix,
    match_masks,
    match_pairs,
)


def square(y, x, size, category="compact", shape=(64, 64), **attrs):
    full = np.zeros(shape, bool)
    full[y:y + size, x:x + size] = True
    return Annotation.from_full_mask(category, full, **attrs)


def dense_iou(a, b, shape=(64, 64)):
    """Reference: IoU from full-image masks."""
    out = np.zeros((len(a), len(b)))
    for i, p in enumerate(a):
        for j, q in enumerate(b):
            mp, mq = p.full_mask(shape), q.full_mask(shape)
            out[i, j] = (mp & mq).sum() / (mp | mq).sum()
    return out


def test_mask_iou_matches_dense_reference():
    rng = np.random.default_rng(3)
    anns = []
    for _ in range(12):
        full = np.zeros((64, 64), bool)
        y, x = rng.integers(0, 50, 2)
        full[y:y + rng.integers(3, 14), x:x + rng.integers(3, 14)] = True
        full &= rng.random((64, 64)) > 0.2
        full[y, x] = True
        anns.append(Annotation.from_full_mask("compact", full))
    truth, dets = anns[:6], anns[6:]
    got = mask_iou_matrix(truth, dets).toarray()
    np.testing.assert_allclose(got, dense_iou(truth, dets))
    assert mask_iou_matrix(truth, []).shape == (6, 0)


def test_exact_and_partial_overlap_values():
    t = [square(10, 10, 4)]
    d = [square(10, 12, 4)]  # shares 8 of 16 pixels: IoU = 8 / 24
    assert mask_iou_matrix(t, d).toarray()[0, 0] == pytest.approx(8 / 24)


def test_duplicate_detections_count_once():
    truth = [square(10, 10, 6), square(40, 40, 6)]
    dets = [square(10, 10, 6), square(10, 11, 6), square(40, 40, 6)]  # second is a duplicate
    m = match_masks(truth, dets, 0.5)
    assert m.truth_idx.tolist() == [0, 1]
    assert m.det_idx.tolist() == [0, 2]
    assert m.det_matched.tolist() == [True, False, True]
    np.testing.assert_allclose(m.quality, [1.0, 1.0])


def test_unmatched_truth_and_detections():
    truth = [square(5, 5, 5), square(30, 30, 5), square(50, 5, 5)]
    dets = [square(5, 5, 5), square(50, 50, 5), square(31, 31, 5)]  # IoU(2,1) = 16/34 < 0.5
    m = match_masks(truth, dets, 0.5)
    assert m.truth_matched.tolist() == [True, False, False]
    assert m.det_matched.tolist() == [True, False, False]
    assert m.det_of_truth().tolist() == [0, -1, -1]
    m_low = match_masks(truth, dets, 0.4)
    assert m_low.det_of_truth().tolist() == [0, 2, -1]


def test_misclassified_detection_still_matches():
    truth = [square(10, 10, 6, "extended")]
    dets = [square(10, 10, 6, "compact")]
    m = match_masks(truth, dets, 0.5)
    assert m.truth_idx.tolist() == [0] and m.det_idx.tolist() == [0]


def test_hungarian_prefers_more_matches_over_greedy_best():
    # Greedy on quality takes (0,0)=0.9 and leaves truth 1 unmatched; the optimum matches both.
    q = sparse.coo_matrix(np.array([[0.9, 0.8], [0.7, 0.0]]))
    m = match_pairs(q, 0.5)
    assert sorted(zip(m.truth_idx.tolist(), m.det_idx.tolist())) == [(0, 1), (1, 0)]
    np.testing.assert_allclose(m.quality, [0.8, 0.7])


def test_hungarian_maximises_quality_at_equal_count():
    q = sparse.coo_matrix(np.array([[0.6, 0.9], [0.95, 0.6]]))
    m = match_pairs(q, 0.5)
    assert list(zip(m.truth_idx.tolist(), m.det_idx.tolist())) == [(0, 1), (1, 0)]


def test_threshold_and_empty_inputs():
    q = sparse.coo_matrix(np.array([[0.3]]))
    assert match_pairs(q, 0.5).truth_idx.size == 0
    m = match_masks([], [square(1, 1, 3)])
    assert m.n_truth == 0 and m.n_det == 1 and not m.det_matched.any()


def test_error_kinds_of_unmatched_objects():
    big = square(10, 10, 12, "extended-multisland")
    truth = [big, square(40, 40, 6), square(50, 10, 5)]
    dets = [square(10, 10, 12, "extended-multisland"),  # matched
            square(12, 12, 3),                           # a piece of the big source
            square(40, 44, 6),                           # IoU 12/60 with truth 1: poor outline
            square(0, 50, 4)]                            # on empty sky
    m = match_masks(truth, dets, 0.5)
    det_kinds, truth_kinds = error_kinds(truth, dets, m)
    assert det_kinds == [None, "fragment", "off source", "off source"]
    assert truth_kinds == [None, "outlined poorly", "undetected"]
    assert error_kinds([], dets, match_masks([], dets)) == (["off source"] * 4, [])


def test_a_detection_on_a_sidelobe_pattern_is_on_an_artefact():
    """Inside a true ``spurious`` object only: on an artefact; inside a source that an
    artefact overlaps: a fragment of the source; half in the pattern: on an artefact at the
    default ``inside`` of one half, off source above it."""
    source = square(20, 20, 6)
    rings = square(10, 10, 26, "spurious")  # the pattern around the source
    dets = [square(12, 12, 4, "extended"),   # on a ring
            square(21, 21, 3),               # on the source, inside the pattern too
            square(33, 30, 6)]               # 3 of its 6 rows (18 of 36 pixels) in the pattern
    m = match_masks([source, rings], dets, 0.5)
    det_kinds, _ = error_kinds([source, rings], dets, m)
    assert det_kinds == ["on an artefact", "fragment", "on an artefact"]
    det_kinds, _ = error_kinds([source, rings], dets, m, inside=0.51)
    assert det_kinds == ["on an artefact", "fragment", "off source"]


def test_positions_match_one_to_one_within_each_radius():
    from caesar_mrcnn.evaluation.matching import match_positions

    truth = np.array([[10.0, 10.0], [20.0, 10.0], [50.0, 50.0]])
    radius = np.array([3.0, 3.0, 10.0])
    # one detection between the first two sources (2.5 px from the first, 7.5 from the
    # second), one on the second, one 9 px from the third, one on empty sky, one NaN
    dets = np.array([[12.5, 10.0], [20.0, 10.5], [59.0, 50.0], [90.0, 90.0],
                     [np.nan, 1.0]])
    m = match_positions(truth, dets, radius)
    assert m.truth_idx.tolist() == [0, 1, 2] and m.det_idx.tolist() == [0, 1, 2]
    np.testing.assert_allclose(m.quality, [1 - 2.5 / 3, 1 - 0.5 / 3, 1 - 9 / 10])
    assert m.det_matched.tolist() == [True, True, True, False, False]
    # two detections on one source: one matches, the other is left over
    m = match_positions(truth[:1], np.array([[10.0, 10.5], [10.0, 9.0]]), radius[:1])
    assert m.det_idx.tolist() == [0] and m.n_det == 2
    # more matches beat closer ones: detection 0 is closer to the second source than to the
    # first, but detection 1 can only be the second's, so the first source takes detection 0
    m = match_positions(truth[:2], np.array([[15.5, 10.0], [21.0, 10.0]]), np.array([6.0, 6.0]))
    assert m.det_of_truth().tolist() == [0, 1]
    assert match_positions(truth, np.zeros((0, 2)), radius).truth_idx.size == 0
    with pytest.raises(ValueError, match="radii"):
        match_positions(truth, dets, radius[:2])
