"""Tile grid and the merge of per-tile detections into one object per source."""

from __future__ import annotations

import numpy as np
import pytest

from caesar_mrcnn.classes import CLASS_IDS
from caesar_mrcnn.data.dataset import Annotation
from caesar_mrcnn.detection.merge import merge_detections
from caesar_mrcnn.detection.tiling import (
    Tile,
    crop_mask,
    detections_from_output,
    tile_grid,
    tile_starts,
)


@pytest.mark.parametrize("shape,tile,overlap", [((300, 420), 128, 32), ((256, 256), 256, 64),
                                                 ((100, 70), 128, 32), ((1000, 513), 256, 64),
                                                 ((257, 129), 128, 0)])
def test_grid_covers_image_with_overlap(shape, tile, overlap):
    tiles = tile_grid(shape, tile, overlap)
    count = np.zeros(shape, dtype=int)
    for t in tiles:
        assert 0 <= t.y0 < t.y1 <= shape[0] and 0 <= t.x0 < t.x1 <= shape[1]
        assert t.shape == (min(tile, shape[0]), min(tile, shape[1]))
        count[t.y0:t.y1, t.x0:t.x1] += 1
    assert count.min() >= 1
    assert [t.index for t in tiles] == list(range(len(tiles)))
    for axis in (0, 1):
        starts = tile_starts(shape[axis], tile, overlap)
        ends = np.minimum(starts + tile, shape[axis])
        assert starts[0] == 0 and ends[-1] == shape[axis]
        # consecutive tiles share at least `overlap` pixels
        assert np.all(ends[:-1] - starts[1:] >= overlap)


def test_grid_rejects_bad_overlap():
    with pytest.raises(ValueError):
        tile_grid((100, 100), 64, 64)


def _ann(category, bbox, tile, det, score, cut, mask=None):
    y0, x0, y1, x1 = bbox
    m = np.ones((y1 - y0, x1 - x0), bool) if mask is None else mask
    return Annotation(category, bbox, m, {"score": score, "tile": tile, "det": det, "cut": cut})


def test_duplicate_in_overlap_kept_once():
    # two tiles side by side sharing columns 64..96
    tiles = [Tile(0, 0, 0, 96, 96), Tile(1, 0, 64, 96, 160)]
    # a source at columns 80..100: whole in tile 1, cut by tile 0's right edge
    whole = _ann("compact", (40, 80, 50, 100), 1, 0, 0.8, False)
    cut = _ann("extended", (40, 80, 50, 96), 0, 0, 0.9, True)
    other = _ann("compact", (10, 10, 20, 20), 0, 1, 0.7, False)
    out = merge_detections([cut, whole, other], tiles)
    assert len(out) == 2
    src = next(o for o in out if o.bbox[1] == 80)
    assert src.bbox == whole.bbox and not src.attrs["merged"]
    assert src.attrs["ndet"] == 2
    # class: summed score compact 0.8 vs extended 0.9 -> extended wins the vote
    assert src.category == "extended"
    assert src.attrs["class_scores"] == pytest.approx({"compact": 0.8, "extended": 0.9})


def test_class_vote_uses_the_class_probabilities():
    tiles = [Tile(0, 0, 0, 96, 96), Tile(1, 0, 64, 96, 160)]
    # compact in each tile's own argmax, but together the detections favour extended
    p_whole = np.array([0.0, 0.40, 0.35, 0.25, 0.0])
    p_cut = np.array([0.0, 0.30, 0.60, 0.10, 0.0])
    whole = _ann("compact", (40, 80, 50, 100), 1, 0, 1.0, False)
    cut = _ann("extended", (40, 80, 50, 96), 0, 0, 1.0, True)
    whole.attrs["probs"], cut.attrs["probs"] = p_whole, p_cut
    (src,) = merge_detections([cut, whole], tiles)
    assert src.category == "extended" and src.bbox == whole.bbox
    np.testing.assert_allclose(src.attrs["probs"], (p_whole + p_cut) / 2)
    assert src.attrs["score"] == 1.0


