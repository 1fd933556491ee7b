"""Unlabelled and labelled cutouts for pretraining and evaluation, read with astropy.

Sources of unlabelled cutouts:

* a folder of same-size 2-D FITS cutouts (``*.fits``, ``*.fit``, ``*.fits.gz``; NaN allowed);
* large FITS images, from which ``cutouts_per_image`` square windows are sampled at random.

A labelled morphology set is a folder of FITS cutouts plus a CSV with columns ``file,label``
(``labels.csv``, or the only CSV in the folder that has those columns).
"""

from __future__ import annotations

import csv
import hashlib
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ssl_backbones.errors import PretrainConfigError

log = logging.getLogger(__name__)

FITS_SUFFIXES = (".fits", ".fit", ".fts", ".fits.gz", ".fit.gz")


def _is_fits_name(path: Path) -> bool:
    name = path.name.lower()
    return any(name.endswith(s) for s in FITS_SUFFIXES)


def list_fits(folder: str | Path) -> list[Path]:
    """FITS files directly inside ``folder``, sorted by name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise PretrainConfigError(f"{folder}: not a folder of FITS cutouts")
    return sorted(p for p in folder.iterdir() if p.is_file() and _is_fits_name(p))


def read_fits_image(path: str | Path, memmap: bool = False) -> np.ndarray:
    """The first image HDU of a FITS file as a 2-D array (degenerate axes dropped).

    Raises
    ------
    PretrainConfigError
        Not readable as FITS, no image data, or more than two non-degenerate axes.
    """
    from astropy.io import fits

    path = Path(path)
    try:
        with fits.open(path, memmap=memmap) as hdul:
            data = next((h.data for h in hdul if getattr(h, "data", None) is not None
                         and getattr(h.data, "ndim", 0) >= 2), None)
            if data is None:
                raise PretrainConfigError(f"{path}: no image HDU; give a FITS image")
            data = np.squeeze(data)
            if data.ndim != 2:
                raise PretrainConfigError(
                    f"{path}: image has shape {data.shape}; expected a 2-D map")
            return data if memmap else np.asarray(data, dtype=np.float32)
    except PretrainConfigError:
        raise
    except (OSError, ValueError, TypeError) as exc:
        raise PretrainConfigError(
            f"{path}: cannot read as FITS ({str(exc).splitlines()[0]}); check the file"
        ) from None


def _mostly_nan(image: np.ndarray, max_nan_fraction: float) -> bool:
    return float(np.mean(~np.isfinite(image))) > max_nan_fraction


def load_cutout_folder(folder: str | Path, max_nan_fraction: float = 0.5
                       ) -> tuple[np.ndarray, list[Path]]:
    """All cutouts of a folder as ``[N, H, W, 1]`` float32 (NaN kept), skipping mostly-NaN ones.

    Returns
    -------
    images : numpy.ndarray
    files : list of Path
        The files read (including skipped ones, for the data digest).
    """
    files = list_fits(folder)
    if not files:
        raise PretrainConfigError(f"{folder}: no FITS cutouts (*.fits) found")
    kept, shape = [], None
    for f in files:
        img = read_fits_image(f)
        if shape is None:
            shape = img.shape
        elif img.shape != shape:
            raise PretrainConfigError(
                f"{f}: cutout is {img.shape[1]}x{img.shape[0]} px but {files[0].name} is "
                f"{shape[1]}x{shape[0]}; all cutouts of a folder must have one size")
        if not _mostly_nan(img, max_nan_fraction):
            kept.append(img)
    if not kept:
        raise PretrainConfigError(f"{folder}: every cutout is mostly NaN; nothing to train on")
    if len(kept) < len(files):
        log.info("%s: skipped %d mostly-NaN cutouts", folder, len(files) - len(kept))
    return np.stack(kept)[..., None], files


def sample_cutouts(image_paths: Sequence[str | Path], size: int, per_image: int, seed: int,
                   max_nan_fraction: float = 0.5) -> np.ndarray:
    """Random ``size x size`` windows from large FITS images, skipping mostly-NaN windows.

    Returns
    -------
    numpy.ndarray
        ``[N, size, size, 1]`` float32 with ``N <= per_image * len(image_paths)``.
    """
    rng = np.random.default_rng(seed)
    out = []
    for path in image_paths:
        data = read_fits_image(path, memmap=True)
        ny, nx = data.shape
        if ny < size or nx < size:
            raise PretrainConfigError(
                f"{path}: image {nx}x{ny} px is smaller than data.cutout_size={size}")
        # Draw extra positions so that rejected (mostly blank) windows rarely leave a shortfall.
        ys = rng.integers(0, ny - size + 1, 3 * per_image)
        xs = rng.integers(0, nx - size + 1, 3 * per_image)
        got = 0
        for y, x in zip(ys, xs):
            win = np.asarray(data[y:y + size, x:x + size], dtype=np.float32)
            if _mostly_nan(win, max_nan_fraction):
                continue
            out.append(win)
            got += 1
            if got == per_image:
                break
    if not out:
        raise PretrainConfigError("no usable cutouts: every sampled window is mostly NaN")
    return np.stack(out)[..., None]


def load_pretrain_data(sources: Sequence[str | Path], cutout_size: int, per_image: int,
                       seed: int, max_nan_fraction: float = 0.5
                       ) -> tuple[np.ndarray, list[Path]]:
    """Unlabelled cutouts from folders and/or large FITS images.

    Parameters
    ----------
    sources : sequence of path
        Folders of cutouts, or FITS images to sample ``per_image`` windows of
        ``cutout_size`` px from.

    Returns
    -------
    images : numpy.ndarray
        ``[N, H, W, 1]`` float32.
    files : list of Path
        Every input file (for the data digest).
    """
    if not sources:
        raise PretrainConfigError("--data: give a folder of cutouts or FITS images")
    from ssl_backbones.fields import is_excluded

    arrays, files, images = [], [], []
    for src in map(Path, sources):
        if is_excluded(src):
            raise PretrainConfigError(f"--data {src}: evaluation images (listed in "
                                      "ssl_backbones.fields.EXCLUDED); never pretrain on them")
        if src.is_dir():
            arr, fs = load_cutout_folder(src, max_nan_fraction)
            arrays.append(arr)
            files += fs
        elif src.is_file():
            images.append(src)
            files.append(src)
        else:
            raise PretrainConfigError(f"--data {src}: no such file or folder")
    if images:
        arrays.append(sample_cutouts(images, cutout_size, per_image, seed, max_nan_fraction))
    shapes = {a.shape[1:3] for a in arrays}
    if len(shapes) > 1:
        raise PretrainConfigError(
            f"--data: cutouts come in several sizes {sorted(shapes)}; use one size "
            "(set data.cutout_size to the folder's cutout size)")
    return np.concatenate(arrays), files


def data_digest(files: Sequence[str | Path]) -> str:
    """SHA-256 (hex) of the sorted list of file names and sizes in bytes."""
    lines = sorted(f"{Path(f).name}\t{Path(f).stat().st_size}\n" for f in files)
    return hashlib.sha256("".join(lines).encode()).hexdigest()


def _find_labels_csv(folder: Path) -> Path:
    preferred = folder / "labels.csv"
    if preferred.is_file():
        return preferred
    for path in sorted(folder.glob("*.csv")):
        with open(path, newline="") as fh:
            header = next(csv.reader(fh), [])
        if {"file", "label"} <= {h.strip() for h in header}:
            return path
    raise PretrainConfigError(
        f"{folder}: no labels CSV with columns file,label; add labels.csv")


def load_labelled(folder: str | Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """A labelled morphology set.

    Returns
    -------
    images : numpy.ndarray
        ``[N, H, W, 1]`` float32 (NaN kept).
    labels : numpy.ndarray
        ``[N]`` int, indices into ``class_names``.
    class_names : list of str
        Sorted distinct labels.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise PretrainConfigError(f"{folder}: not a folder of labelled cutouts")
    table = _find_labels_csv(folder)
    with open(table, newline="") as fh:
        rows = list(csv.DictReader(fh))
    if not rows or "file" not in rows[0] or "label" not in rows[0]:
        raise PretrainConfigError(f"{table}: needs columns file,label and at least one row")
    imgs, names = [], []
    for row in rows:
        path = folder / row["file"].strip()
        if not path.is_file():
            raise PretrainConfigError(f"{table}: listed file {row['file']!r} does not exist")
        imgs.append(read_fits_image(path))
        names.append(row["label"].strip())
    if len({i.shape for i in imgs}) > 1:
        raise PretrainConfigError(f"{folder}: labelled cutouts must all have one size")
    classes = sorted(set(names))
    labels = np.array([classes.index(n) for n in names], dtype=np.int64)
    return np.stack(imgs)[..., None], labels, classes


