"""Fixtures shared by the data-pipeline tests."""

import numpy as np
import pytest


@pytest.fixture
def numpy_boxes():
    """The reference the TensorFlow box code is checked against: for masks ``(G, H, W)``, the
    boxes ``(y0, x0, y1, x1)`` in pixels, end exclusive, zeros for an empty mask."""

    def boxes(masks_ghw: np.ndarray) -> np.ndarray:
        out = np.zeros((masks_ghw.shape[0], 4), np.float32)
        for g, m in enumerate(masks_ghw):
            ys, xs = np.nonzero(m)
            if ys.size:
                out[g] = (ys.min(), xs.min(), ys.max() + 1, xs.max() + 1)
        return out

    return boxes
