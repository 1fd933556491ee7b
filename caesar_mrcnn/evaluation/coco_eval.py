"""COCO AP, AP50 and AP75 for boxes and masks, through pycocotools' reference COCOeval.

The COCO objects are built in memory from :class:`Annotation` lists. Masks are run-length
encoded straight from their bbox-cropped form by :func:`caesar_mrcnn.io.coco.encode_rle` (the
encoder the COCO files use too), so a 16k x 16k field never needs a full-image mask per object.

Radio fields hold far more than COCO's default 100 objects per image, so the detection cap is
raised to the largest number of detections in any image, and only the "all" area range is used
(COCO's small/medium/large thresholds are tuned for photographs).
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence

import numpy as np

from caesar_mrcnn.classes import CLASS_IDS, CLASS_NAMES
from caesar_mrcnn.data.dataset import Annotation
from caesar_mrcnn.io.coco import encode_rle


def _coco_dict(truth: Sequence[Sequence[Annotation]], shapes: Sequence[tuple[int, int]],
               with_score: bool) -> dict:
    images = [{"id": i + 1, "height": int(s[0]), "width": int(s[1])} for i, s in enumerate(shapes)]
    cats = [{"id": CLASS_IDS[n], "name": n} for n in CLASS_NAMES]
    anns = []
    for i, (objs, shape) in enumerate(zip(truth, shapes)):
        for ann in objs:
            rle = encode_rle(ann, shape)
            y0, x0, y1, x1 = ann.bbox
            entry = {"id": len(anns) + 1, "image_id": i + 1,
                     "category_id": CLASS_IDS[ann.category], "segmentation": rle,
                     "area": float(ann.area), "bbox": [x0, y0, x1 - x0, y1 - y0], "iscrowd": 0}
            if with_score:
                entry["score"] = float(ann.attrs.get("score", 1.0))
            anns.append(entry)
    return {"images": images, "categories": cats, "annotations": anns}


def _coco(dataset: dict):
    from pycocotools.coco import COCO

    coco = COCO()
    coco.dataset = dataset
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress
        coco.createIndex()
    return coco


def _ap(coco_eval, iou: float | None) -> float:
    # precision: [T iou thresholds, R recall points, K classes, A areas, M maxDets]; -1 = no data
    prec = coco_eval.eval["precision"][..., 0, -1]
    if iou is not None:
        prec = prec[np.isclose(coco_eval.params.iouThrs, iou)]
    valid = prec[prec > -1]
    return float(valid.mean()) if valid.size else float("nan")


def coco_ap(truth: Sequence[Sequence[Annotation]], dets: Sequence[Sequence[Annotation]],
            shapes: Sequence[tuple[int, int]]) -> dict:
    """COCO AP (IoU 0.50:0.95), AP50 and AP75 for boxes and masks.

    Parameters
    ----------
    truth, dets : sequence of sequence of Annotation
        Per image: ground truth and detections (score in ``attrs["score"]``, default 1).
    shapes : sequence of tuple of int
        Per image: ``(height, width)`` in pixels.

    Returns
    -------
    dict
        ``{"bbox": {...}, "segm": {...}}``, each with ``AP, AP50, AP75`` (class-averaged over
        classes present in the truth) and ``AP_agnostic, AP50_agnostic, AP75_agnostic``
        (classes ignored). NaN when there is no ground truth.
    """
    from pycocotools.cocoeval import COCOeval

    if not any(len(t) for t in truth):
        nan = float("nan")
        empty = {k: nan for k in ("AP", "AP50", "AP75", "AP_agnostic", "AP50_agnostic",
                                  "AP75_agnostic")}
        return {"bbox": dict(empty), "segm": dict(empty)}
    gt = _coco(_coco_dict(truth, shapes, with_score=False))
    dt = _coco(_coco_dict(dets, shapes, with_score=True))
    max_dets = max(100, max((len(d) for d in dets), default=0))
    out = {}
    for iou_type in ("bbox", "segm"):
        res = {}
        for use_cats, suffix in ((1, ""), (0, "_agnostic")):
            ev = COCOeval(gt, dt, iou_type)
            ev.params.maxDets = [max_dets]
            ev.params.areaRng = [[0.0, 1e12]]
            ev.params.areaRngLbl = ["all"]
            ev.params.useCats = use_cats
            with contextlib.redirect_stdout(io.StringIO()):
                ev.evaluate()
                ev.accumulate()
            res["AP" + suffix] = _ap(ev, None)
            res["AP50" + suffix] = _ap(ev, 0.5)
            res["AP75" + suffix] = _ap(ev, 0.75)
        out[iou_type] = res
    return out
