"""Validation during training: mean losses and COCO mask mAP over a grid of windows."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from caesar_mrcnn.classes import class_name
from caesar_mrcnn.data.dataset import Annotation
from caesar_mrcnn.data.pipeline import PreparedSample, window_instances

MASK_THRESHOLD = 0.5
"""Mask probability above which a pixel belongs to a detection."""


def detections_to_annotations(output: dict, index: int, min_pixels: int = 1
                              ) -> list[Annotation]:
    """Valid detections of one image of a batched model output, as Annotations.

    Parameters
    ----------
    output : dict of numpy.ndarray
        Model output: ``scores [B, D]``, ``classes [B, D]``, ``masks [B, D, H, W]``,
        ``valid [B, D]``.
    index : int
        Image of the batch.
    min_pixels : int
        Detections whose thresholded mask has fewer pixels are dropped.

    Returns
    -------
    list of Annotation
        With ``attrs["score"]``.
    """
    out = []
    valid = np.asarray(output["valid"][index], bool)
    for d in np.flatnonzero(valid):
        mask = np.asarray(output["masks"][index, d]) > MASK_THRESHOLD
        if mask.sum() < min_pixels:
            continue
        out.append(Annotation.from_full_mask(class_name(int(output["classes"][index, d])), mask,
                                             score=float(output["scores"][index, d])))
    return out


def window_truth(samples: Sequence[PreparedSample], windows: Sequence[tuple[int, int, int]],
                 size: tuple[int, int], min_pixels: int = 1) -> list[list[Annotation]]:
    """Ground truth of every evaluation window (all instances, no ``max_gt`` cap)."""
    truth = []
    for i, y0, x0 in windows:
        anns = [Annotation.from_full_mask(class_name(c), m)
                for c, m in window_instances(samples[i], y0, x0, size) if m.sum() >= min_pixels]
        truth.append(anns)
    return truth


def validate(dataset, losses_fn: Callable, predict_fn: Callable,
             truth: Sequence[Sequence[Annotation]], size: tuple[int, int]) -> dict[str, float]:
    """Mean validation losses and COCO AP of a model over an evaluation dataset.

    Parameters
    ----------
    dataset : tf.data.Dataset
        From :func:`caesar_mrcnn.data.pipeline.eval_dataset`.
    losses_fn : callable
        ``losses_fn(batch) -> dict`` of scalar losses (inference-mode normalisation).
    predict_fn : callable
        ``predict_fn(images) -> dict`` model output.
    truth : list of list of Annotation
        Ground truth of every window, in dataset order.
    size : tuple of int
        Window ``(height, width)``.

    Returns
    -------
    dict
        ``loss/<name>`` means, ``mask_AP``, ``mask_AP50``, ``box_AP``, ``box_AP50``.
    """
    from caesar_mrcnn.evaluation.coco_eval import coco_ap

    sums: dict[str, float] = {}
    n = 0
    dets: list[list[Annotation]] = [[] for _ in truth]
    for batch in dataset:
        # Losses are batch means; the top-up windows of the last batch (index -1) repeat
        # real ones, so they shift the mean only slightly and keep shapes static.
        b = int(batch["image"].shape[0])
        for key, value in losses_fn(batch).items():
            sums[key] = sums.get(key, 0.0) + float(value) * b
        n += b
        output = {k: np.asarray(v) for k, v in predict_fn(batch["image"]).items()}
        for j, idx in enumerate(np.asarray(batch["index"])):
            if idx >= 0:
                dets[int(idx)] = detections_to_annotations(output, j)
    result = {f"loss/{k}": v / max(n, 1) for k, v in sums.items()}
    ap = coco_ap(truth, dets, [size] * len(truth))
    result.update({"mask_AP": ap["segm"]["AP"], "mask_AP50": ap["segm"]["AP50"],
                   "box_AP": ap["bbox"]["AP"], "box_AP50": ap["bbox"]["AP50"]})
    return result