def test_merged_probabilities_sum_to_the_merged_score():
    """The object's score is its best detection's; its class probabilities split that score
    as the mean of its detections' do, so they sum to it as one detection's do."""
    tiles = [Tile(0, 0, 0, 96, 96), Tile(1, 0, 64, 96, 160)]
    p_whole = np.array([0.0, 0.50, 0.20, 0.10, 0.0])  # objectness 0.8
    p_cut = np.array([0.0, 0.05, 0.45, 0.10, 0.0])    # objectness 0.6
    whole = _ann("compact", (40, 80, 50, 100), 1, 0, 0.8, False)
    cut = _ann("extended", (40, 80, 50, 96), 0, 0, 0.6, True)
    whole.attrs["probs"], cut.attrs["probs"] = p_whole, p_cut
    (src,) = merge_detections([cut, whole], tiles)
    assert src.attrs["score"] == pytest.approx(0.8)
    assert src.attrs["probs"].sum() == pytest.approx(0.8)
    mean = (p_whole + p_cut) / 2
    np.testing.assert_allclose(src.attrs["probs"], mean * 0.8 / mean.sum())
    # the vote of the mean (compact 0.275, extended 0.325), whichever class the best says
    assert src.category == "extended"
    assert np.argmax(src.attrs["probs"]) == 2


def test_detections_carry_the_class_probabilities():
    tile = Tile(0, 0, 0, 32, 32)
    masks = np.zeros((1, 2, 32, 32), np.float32)
    masks[0, 0, 4:8, 4:8] = 1.0
    masks[0, 1, 20:24, 20:24] = 1.0
    out = {"scores": np.array([[0.98, 0.3]]), "classes": np.array([[2, 1]]), "masks": masks,
           "probs": np.array([[[0.02, 0.48, 0.38, 0.1, 0.0], [0.2, 0.05, 0.05, 0.0, 0.0]]])}
    dets = detections_from_output(out, 0, tile, (32, 32), score_thr=0.5)
    assert len(dets) == 1 and dets[0].category == "compact"
    np.testing.assert_allclose(dets[0].attrs["probs"], [0.02, 0.48, 0.38, 0.1, 0.0])


def test_neighbours_in_overlap_stay_distinct():
    tiles = [Tile(0, 0, 0, 96, 96), Tile(1, 0, 64, 96, 160)]
    a0 = _ann("compact", (40, 66, 46, 72), 0, 0, 0.9, False)
    a1 = _ann("compact", (40, 66, 46, 72), 1, 0, 0.9, False)
    b0 = _ann("compact", (40, 74, 46, 80), 0, 1, 0.9, False)
    b1 = _ann("compact", (40, 74, 46, 80), 1, 1, 0.9, False)
    out = merge_detections([a0, a1, b0, b1], tiles)
    assert sorted(o.bbox for o in out) == [a0.bbox, b0.bbox]


def test_blended_pair_in_same_tile_not_collapsed():
    # two overlapping sources, seen whole by both tiles: still two objects
    tiles = [Tile(0, 0, 0, 96, 96), Tile(1, 0, 32, 96, 128)]
    first = (40, 50, 50, 60)
    second = (44, 54, 54, 64)
    dets = [_ann("compact", first, 0, 0, 0.9, False), _ann("compact", second, 0, 1, 0.9, False),
            _ann("compact", first, 1, 0, 0.9, False), _ann("compact", second, 1, 1, 0.9, False)]
    out = merge_detections(dets, tiles, match_iou=0.2)
    assert sorted(o.bbox for o in out) == [first, second]


def test_long_source_over_three_tiles_is_one_object():
    tiles = [Tile(0, 0, 0, 64, 64), Tile(1, 0, 48, 64, 112), Tile(2, 0, 96, 64, 160)]
    truth = np.zeros((64, 160), bool)
    truth[30:34, 10:150] = True
    truth[28:36, 70:80] = True
    dets = []
    for t, cat, score in zip(tiles, ("extended", "compact", "extended"), (0.6, 0.9, 0.5)):
        part = truth[t.y0:t.y1, t.x0:t.x1]
        dets.append(Annotation.from_full_mask(cat, np.pad(part, ((t.y0, 0), (t.x0, 0))),
                                              score=score, tile=t.index, det=0, cut=True))
    out = merge_detections(dets[::-1], tiles)
    assert len(out) == 1
    obj = out[0]
    assert obj.attrs["merged"] and obj.attrs["ndet"] == 3
    np.testing.assert_array_equal(obj.full_mask(truth.shape), truth)
    # extended: 0.6 + 0.5 = 1.1 > compact 0.9
    assert obj.category == "extended"
    # the score is objectness: the surest of the object's detections, whatever its class
    assert obj.attrs["score"] == pytest.approx(0.9)


