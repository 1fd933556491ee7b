"""score_detections and write_report on a hand-made two-image case."""

import csv
import json
import math

import numpy as np
import pytest

from caesar_mrcnn.data.dataset import Annotation, Sample
from caesar_mrcnn.evaluation.report import write_report
from caesar_mrcnn.evaluation.scoring import score_detections

SHAPE = (64, 64)


def box(top, left, size, category, **attrs):
    full = np.zeros(SHAPE, bool)
    full[top:top + size, left:left + size] = True
    return Annotation.from_full_mask(category, full, **attrs)


def case(tmp_path):
    truth1 = [box(5, 5, 6, "compact", snr=4.0, flux_jy=1.0, x=7.5, y=7.5),
              box(30, 30, 8, "extended", snr=25.0, flux_jy=2.0, x=33.5, y=33.5),
              box(50, 5, 5, "compact", snr=8.0, flux_jy=1.0, x=7.0, y=52.0)]   # missed
    dets1 = [box(5, 5, 6, "compact", score=0.9, snr=4.5, flux_jy=1.2, x=8.5, y=7.5),
             box(5, 6, 6, "compact", score=0.5, snr=4.2, flux_jy=1.0),          # duplicate
             box(30, 30, 8, "compact", score=0.8, snr=20.0, flux_jy=1.0),       # misclassified
             box(50, 50, 4, "spurious", score=0.3, snr=3.5)]                    # false
    truth2 = [box(10, 10, 6, "compact", snr=60.0, flux_jy=3.0)]
    dets2 = [box(10, 10, 6, "compact", score=0.95, snr=55.0, flux_jy=3.0)]
    meta = {"dx": 2.0, "dy": 2.0}
    samples = [Sample(tmp_path / "a.fits", SHAPE, truth1, meta),
               Sample(tmp_path / "b.fits", SHAPE, truth2, meta)]
    return samples, [dets1, dets2]


def test_scores_hand_computed(tmp_path):
    samples, dets = case(tmp_path)
    res = score_detections(samples, dets, 0.5, (3, 5, 10, 100))
    s = res.summary
    assert s["counts"] == {"images": 2, "truth": 4, "detections": 5, "matched": 3}
    assert (s["completeness"]["k"], s["completeness"]["n"]) == (3, 4)
    assert (s["reliability"]["k"], s["reliability"]["n"]) == (3, 5)
    assert s["completeness_per_class"]["compact"]["value"] == pytest.approx(2 / 3)
    assert s["reliability_per_class"]["compact"]["value"] == pytest.approx(3 / 4)
    assert s["reliability_per_class"]["spurious"]["value"] == 0.0
    comp = {(r["class"], r["snr_lo"]): r for r in res.completeness}
    assert (comp[("all", 5.0)]["k"], comp[("all", 5.0)]["n"]) == (0, 1)   # the missed SNR-8
    rel = {(r["class"], r["snr_lo"]): r for r in res.reliability}
    assert (rel[("all", 3.0)]["k"], rel[("all", 3.0)]["n"]) == (1, 3)     # measured SNR bins
    names = s["confusion"]["classes"]
    m = np.array(s["confusion"]["matrix"])
    assert m[names.index("compact"), names.index("compact")] == 2
    assert m[names.index("extended"), names.index("compact")] == 1
    assert m.sum() == 3
    assert s["classification_accuracy"] == pytest.approx(2 / 3)
    pairs = {(r["image"], r["truth_index"]): r for r in res.matches}
    assert pairs[("a.fits", 0)]["pos_err_arcsec"] == pytest.approx(2.0)  # 1 pixel of 2 arcsec
    assert pairs[("a.fits", 0)]["flux_ratio"] == pytest.approx(1.2)
    assert pairs[("a.fits", 1)]["flux_ratio"] == pytest.approx(0.5)
    assert s["coco"]["segm"]["AP"] < 1.0
    assert s["coco"]["segm"]["AP_agnostic"] < 1.0  # the duplicate is a false positive
    # the duplicate lies inside its source, the spurious box on empty sky; the SNR-8 source
    # has no detection touching it
    assert s["errors"] == {"false_detections": {"compact": {"fragment": 1},
                                                "spurious": {"off source": 1}},
                           "missed": {"compact": {"undetected": 1}}}
    assert sorted((r["class"], r["kind"]) for r in res.unmatched) == [
        ("compact", "fragment"), ("spurious", "off source")]
    assert {r["origin"] for r in res.unmatched} == {"network"}


