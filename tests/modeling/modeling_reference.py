"""Plain numpy references shared by the modeling tests (tiny inputs, loops are fine here)."""

from __future__ import annotations

import math

import numpy as np


def np_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix of two lists of (y0, x0, y1, x1) boxes, written pair by pair."""
    out = np.zeros((len(a), len(b)))
    for i, p in enumerate(a):
        for j, q in enumerate(b):
            ih = max(0.0, min(p[2], q[2]) - max(p[0], q[0]))
            iw = max(0.0, min(p[3], q[3]) - max(p[1], q[1]))
            inter = ih * iw
            union = (p[2] - p[0]) * (p[3] - p[1]) + (q[2] - q[0]) * (q[3] - q[1]) - inter
            out[i, j] = inter / union if union > 0 else 0.0
    return out


def np_bilinear(img: np.ndarray, y: float, x: float) -> np.ndarray:
    """Bilinear value of ``img[H, W, C]`` at array index (y, x); edge-clamped within one cell,
    zero beyond (the aligned ROIAlign convention)."""
    h, w = img.shape[:2]
    if y < -1.0 or y > h or x < -1.0 or x > w:
        return np.zeros(img.shape[2:])
    y = min(max(y, 0.0), h - 1.0)
    x = min(max(x, 0.0), w - 1.0)
    y0, x0 = int(math.floor(y)), int(math.floor(x))
    y1, x1 = min(y0 + 1, h - 1), min(x0 + 1, w - 1)
    ly, lx = y - y0, x - x0
    return ((1 - ly) * (1 - lx) * img[y0, x0] + (1 - ly) * lx * img[y0, x1]
            + ly * (1 - lx) * img[y1, x0] + ly * lx * img[y1, x1])


def np_roi_align(feat: np.ndarray, box, out: int, stride: float, ratio: int) -> np.ndarray:
    """ROIAlign of one pixel box on ``feat[H, W, C]``: bins sampled at sub-bin centres."""
    y0, x0, y1, x1 = (float(v) / stride for v in box)
    bh, bw = (y1 - y0) / out, (x1 - x0) / out
    res = np.zeros((out, out) + feat.shape[2:])
    for i in range(out):
        for j in range(out):
            acc = 0.0
            for a in range(ratio):
                for b in range(ratio):
                    y = y0 + i * bh + (a + 0.5) * bh / ratio - 0.5
                    x = x0 + j * bw + (b + 0.5) * bw / ratio - 0.5
                    acc = acc + np_bilinear(feat, y, x)
            res[i, j] = acc / ratio**2
    return res
