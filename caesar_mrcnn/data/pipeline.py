"""From labelled samples to batches of fixed-shape tensors for the detector (tf.data).

Stages
------
1. :func:`prepare_samples` reads each FITS image once, preprocesses it (NumPy) and keeps the
   result in memory, optionally also in an ``.npz`` cache folder keyed by file and settings.
2. :func:`train_dataset` draws an endless stream of training examples. Example ``g`` of the
   global stream (over all ranks) comes from epoch ``g // n`` of a seeded permutation of the
   ``n`` samples; rank ``r`` of ``size`` takes examples ``g = j * size + r``. Each example is a
   window of the model's image size: a random crop of a big image (centred on a random source
   with probability ``source_crop_prob``) or a small image padded with zeros. Windows and
   augmentations are seeded by ``(seed, g)`` only, so the stream can restart at any step and
   repeat exactly, and every rank sees distinct data.
3. :func:`eval_dataset` covers each image with a grid of non-overlapping windows, without
   augmentation, in a fixed order (validation loss and mAP).

Ground truth is padded to the model's ``max_gt`` instances (class 0 = padding), so every tensor
has a static shape: ``image (B, H, W, C)`` float32, ``boxes (B, G, 4)`` float32
``(y0, x0, y1, x1)`` pixels end exclusive, ``classes (B, G)`` int32, ``masks (B, G, H, W)``
uint8, ``index (B,)`` int64 (position in the stream).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from caesar_mrcnn.classes import class_id
from caesar_mrcnn.data.augment import AugmentConfig
from caesar_mrcnn.data.dataset import Sample
from caesar_mrcnn.data.resample import (
    native_beam_pix,
    resize,
    zoom_annotation,
    zoomed_shape,
)
from caesar_mrcnn.errors import ConfigError, DatasetError
from ssl_backbones.radio_input import resample_factor

log = logging.getLogger(__name__)

_PERM_STREAM = 11  # keeps the epoch permutations and the crop draws of one seed independent
_CROP_STREAM = 7


@dataclass
class PipelineConfig:
    """Options of the detection input pipeline.

    Attributes
    ----------
    source_crop_prob : float
        Probability that a training crop of a big image is placed around a random source
        rather than uniformly.
    min_mask_pixels : int
        Instances with fewer visible mask pixels in a window (after augmentation) are dropped.
    cache_dir : str or None
        Folder for ``.npz`` copies of preprocessed images (None: memory only).
    prefetch : int
        Batches prepared ahead of the training step.
    augment : AugmentConfig
    """

    source_crop_prob: float = 0.8
    min_mask_pixels: int = 4
    cache_dir: str | None = None
    prefetch: int = 2
    augment: AugmentConfig = field(default_factory=AugmentConfig)

    def validate(self) -> None:
        if not 0.0 <= self.source_crop_prob <= 1.0:
            raise ConfigError(f"source_crop_prob: {self.source_crop_prob} must be in [0, 1]")
        if self.min_mask_pixels < 1:
            raise ConfigError(f"min_mask_pixels: {self.min_mask_pixels} must be >= 1")
        if self.prefetch < 0:
            raise ConfigError(f"prefetch: {self.prefetch} must be >= 0")


@dataclass
class PreparedSample:
    """A preprocessed image with its ground truth, ready to be cut into windows.

    Attributes
    ----------
    image : numpy.ndarray of float32, shape ``(H, W, C)``
    boxes : numpy.ndarray of int64, shape ``(N, 4)``
        ``(y0, x0, y1, x1)`` of each instance in image pixels, end exclusive.
    classes : numpy.ndarray of int32, shape ``(N,)``
        Model class ids (1-based).
    masks : list of numpy.ndarray of bool
        Each instance's mask cropped to its box.
    image_id : str
        Name used in logs and evaluation.
    """

    image: np.ndarray
    boxes: np.ndarray
    classes: np.ndarray
    masks: list[np.ndarray]
    image_id: str

    @classmethod
    def from_sample(cls, sample: Sample, image: np.ndarray) -> PreparedSample:
        """Pair a preprocessed image with the annotations of ``sample``."""
        anns = sample.annotations
        boxes = np.array([a.bbox for a in anns], dtype=np.int64).reshape(-1, 4)
        classes = np.array([class_id(a.category) for a in anns], dtype=np.int32)
        image_id = str(sample.meta.get("image_id", Path(sample.image_path).stem))
        return cls(np.asarray(image, np.float32), boxes, classes, [a.mask for a in anns],
                   image_id)

    @property
    def shape(self) -> tuple[int, int]:
        return (int(self.image.shape[0]), int(self.image.shape[1]))


# --- preparation --------------------------------------------------------------------------------


def _cache_file(cache_dir: Path, path: Path, tag: str) -> Path:
    stat = path.stat()
    key = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{tag}"
    return cache_dir / f"{path.stem}-{hashlib.sha1(key.encode()).hexdigest()[:16]}.npz"


def _load_cached(file: Path) -> np.ndarray | None:
    try:
        with np.load(file, allow_pickle=False) as data:
            return np.asarray(data["image"], np.float32)
    except (OSError, ValueError, KeyError, EOFError) as exc:
        log.warning("%s: unreadable cache entry (%s); preprocessing again", file, exc)
        return None


def _save_cached(file: Path, image: np.ndarray) -> None:
    from caesar_mrcnn.io.atomic import atomic_path

    with atomic_path(file) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, image=image)


def prepare_samples(samples: Sequence[Sample], preprocess: Callable[[np.ndarray], np.ndarray],
                    cache_dir: str | Path | None = None, cache_tag: str = ""
                    ) -> list[PreparedSample]:
    """Read and preprocess every sample's image once.

    A noise-aware preprocessor (``kind: snr``) also brings each image and its annotations to
    the beam sampling it names (:mod:`caesar_mrcnn.data.resample`), with the zoom taken from
    the image's header.

    Parameters
    ----------
    samples : sequence of Sample
    preprocess : callable
        Maps a 2D float image (NaN = blank) to ``(H, W, C)`` float32.
    cache_dir : str or Path, optional
        Folder of ``.npz`` copies of preprocessed images; created if missing.
    cache_tag : str
        Text identifying the preprocessing settings (part of the cache key).

    Returns
    -------
    list of PreparedSample

    Raises
    ------
    DatasetError
        No samples, or a preprocessed image whose shape differs from the sample's.
    InputImageError
        An unreadable FITS image.
    """
    if not samples:
        raise DatasetError("the dataset has no images; check the dataset file")
    from caesar_mrcnn.io.fits import open_image

    target = _target_sampling(preprocess)
    folder = Path(cache_dir) if cache_dir else None
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
    out = []
    for sample in samples:
        path = Path(sample.image_path)
        file = _cache_file(folder, path, cache_tag) if folder is not None else None
        image = _load_cached(file) if file is not None and file.is_file() else None
        # the header gives the zoom (also for a cached image); the pixels are read on a miss
        with open_image(path) as radio:
            zoom = resample_factor(native_beam_pix(radio), target) if target else 1.0
            if image is None:
                image = _preprocessed(radio.read(), preprocess, zoom)
                if file is not None:
                    _save_cached(file, image)
        expected = zoomed_shape(sample.shape, zoom) if zoom != 1.0 else tuple(sample.shape)
        if tuple(image.shape[:2]) != tuple(expected):
            raise DatasetError(f"{path}: image is {image.shape[:2]} pixels but the dataset "
                               f"says {tuple(sample.shape)}; fix the dataset entry")
        if zoom != 1.0:
            anns = [z for a in sample.annotations
                    if (z := zoom_annotation(a, zoom, expected)) is not None]
            sample = Sample(sample.image_path, expected, anns, dict(sample.meta, zoom=zoom))
        out.append(PreparedSample.from_sample(sample, image))
    channels = {s.image.shape[2] for s in out}
    if len(channels) > 1:
        raise DatasetError(f"preprocessed images have different channel counts {channels}")
    return out


def _preprocessed(data: np.ndarray, preprocess: Callable, zoom: float) -> np.ndarray:
    """Network channels ``(H, W, C)`` of an image: in noise units and resampled by ``zoom``
    for a noise-aware preprocessor, else the preprocessor's own output."""
    data = np.asarray(data, np.float32)
    if getattr(preprocess, "is_snr", False):
        snr = preprocess.to_snr(data)
        if zoom != 1.0:
            snr = resize(snr, zoomed_shape(snr.shape, zoom))
        return preprocess.stretch(snr)
    image = np.asarray(preprocess(data), np.float32)
    return image if image.ndim == 3 else image[:, :, None]


