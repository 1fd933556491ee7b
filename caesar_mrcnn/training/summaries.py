"""TensorBoard output of detector training: scalars and prediction images."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from caesar_mrcnn.classes import CLASS_COLOURS, class_name

_RGB = {"red": (1.0, 0.2, 0.2), "green": (0.2, 1.0, 0.2), "cyan": (0.2, 1.0, 1.0),
        "magenta": (1.0, 0.2, 1.0), "yellow": (1.0, 1.0, 0.2)}


def _outline(mask: np.ndarray) -> np.ndarray:
    """Pixels of ``mask`` with at least one 4-neighbour outside it."""
    pad = np.pad(mask, 1)
    inner = pad[:-2, 1:-1] & pad[2:, 1:-1] & pad[1:-1, :-2] & pad[1:-1, 2:]
    return mask & ~inner


def render_predictions(image: np.ndarray, output: dict, index: int = 0,
                       gt_masks: np.ndarray | None = None, min_score: float = 0.5,
                       mask_threshold: float = 0.5) -> np.ndarray:
    """An RGB picture of one image with its detections (coloured by class) and ground truth.

    Parameters
    ----------
    image : numpy.ndarray, shape ``(H, W, C)``
        Network input; channel 0 is shown in grey, scaled to its 1-99.5 percentiles.
    output : dict of numpy.ndarray
        Batched model output (``scores``, ``classes``, ``masks``, ``valid``).
    index : int
        Image of the batch.
    gt_masks : numpy.ndarray, shape ``(G, H, W)``, optional
        Ground-truth masks, drawn as white outlines.
    min_score, mask_threshold : float
        Detections below ``min_score`` are not drawn; mask pixels above ``mask_threshold`` are.

    Returns
    -------
    numpy.ndarray of float32, shape ``(H, W, 3)`` in [0, 1]
    """
    grey = np.asarray(image[..., 0], np.float32)
    lo, hi = np.percentile(grey, [1.0, 99.5])
    grey = np.clip((grey - lo) / (hi - lo if hi > lo else 1.0), 0.0, 1.0)
    rgb = np.repeat(grey[..., None], 3, axis=-1)
    keep = np.asarray(output["valid"][index], bool) & (np.asarray(output["scores"][index])
                                                      >= min_score)
    for d in np.flatnonzero(keep):
        mask = np.asarray(output["masks"][index, d]) > mask_threshold
        colour = np.array(_RGB[CLASS_COLOURS[class_name(int(output["classes"][index, d]))]])
        rgb[mask] = 0.6 * rgb[mask] + 0.4 * colour
        rgb[_outline(mask)] = colour
    if gt_masks is not None:
        for m in np.asarray(gt_masks).astype(bool):
            rgb[_outline(m)] = 1.0
    return rgb.astype(np.float32)


def _metadata(plugin: str):
    """Summary metadata naming the TensorBoard plugin that displays a value."""
    from tensorflow.core.framework import summary_pb2

    return summary_pb2.SummaryMetadata(
        plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name=plugin))


class Summaries:
    """TensorBoard event writer of one run (a no-op on ranks other than the root).

    Values are written with TensorFlow's own ``tf.summary.write`` and the metadata of
    TensorBoard's scalar and image plugins, so runs log without the ``tensorboard`` package
    installed (it is needed only to view the logs).

    Parameters
    ----------
    folder : path-like or None
        Log folder; None disables all output.
    """

    def __init__(self, folder: str | Path | None) -> None:
        self._writer = None
        if folder is not None:
            import tensorflow as tf

            Path(folder).mkdir(parents=True, exist_ok=True)
            self._writer = tf.summary.create_file_writer(str(folder))

    def scalars(self, values: dict[str, float], step: int, prefix: str = "") -> None:
        """Write each ``name: value`` as a scalar ``prefix + name``."""
        if self._writer is None:
            return
        import tensorflow as tf

        meta = _metadata("scalars")
        with self._writer.as_default():
            for key, value in values.items():
                tf.summary.write(prefix + key, tf.constant(float(value), tf.float32),
                                 step=int(step), metadata=meta)

    def images(self, name: str, pictures: np.ndarray, step: int) -> None:
        """Write a batch of RGB pictures ``(N, H, W, 3)`` in [0, 1] as PNGs."""
        if self._writer is None:
            return
        import tensorflow as tf

        pictures = np.clip(np.asarray(pictures, np.float32) * 255.0 + 0.5, 0, 255)
        pictures = pictures.astype(np.uint8)
        h, w = pictures.shape[1:3]
        pngs = [tf.io.encode_png(p) for p in pictures]
        # The image plugin's layout: width, height, then one encoded image per entry.
        tensor = tf.stack([tf.constant(str(w)), tf.constant(str(h)), *pngs])
        with self._writer.as_default():
            tf.summary.write(name, tensor, step=int(step), metadata=_metadata("images"))

    def flush(self) -> None:
        if self._writer is not None:
            self._writer.flush()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