def view_dataset(images: np.ndarray, batch_size: int, seed: int, epoch: int, augment_cfg,
                 size: int, channels: int, snr: bool = False):
    """``tf.data`` pipeline of one epoch: shuffled batches of two radio views.

    The shuffle order and every view depend only on ``(seed, epoch, batch index)``, so a run
    resumed at an epoch boundary sees the same data as an uninterrupted one.

    With ``snr`` the images are reference-sampled SNR maps and the views are
    :func:`ssl_backbones.augment.two_snr_views` (3 channels); otherwise
    :func:`ssl_backbones.augment.two_views`. With ``augment_cfg.local_crops`` the local views
    of :func:`ssl_backbones.augment.multi_crop_views` come third.

    Yields
    ------
    (view1, view2) or (view1, view2, local) : tf.Tensor
        ``[batch_size, size, size, channels]`` float32 in [0, 1], and the local views
        ``[local_crops*batch_size, local_size, local_size, channels]``; the last partial
        batch is dropped.
    """
    import tensorflow as tf

    from ssl_backbones.augment import multi_crop_views, two_snr_views, two_views

    ds = tf.data.Dataset.from_tensor_slices(images.astype(np.float32, copy=False))
    ds = ds.shuffle(len(images), seed=seed * 100003 + epoch, reshuffle_each_iteration=False)
    ds = ds.batch(batch_size, drop_remainder=True).enumerate()

    # Plain TF ops with no tensor-dependent Python control flow: skipping autograph's source
    # conversion saves seconds of tracing per epoch.
    @tf.autograph.experimental.do_not_convert
    def views(i, batch):
        s = tf.stack([tf.cast(seed, tf.int64), tf.cast(epoch, tf.int64) * 1000003 + i])
        if augment_cfg.local_crops:
            return multi_crop_views(batch, s, augment_cfg, size, channels, snr=snr)
        if snr:
            return two_snr_views(batch, s, augment_cfg, size)
        return two_views(batch, s, augment_cfg, size, channels)

    return ds.map(views, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).prefetch(2)
