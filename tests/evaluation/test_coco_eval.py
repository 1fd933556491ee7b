"""COCO AP through pycocotools on Annotations."""

import numpy as np
import pytest

from caesar_mrcnn.data.dataset import Annotation
from caesar_mrcnn.evaluation.coco_eval import coco_ap


def blob(y, x, r, category="compact", shape=(80, 96), **attrs):
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    return Annotation.from_full_mask(category, (yy - y) ** 2 + (xx - x) ** 2 <= r * r, **attrs)


def field():
    return [blob(10, 10, 4), blob(40, 50, 6, "extended"), blob(70, 85, 3), blob(20, 70, 5,
                                                                              "spurious")]


def with_score(anns, score=0.9):
    return [Annotation(a.category, a.bbox, a.mask, {"score": score}) for a in anns]


def test_ap_is_one_for_perfect_predictions():
    truth = [field(), field()[:2]]
    res = coco_ap(truth, [with_score(t) for t in truth], [(80, 96)] * 2)
    for kind in ("bbox", "segm"):
        for key in ("AP", "AP50", "AP75", "AP_agnostic"):
            assert res[kind][key] == pytest.approx(1.0)


def test_ap_drops_when_a_prediction_is_missing_or_misclassified():
    truth = [field()]
    dropped = coco_ap(truth, [with_score(field()[1:])], [(80, 96)])
    assert dropped["segm"]["AP"] < 1.0 and dropped["bbox"]["AP50"] < 1.0
    wrong = with_score(field())
    wrong[0] = Annotation("extended", wrong[0].bbox, wrong[0].mask, {"score": 0.9})
    res = coco_ap(truth, [wrong], [(80, 96)])
    assert res["segm"]["AP"] < 1.0
    assert res["segm"]["AP_agnostic"] == pytest.approx(1.0)


def test_no_truth_gives_nan():
    res = coco_ap([[]], [with_score(field())], [(80, 96)])
    assert np.isnan(res["segm"]["AP"])
