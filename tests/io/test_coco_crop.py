"""COCO RLE decoded into the mask's bounding box equals pycocotools' full-image decoding."""

from __future__ import annotations

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from caesar_mrcnn.io.coco import decode_segmentation, decode_segmentation_crop


def _plain_counts(full: np.ndarray) -> list[int]:
    runs, current, n = [], False, 0
    for value in full.flatten(order="F"):
        if value != current:
            runs.append(n)
            current, n = value, 0
        n += 1
    return runs + [n]


@pytest.mark.parametrize("seed", range(5))
def test_crop_equals_full_decode(seed):
    rng = np.random.default_rng(seed)
    for _ in range(40):
        h, w = (int(v) for v in rng.integers(1, 70, 2))
        full = np.zeros((h, w), bool)
        y0, x0 = rng.integers(0, h), rng.integers(0, w)
        full[y0:y0 + rng.integers(1, 25), x0:x0 + rng.integers(1, 25)] = True
        full &= rng.random((h, w)) > 0.3
        rle = mask_utils.encode(np.asfortranarray(full.astype(np.uint8)))
        for seg in ({"size": [h, w], "counts": rle["counts"].decode("ascii")},
                    {"size": [h, w], "counts": _plain_counts(full)}):
            assert (decode_segmentation(seg, (h, w)) == full).all()
            got = decode_segmentation_crop(seg, (h, w))
            if not full.any():
                assert got is None
                continue
            (y0, x0, y1, x1), mask = got
            back = np.zeros((h, w), bool)
            back[y0:y1, x0:x1] = mask
            assert (back == full).all()
            assert mask[0].any() and mask[-1].any() and mask[:, 0].any() and mask[:, -1].any()


def test_bad_rle_is_refused():
    with pytest.raises(ValueError, match="add up"):
        decode_segmentation_crop({"size": [4, 4], "counts": [3, 2]}, (4, 4))
    with pytest.raises(ValueError, match="differs"):
        decode_segmentation_crop({"size": [4, 5], "counts": [20]}, (4, 4))
