"""A detector loaded once to run on many images: its model, its preprocessing, its metadata.

:func:`load_detector` is the one way to load a detector file, full (written by
``caesar-mrcnn train``) or compact (shipped); with no path it loads the shipped reference
detector. The model is reached through a small interface so that tiling, merging and measuring
can be checked against ground truth without a network::

    predict(batch, windows) -> {"scores": [N, D], "classes": [N, D], "masks": [N, D, H, W],
                                "valid": [N, D]}

``batch`` is ``(N, tile, tile, C)`` float32 and ``windows`` the ``(N, 4)`` image windows
``(y0, x0, y1, x1)`` of the tiles (a network ignores them). :class:`ModelPredictor` wraps a
trained Mask R-CNN; :class:`TruthPredictor` answers with the true masks of known objects.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from caesar_mrcnn.classes import CLASS_IDS
from caesar_mrcnn.data.dataset import Annotation
from caesar_mrcnn.detection.compact import is_compact, load_compact_model
from caesar_mrcnn.detection.detector_file import load_full_model
from caesar_mrcnn.detection.tiling import crop_mask
from caesar_mrcnn.errors import WeightsError
from caesar_mrcnn.zoo.lookup import shipped_detector

log = logging.getLogger(__name__)

Predictor = Callable[[np.ndarray, np.ndarray], dict]
Preprocess = Callable[[np.ndarray], np.ndarray]






class ModelPredictor:
    """Adapter from a detector model (``model(images) -> dict`` of tensors) to a predictor.

    The model runs as a TensorFlow graph traced once per tile shape, whatever the batch size:
    run eagerly, its many small operations (RoI alignment, NMS) took about 1.5 times as long
    on CPU, which dominates a run over many small images.

    Parameters
    ----------
    model : callable
        ``model(images, training=False[, min_score=s])``.
    min_score : float, optional
        Objectness below which the caller drops a detection anyway; the model then returns
        (and computes masks for) only the slots that can reach it (:meth:`keeping`).
    """

    def __init__(self, model: Any, min_score: float | None = None,
                 graphs: dict | None = None) -> None:
        self.model = model
        self.min_score = min_score
        self._graphs: dict[tuple, Any] = {} if graphs is None else graphs

    def keeping(self, min_score: float) -> ModelPredictor:
        """The same model (and traced graphs) returning only detections that can reach
        ``min_score``; the threshold is a graph input, so no threshold retraces."""
        return ModelPredictor(self.model, min_score, self._graphs)

    def __call__(self, batch: np.ndarray, windows: np.ndarray) -> dict:
        import tensorflow as tf

        shape = tuple(int(n) for n in batch.shape[1:])
        thresholded = self.min_score is not None
        graph = self._graphs.get((shape, thresholded))
        if graph is None:
            image = tf.TensorSpec((None, *shape), tf.float32)
            if thresholded:
                graph = tf.function(
                    lambda x, s: self.model(x, training=False, min_score=s),
                    input_signature=[image, tf.TensorSpec((), tf.float32)])
            else:
                graph = tf.function(lambda x: self.model(x, training=False),
                                    input_signature=[image])
            self._graphs[(shape, thresholded)] = graph
        args = [tf.convert_to_tensor(batch, tf.float32)]
        if thresholded:
            args.append(tf.constant(self.min_score, tf.float32))
        out = graph(*args)
        return {k: np.asarray(v) for k, v in out.items()}


class TruthPredictor:
    """A perfect detector: the true masks of known objects, as seen inside each tile.

    Useful to test tiling, merging and measurement, and as an upper bound in evaluations.

    Parameters
    ----------
    objects : sequence of Annotation
        Ground truth in image pixels.
    tile : int
        Output mask size (the padded tile).
    score : float
        Score given to every detection.
    """

    def __init__(self, objects: Sequence[Annotation], tile: int, score: float = 1.0) -> None:
        self.objects = list(objects)
        self.tile = tile
        self.score = score
        self._boxes = np.array([a.bbox for a in self.objects], dtype=np.int64).reshape(-1, 4)
        self._ids = np.array([CLASS_IDS[a.category] for a in self.objects], dtype=np.int64)

    def __call__(self, batch: np.ndarray, windows: np.ndarray) -> dict:
        b = self._boxes
        hits = [np.flatnonzero((b[:, 0] < w[2]) & (w[0] < b[:, 2]) & (b[:, 1] < w[3])
                               & (w[1] < b[:, 3])) for w in windows]
        d = max([1] + [len(h) for h in hits])
        n = len(windows)
        masks = np.zeros((n, d, self.tile, self.tile), dtype=np.float32)
        classes = np.zeros((n, d), dtype=np.int64)
        valid = np.zeros((n, d), dtype=bool)
        for i, (w, h) in enumerate(zip(windows, hits)):
            y0, x0, y1, x1 = (int(v) for v in w)
            for k, j in enumerate(h):
                masks[i, k, :y1 - y0, :x1 - x0] = crop_mask(self.objects[j], (y0, x0, y1, x1))
                classes[i, k] = self._ids[j]
                valid[i, k] = True
        scores = np.where(valid, self.score, 0.0)
        # all the probability on the true class: the score, split over no other class
        probs = np.zeros((n, d, len(CLASS_IDS)))
        np.put_along_axis(probs, np.clip(classes - 1, 0, None)[..., None],
                          scores[..., None], axis=-1)
        return {"scores": scores, "classes": classes, "masks": masks, "valid": valid,
                "probs": probs}


def finite_to_channels(data: np.ndarray) -> np.ndarray:
    """Minimal preprocessing: NaN to 0, one channel (used when no preprocessor is given)."""
    return np.nan_to_num(np.asarray(data, np.float32), nan=0.0)[..., None]


@dataclass(frozen=True)
class Detector:
    """A detector loaded once, to run on many images.

    Attributes
    ----------
    predictor : callable
        ``predict(batch, windows) -> dict`` of the model.
    preprocess : callable
        The preprocessing the detector was trained with.
    metadata : dict
        The detector file's metadata (model, backbone and preprocessing settings).
    path : pathlib.Path
        The detector file.
    """

    predictor: Predictor
    preprocess: Preprocess
    metadata: dict
    path: Path

    @property
    def image_size(self) -> int:
        return int(self.metadata["model"]["image_size"])


def load_detector(weights: str | os.PathLike | None = None) -> Detector:
    """Load a detector file written by training; the shipped reference detector when None.

    Raises
    ------
    WeightsError
        A missing, corrupt or incompatible file (one-line message naming it).
    """
    if weights is None:
        weights = shipped_detector()
    if not Path(weights).exists():
        raise WeightsError(f"{weights}: detector weights not found; pass --weights PATH of a "
                           "file written by caesar-mrcnn train")
    model, metadata = load_model(weights)
    preprocess = preprocess_from_metadata(metadata)
    expected = getattr(getattr(model, "cfg", None), "in_channels", None)
    made = getattr(preprocess, "num_channels", expected)
    if expected is not None and made != expected:
        raise WeightsError(f"{weights}: its model takes {expected} channel(s) but its stored "
                           f"preprocessing makes {made}; the file is inconsistent, retrain or "
                           "repack it")
    return Detector(ModelPredictor(model), preprocess, dict(metadata), Path(weights))


def preprocess_from_metadata(metadata: dict) -> Preprocess:
    """The preprocessing stored with a detector (the one it was trained with)."""
    spec = metadata.get("preprocess_config", metadata.get("preprocess"))
    if spec is None:
        log.warning("detector metadata holds no preprocessing settings; using NaN -> 0 only")
        return finite_to_channels
    from caesar_mrcnn.config import from_dict
    from caesar_mrcnn.data.preprocess import PreprocessConfig, Preprocessor, stored_spec

    if isinstance(spec, Preprocessor):
        return spec
    if isinstance(spec, PreprocessConfig):
        return Preprocessor(spec)
    return Preprocessor(from_dict(PreprocessConfig, stored_spec(spec),
                                  "detector metadata: preprocess"))
def load_model(path: str | Path) -> tuple[Any, dict[str, Any]]:
    """The Keras model and metadata of a detector file, full (``caesar-mrcnn train``) or
    compact (shipped)."""
    if is_compact(path):
        return load_compact_model(path)
    return load_full_model(path)