def test_unmatched_rows_say_which_entries_the_island_floor_added(tmp_path):
    samples, dets = case(tmp_path)
    dets[0][3].attrs["origin"] = "island"  # the entry on empty sky
    res = score_detections(samples, dets, 0.5, (3, 5, 10, 100))
    assert sorted((r["kind"], r["origin"]) for r in res.unmatched) == [
        ("fragment", "network"), ("off source", "island")]


def test_scores_by_position(tmp_path):
    """The same case matched by position (radius: the larger of the beam FWHM and half the
    true major axis): a detection whose mask covers little of its source's but lies on it
    is found; one off its source is not, whatever its mask."""
    samples, dets = case(tmp_path)
    for s in samples:
        s.meta.update(bmaj=6.0)  # 3 pixels of 2 arcsec
    samples[0].annotations[1].attrs["major_arcsec"] = 20.0  # 10 pixels: radius 5
    dets[0] = [*dets[0],
               box(29, 29, 2, "compact", score=0.7, snr=6.0, x=30.0, y=30.0),  # 4.9 px off
               box(40, 40, 3, "compact", score=0.7, snr=6.0, x=41.0, y=41.0)]  # 10.6 px off
    iou = score_detections(samples, dets, 0.5, (3, 5, 10, 100)).summary
    pos = score_detections(samples, dets, snr_bins=(3, 5, 10, 100), match="position").summary
    assert pos["settings"]["matching"].startswith("one-to-one Hungarian on position")
    # by IoU the small box 4.9 pixels off the extended source matches nothing; by position
    # the extended source is found by one of its two candidates and the other is unmatched
    assert iou["counts"]["matched"] == 3 and pos["counts"]["matched"] == 3
    assert (pos["reliability"]["k"], pos["reliability"]["n"]) == (3, 7)
    # a sidelobe pattern (a spurious truth object) centred on its bright source never takes
    # the source's entry; it takes an entry no source claims
    ring = box(8, 40, 12, "spurious", x=45.5, y=13.5)
    source = box(12, 44, 4, "compact", snr=500.0, x=45.5, y=13.5)
    on_source = box(12, 44, 4, "compact", score=0.9, snr=480.0, x=45.6, y=13.4)
    sample = Sample(tmp_path / "c.fits", SHAPE, [ring, source], {"dx": 2.0, "bmaj": 6.0})
    res = score_detections([sample], [[on_source]], match="position")
    assert res.matches[0]["truth_index"] == 1
    on_ring = box(8, 40, 2, "spurious", score=0.6, snr=5.0, x=47.0, y=13.5)
    res = score_detections([sample], [[on_ring, on_source]], match="position")
    assert sorted((r["truth_index"], r["det_index"]) for r in res.matches) == [(0, 0), (1, 1)]
    with pytest.raises(ValueError, match="bmaj"):
        samples[1].meta.pop("bmaj")
        score_detections(samples, dets, match="position")
    with pytest.raises(ValueError, match="'iou' or 'position'"):
        score_detections(samples, dets, match="nearest")


def test_report_files(tmp_path):
    samples, dets = case(tmp_path)
    res = score_detections(samples, dets, 0.5, (3, 5, 10, 100))
    out = tmp_path / "report"
    written = write_report(res, out)
    names = {p.name for p in written}
    assert {"report.json", "completeness.csv", "reliability.csv", "confusion.csv",
            "classification.csv", "matches.csv", "coco.csv", "completeness_reliability.png",
            "confusion.png", "flux_ratio_vs_snr.png"} <= names
    assert sorted(p.name for p in out.iterdir()) == sorted(names)  # no temporary leftovers
    report = json.loads((out / "report.json").read_text())  # strict JSON: NaN written as null
    assert report["counts"]["matched"] == 3
    with open(out / "matches.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 3 and {r["pred_class"] for r in rows} == {"compact"}
    assert math.isclose(float(rows[0]["iou"]), 1.0)
    for png in ("completeness_reliability.png", "confusion.png", "flux_ratio_vs_snr.png"):
        assert (out / png).read_bytes()[:4] == b"\x89PNG"