def _target_sampling(preprocess) -> float:
    """Beam sampling (pixels per FWHM) a noise-aware preprocessor resamples to; 0: none."""
    cfg = getattr(preprocess, "config", None)
    if getattr(cfg, "kind", None) != "snr":
        return 0.0
    return float(cfg.beam_pix)


# --- windows ------------------------------------------------------------------------------------


def origin_range(n: int, size: int) -> tuple[int, int]:
    """Inclusive range of window starts along an axis of ``n`` pixels for a ``size`` window.

    A window bigger than the image may start before it (the rest is padding).
    """
    return (min(0, n - size), max(0, n - size))


def random_window(sample: PreparedSample, size: tuple[int, int], rng: np.random.Generator,
                  source_prob: float) -> tuple[int, int]:
    """Top-left corner of a training window, around a random source with ``source_prob``.

    Around a source means: the whole box of the source lies in the window when it fits, else
    the window contains the centre of the box.
    """
    (ny, nx), (h, w) = sample.shape, size
    (ylo, yhi), (xlo, xhi) = origin_range(ny, h), origin_range(nx, w)
    use_source = len(sample.classes) > 0 and rng.random() < source_prob
    if use_source:
        by0, bx0, by1, bx1 = sample.boxes[rng.integers(len(sample.classes))]

        def around(lo, hi, b0, b1, n):
            cen = (b0 + b1) // 2
            a, b = (b1 - n, b0) if b1 - b0 <= n else (cen - n + 1, cen)
            return max(lo, a), min(hi, b)

        ya, yb = around(ylo, yhi, by0, by1, h)
        xa, xb = around(xlo, xhi, bx0, bx1, w)
        if ya <= yb and xa <= xb:
            ylo, yhi, xlo, xhi = ya, yb, xa, xb
    return int(rng.integers(ylo, yhi + 1)), int(rng.integers(xlo, xhi + 1))


