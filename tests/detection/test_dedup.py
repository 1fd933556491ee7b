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


def test_a_part_whose_peak_lies_in_an_extended_mask_joins_it():
    """A hot spot drawn mostly outside its galaxy's mask (a third of it shared) is a part of
    the galaxy when its brightest pixel lies inside that mask, and joins it; a compact
    neighbour touching
    the galaxy, brightest outside it, stays; so does a compact source on a compact one."""
    shape = (100, 100)
    galaxy = _disc(shape, 50, 50, 20, "extended", 0.7)
    hotspot = _disc(shape, 72, 50, 4, "compact", 0.95)  # x 68-76: shares x 68-70
    neighbour = _disc(shape, 50, 75, 6, "compact", 0.9)  # shares a sliver at y 69-70
    peaks = [(50, 69), (50, 50), (73, 50)]  # hot spot brightest at x 69, inside the galaxy
    kept = deduplicate([hotspot, galaxy, neighbour], overlap=0.5, peaks=peaks)
    assert len(kept) == 2 and kept[1] is neighbour
    # the hot spot's mask joins the galaxy's, which keeps its class and score
    assert kept[0].category == "extended" and kept[0].attrs["score"] == 0.7
    assert kept[0].area == (galaxy.full_mask(shape) | hotspot.full_mask(shape)).sum()
    assert deduplicate([hotspot, galaxy, neighbour], overlap=0.5) == [hotspot, galaxy, neighbour]
    # brightest outside the mask: two sources
    assert deduplicate([hotspot, galaxy], 0.5, peaks=[(50, 74), (50, 50)]) == [hotspot, galaxy]
    # the larger one compact: no part-of rule
    core = _disc(shape, 50, 50, 20, "compact", 0.7)
    assert deduplicate([hotspot, core], 0.5, peaks=[(50, 69), (50, 50)]) == [hotspot, core]
