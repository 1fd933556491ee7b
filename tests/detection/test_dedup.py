"""One entry per source: class-agnostic de-duplication (caesar_mrcnn.detection.dedup)."""

import numpy as np

from caesar_mrcnn.data.dataset import Annotation
from caesar_mrcnn.detection.dedup import deduplicate


def _disc(shape, x, y, r, category, score):
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    return Annotation.from_full_mask(category, (xx - x) ** 2 + (yy - y) ** 2 <= r * r,
                                     score=score)


def test_compact_on_an_extended_source_goes():
    shape = (100, 100)
    galaxy = _disc(shape, 50, 50, 30, "extended", 0.7)
    hotspot = _disc(shape, 70, 50, 4, "compact", 0.95)
    elsewhere = _disc(shape, 10, 10, 4, "compact", 0.9)
    kept = deduplicate([hotspot, galaxy, elsewhere], overlap=0.5)
    assert [o.category for o in kept] == ["extended", "compact"]
    assert kept[1] is elsewhere


def test_same_source_twice_keeps_the_higher_score():
    shape = (60, 60)
    a = _disc(shape, 30, 30, 8, "compact", 0.6)
    b = _disc(shape, 31, 30, 8, "extended", 0.9)
    assert deduplicate([a, b]) == [b]


def test_neighbours_that_touch_both_stay():
    shape = (60, 60)
    a = _disc(shape, 20, 30, 8, "compact", 0.9)
    b = _disc(shape, 35, 30, 8, "compact", 0.8)  # one column of shared pixels
    assert deduplicate([a, b], overlap=0.5) == [a, b]


def test_overlap_one_turns_it_off():
    shape = (60, 60)
    a = _disc(shape, 30, 30, 8, "compact", 0.6)
    b = _disc(shape, 30, 30, 8, "extended", 0.9)
    assert deduplicate([a, b], overlap=1.0) == [a, b]