def grid_windows(shape: tuple[int, int], size: tuple[int, int]) -> list[tuple[int, int]]:
    """Top-left corners of non-overlapping windows covering an image (last ones flush right)."""

    def starts(n, s):
        if n <= s:
            return [0]
        out = list(range(0, n - s, s))
        return out + [n - s]

    return [(y, x) for y in starts(shape[0], size[0]) for x in starts(shape[1], size[1])]


def _visible(sample: PreparedSample, y0: int, x0: int, size: tuple[int, int]):
    """Indices of instances overlapping the window, with their clipped masks."""
    h, w = size
    b = sample.boxes
    hit = (b[:, 0] < y0 + h) & (b[:, 2] > y0) & (b[:, 1] < x0 + w) & (b[:, 3] > x0)
    found = []
    for i in np.flatnonzero(hit):
        by0, bx0, by1, bx1 = (int(v) for v in b[i])
        cy0, cx0 = max(by0, y0), max(bx0, x0)
        cy1, cx1 = min(by1, y0 + h), min(bx1, x0 + w)
        part = sample.masks[i][cy0 - by0:cy1 - by0, cx0 - bx0:cx1 - bx0]
        area = int(part.sum())
        if area:
            found.append((i, (cy0 - y0, cx0 - x0, cy1 - y0, cx1 - x0), part, area))
    return found


def window_instances(sample: PreparedSample, y0: int, x0: int, size: tuple[int, int]
                     ) -> list[tuple[int, np.ndarray]]:
    """Every instance visible in a window: ``(class id, full-window bool mask)`` (no cap)."""
    out = []
    for i, (wy0, wx0, wy1, wx1), part, _ in _visible(sample, y0, x0, size):
        full = np.zeros(size, dtype=bool)
        full[wy0:wy1, wx0:wx1] = part
        out.append((int(sample.classes[i]), full))
    return out