def test_merge_is_independent_of_input_order():
    rng = np.random.default_rng(3)
    tiles = tile_grid((200, 200), 80, 24)
    dets = []
    for t in tiles:
        for k in range(3):
            y, x = rng.integers(t.y0, t.y1 - 6), rng.integers(t.x0, t.x1 - 6)
            dets.append(_ann("compact", (y, x, y + 6, x + 6), t.index, k,
                             float(rng.uniform(0.5, 1)), False))
    a = merge_detections(dets, tiles)
    b = merge_detections(list(rng.permutation(np.array(dets, dtype=object))), tiles)
    assert [(o.bbox, o.category, o.attrs["score"]) for o in a] == \
        [(o.bbox, o.category, o.attrs["score"]) for o in b]


def test_detections_from_output_clips_and_flags():
    tile = Tile(3, 50, 60, 100, 100)  # 50 x 40 window of a 100 x 100 image, padded to 64
    masks = np.zeros((1, 3, 64, 64), np.float32)
    masks[0, 0, 10:20, 30:40] = 0.9      # touches the tile's right edge (image border: x1=100)
    masks[0, 1, 0:5, 5:9] = 0.9          # touches the top edge (interior: y0=50 > 0)
    masks[0, 1, 45:60, 5:9] = 0.9        # partly in the padding (rows >= 50): dropped there
    masks[0, 2, 20:25, 20:25] = 0.9      # below the score threshold
    out = {"scores": np.array([[0.9, 0.8, 0.3]]),
           "classes": np.array([[CLASS_IDS["compact"], CLASS_IDS["extended"], 1]]),
           "masks": masks, "valid": np.array([[True, True, True]])}
    finite = np.ones((50, 40), bool)
    finite[12, 31] = False
    dets = detections_from_output(out, 0, tile, (100, 100), finite, score_thr=0.5)
    assert len(dets) == 2
    a, b = dets
    assert a.bbox == (60, 90, 70, 100) and a.category == "compact"
    assert not a.attrs["cut"]  # right edge of the tile is the image border
    assert a.area == 99 and not a.mask[2, 1]
    assert b.bbox == (50, 65, 100, 69) and b.attrs["cut"]
    assert b.area == 4 * 5 + 4 * 5
    assert a.attrs["tile"] == 3 and b.attrs["det"] == 1


def test_crop_mask_outside_is_empty():
    ann = _ann("compact", (0, 0, 4, 4), 0, 0, 1.0, False)
    assert not crop_mask(ann, (10, 10, 20, 20)).any()
    assert crop_mask(ann, (2, 2, 6, 6)).sum() == 4


def test_overlapping_pairs_match_brute_force():
    from caesar_mrcnn.detection.merge import overlapping_pairs

    rng = np.random.default_rng(5)
    y0 = rng.integers(0, 200, 60)
    x0 = rng.integers(0, 200, 60)
    wins = np.stack([y0, x0, y0 + rng.integers(1, 40, 60), x0 + rng.integers(1, 40, 60)], 1)
    brute = [(a, b) for a in range(60) for b in range(a + 1, 60)
             if wins[a, 0] < wins[b, 2] and wins[b, 0] < wins[a, 2]
             and wins[a, 1] < wins[b, 3] and wins[b, 1] < wins[a, 3]]
    assert [tuple(p) for p in overlapping_pairs(wins)] == brute
    grid = np.array([t.window for t in tile_grid((300, 300), 100, 20)])
    # starts 0, 80, 160, 200: per axis 3 overlapping neighbour pairs, so with self-pairs
    # 4 + 2 * 3 = 10 ordered relations per axis, (10 * 10 - 16) / 2 = 42 tile pairs
    assert len(overlapping_pairs(grid)) == 42
