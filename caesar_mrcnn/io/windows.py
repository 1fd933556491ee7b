"""Reading a rectangular window of pixels from an in-memory array or a lazily read image."""

from __future__ import annotations

from typing import Any

import numpy as np


def read_window(image: Any, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
    """Pixels ``[y0:y1, x0:x1]`` (clipped) of a numpy array or an object with ``read_window``."""
    if hasattr(image, "read_window"):
        return image.read_window(y0, y1, x0, x1)
    data = image.data if hasattr(image, "data") and not isinstance(image, np.ndarray) else image
    ny, nx = data.shape
    return np.asarray(data[max(y0, 0):min(y1, ny), max(x0, 0):min(x1, nx)], dtype=np.float32)