def render_window(sample: PreparedSample, y0: int, x0: int, size: tuple[int, int], max_gt: int
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cut a window out of a prepared sample, padding outside the image with zeros.

    Returns
    -------
    image : numpy.ndarray of float32, shape ``(h, w, C)``
    masks : numpy.ndarray of uint8, shape ``(h, w, max_gt)``
        Channel-last instance masks; unused channels are zero.
    classes : numpy.ndarray of int32, shape ``(max_gt,)``
        Class ids, 0 for unused slots.
    """
    (h, w), (ny, nx) = size, sample.shape
    img = np.zeros((h, w, sample.image.shape[2]), np.float32)
    sy0, sx0 = max(y0, 0), max(x0, 0)
    sy1, sx1 = min(y0 + h, ny), min(x0 + w, nx)
    img[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = sample.image[sy0:sy1, sx0:sx1]
    found = _visible(sample, y0, x0, size)
    if len(found) > max_gt:
        found = sorted(found, key=lambda f: -f[3])[:max_gt]
    masks = np.zeros((h, w, max_gt), np.uint8)
    classes = np.zeros(max_gt, np.int32)
    for slot, (i, (wy0, wx0, wy1, wx1), part, _) in enumerate(found):
        masks[wy0:wy1, wx0:wx1, slot] = part
        classes[slot] = sample.classes[i]
    return img, masks, classes


# --- the training stream ------------------------------------------------------------------------


class TrainStream:
    """The deterministic, endless stream of training windows of one rank.

    Parameters
    ----------
    samples : list of PreparedSample
    size : tuple of int
        Window ``(height, width)`` in pixels (the model's image size).
    max_gt : int
        Ground-truth slots per window; beyond it the instances with the largest visible area
        are kept.
    cfg : PipelineConfig
    seed : int
        Base seed of the run (same on every rank).
    rank, world : int
        This rank and the number of ranks.
    """

    def __init__(self, samples: Sequence[PreparedSample], size: tuple[int, int], max_gt: int,
                 cfg: PipelineConfig, seed: int, rank: int = 0, world: int = 1) -> None:
        if not samples:
            raise DatasetError("the training set has no images; check the dataset file")
        self.samples = list(samples)
        self.size = (int(size[0]), int(size[1]))
        self.max_gt = int(max_gt)
        self.cfg = cfg
        self.seed = int(seed)
        self.rank = int(rank)
        self.world = int(world)
        self._perms: dict[int, np.ndarray] = {}

    def global_index(self, local_index: int) -> int:
        """Position in the stream over all ranks of this rank's ``local_index``-th example."""
        return int(local_index) * self.world + self.rank

    def sample_of(self, g: int) -> int:
        """Index of the sample drawn at global position ``g``."""
        n = len(self.samples)
        epoch, pos = divmod(int(g), n)
        perm = self._perms.get(epoch)
        if perm is None:
            perm = np.random.default_rng([self.seed, _PERM_STREAM, epoch]).permutation(n)
            self._perms = {epoch: perm}  # one epoch at a time is all the stream needs
        return int(perm[pos])

    def example(self, local_index: int):
        """Image, channel-last masks, classes and global index of a local example."""
        g = self.global_index(local_index)
        sample = self.samples[self.sample_of(g)]
        rng = np.random.default_rng([self.seed, _CROP_STREAM, g])
        y0, x0 = random_window(sample, self.size, rng, self.cfg.source_crop_prob)
        img, masks, classes = render_window(sample, y0, x0, self.size, self.max_gt)
        return img, masks, classes, np.int64(g)


def _finish(element, cfg: PipelineConfig, augment_cfg: AugmentConfig, seed: int):
    """Augment (or not) one rendered window and recompute its boxes, in the TF graph."""
    import tensorflow as tf

    from caesar_mrcnn.data.augment import augment_example

    img, masks, classes, g = element
    aug_seed = tf.stack([tf.constant(seed, tf.int64), g])
    out = augment_example(img, masks, classes, aug_seed, augment_cfg, cfg.min_mask_pixels)
    out["index"] = g
    return out


def _from_indices(indices, render: Callable, size: tuple[int, int], channels: int, g_max: int,
                  cfg: PipelineConfig, augment_cfg: AugmentConfig, seed: int):
    import tensorflow as tf

    h, w = size

    def load(j):
        img, masks, classes, g = tf.numpy_function(
            render, [j], [tf.float32, tf.uint8, tf.int32, tf.int64], stateful=False)
        img = tf.ensure_shape(img, [h, w, channels])
        masks = tf.ensure_shape(masks, [h, w, g_max])
        classes = tf.ensure_shape(classes, [g_max])
        g = tf.ensure_shape(g, [])
        return _finish((img, masks, classes, g), cfg, augment_cfg, seed)

    return indices.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def train_dataset(samples: Sequence[PreparedSample], size: tuple[int, int], batch_size: int,
                  max_gt: int, cfg: PipelineConfig, seed: int, rank: int = 0, world: int = 1,
                  start_step: int = 0):
    """Endless, batched, augmented training dataset of one rank, starting at ``start_step``.

    Parameters
    ----------
    samples : list of PreparedSample
    size : tuple of int
        Window ``(height, width)`` in pixels.
    batch_size : int
        Examples per batch on this rank.
    max_gt : int
        Ground-truth slots per window (the model's ``max_gt``).
    cfg : PipelineConfig
    seed : int
        Base seed of the run.
    rank, world : int
        This rank and the number of ranks (distinct data on each rank).
    start_step : int
        Number of batches already consumed (resume): the stream continues from there exactly.

    Returns
    -------
    tf.data.Dataset
        Dicts of ``image, boxes, classes, masks, index`` with static shapes (module docstring).
    """
    import tensorflow as tf

    stream = TrainStream(samples, size, max_gt, cfg, seed, rank, world)
    channels = int(stream.samples[0].image.shape[2])
    start = int(start_step) * int(batch_size)
    indices = tf.data.Dataset.range(start, np.iinfo(np.int64).max)
    ds = _from_indices(indices, lambda j: stream.example(int(j)), stream.size, channels,
                       stream.max_gt, cfg, cfg.augment, seed)
    ds = ds.batch(int(batch_size), drop_remainder=True)
    return ds.prefetch(cfg.prefetch) if cfg.prefetch else ds


def eval_windows(samples: Sequence[PreparedSample], size: tuple[int, int]
                 ) -> list[tuple[int, int, int]]:
    """``(sample index, y0, x0)`` of every evaluation window, in dataset order."""
    return [(i, y, x) for i, s in enumerate(samples) for (y, x) in grid_windows(s.shape, size)]


def eval_dataset(samples: Sequence[PreparedSample], size: tuple[int, int], batch_size: int,
                 max_gt: int, cfg: PipelineConfig,
                 windows: Sequence[tuple[int, int, int]] | None = None):
    """Non-augmented dataset over a grid of windows covering every image, in a fixed order.

    Every batch is full, so a compiled model traces once: the last batch is topped up with
    windows from the start of the list, marked with ``index`` -1.

    Parameters
    ----------
    samples : list of PreparedSample
    size : tuple of int
        Window ``(height, width)`` in pixels.
    batch_size : int
    max_gt : int
        Ground-truth slots per window.
    cfg : PipelineConfig
        Only ``min_mask_pixels`` is used (no augmentation).
    windows : list of (int, int, int), optional
        Windows to use (default :func:`eval_windows`); ``index`` in the output is the position
        in this list.

    Returns
    -------
    tf.data.Dataset
        As :func:`train_dataset`, finite.
    """
    import tensorflow as tf

    size = (int(size[0]), int(size[1]))
    windows = list(windows) if windows is not None else eval_windows(samples, size)
    if not windows:
        raise DatasetError("the evaluation set has no images; check the dataset file")
    channels = int(samples[0].image.shape[2])
    n = len(windows)
    total = -(-n // int(batch_size)) * int(batch_size)

    def render(j):
        j = int(j)
        i, y0, x0 = windows[j % n]
        img, masks, classes = render_window(samples[i], y0, x0, size, int(max_gt))
        return img, masks, classes, np.int64(j if j < n else -1)

    off = AugmentConfig(enabled=False)
    ds = _from_indices(tf.data.Dataset.range(total), render, size, channels, int(max_gt),
                       cfg, off, 0)
    return ds.batch(int(batch_size), drop_remainder=True).prefetch(1)
