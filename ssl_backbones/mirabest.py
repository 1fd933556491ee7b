"""MiraBest (``MiraBest_F`` batches): FR I / FR II radio galaxies from VLA FIRST, as distributed.

The dataset (Porter & Scaife 2023; labels of Miraghaei & Best 2017) is nine CIFAR-style pickles
in a folder ``F_batches`` (``data_batch_1`` ... ``data_batch_7`` for training, ``test_batch``
for testing, ``batches.meta``), or the tarball ``MiraBest_F_batches.tar.gz`` that holds that
folder. Both are read directly, the tarball without extracting it. Pickles are read with an
unpickler that only builds plain containers and NumPy arrays.

Labels 0-9 are the codes ``100 102 104 110 112 200 201 210 300 310`` (first digit FR I / FR II /
hybrid, second confident / uncertain). The binary subsets (FR I = class 0, FR II = class 1):

==========  ==========================  =========================
subset      FR I labels                 FR II labels
==========  ==========================  =========================
confident   0, 1, 2                     5, 6
full        0, 1, 2, 3, 4               5, 6, 7
==========  ==========================  =========================

**Pixel values into noise units.** Each 150 x 150 image was made from a FIRST cutout (1.8"
pixels) by the MiraBest builder: ``sigma_clipped_stats`` (3 sigma, 5 iterations) gives the rms
``sigma``; every pixel ``<= 3 sigma`` is set to 0; the centre 150 x 150 is kept, pixels outside
the inscribed circle are set to 0; the rest is scaled linearly so the brightest pixel is 255,
and written as an 8-bit PNG. A stored value ``v`` is therefore ``v = 255 * S / S_peak`` (then
truncated to an integer), and the faintest kept pixels lie just above ``3 sigma``. With ``m``
the smallest non-zero value of an image, ``3 sigma`` lies in ``[m, m + 1)`` grey levels, so

    snr = 3 * v / (m + 0.5)

(:func:`to_snr`). Zero pixels stay 0 (their true value, somewhere below 3 sigma, is unknown).
For the brightest sources ``m`` is 1-2 grey levels and the scale is uncertain by up to a factor
of ~2; for the median image (``m`` ~ 9) by ~6 %.

**Beam sampling.** FIRST has 1.8" pixels and a 5.4" beam FWHM: 3 pixels per beam.
:func:`to_reference` resamples the SNR map by ``REFERENCE_BEAM_PIX / 3`` (bilinear).
"""

from __future__ import annotations

import io
import pickle
import tarfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ssl_backbones.errors import PretrainConfigError

TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 8))
TEST_BATCH = "test_batch"
LABEL_CODES = ("100", "102", "104", "110", "112", "200", "201", "210", "300", "310")
SUBSETS: dict[str, tuple[frozenset[int], frozenset[int]]] = {
    "confident": (frozenset({0, 1, 2}), frozenset({5, 6})),
    "full": (frozenset({0, 1, 2, 3, 4}), frozenset({5, 6, 7})),
}
CLASS_NAMES = ("FRI", "FRII")
IMAGE_SIDE = 150
CLIP_SIGMA = 3.0
"""Pixels at or below this many rms were set to 0 by the MiraBest builder."""
FIRST_PIXEL_ARCSEC = 1.8
FIRST_BEAM_ARCSEC = 5.4
FIRST_BEAM_PIX = FIRST_BEAM_ARCSEC / FIRST_PIXEL_ARCSEC


class _ArrayUnpickler(pickle.Unpickler):
    """Builds only what the MiraBest batches hold: NumPy arrays and dtypes."""

    _ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray",
                                                           "_reconstruct"),
                ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
                ("numpy._core.multiarray", "scalar")}

    def find_class(self, module: str, name: str):
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"{module}.{name} is not allowed in a MiraBest batch")


def _unpickle(raw: bytes, where: str) -> dict:
    try:
        obj = _ArrayUnpickler(io.BytesIO(raw), encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as exc:
        raise PretrainConfigError(f"{where}: not a MiraBest batch ({exc}); give the F_batches "
                                  "folder or MiraBest_F_batches.tar.gz") from None
    if not isinstance(obj, dict) or "data" not in obj or "labels" not in obj:
        raise PretrainConfigError(f"{where}: not a MiraBest batch (no data/labels); give the "
                                  "F_batches folder or MiraBest_F_batches.tar.gz")
    return obj


def _read_raw(path: Path, names: Iterable[str]) -> dict[str, bytes]:
    """The bytes of the named batch files, from a folder or a tarball."""
    names = list(names)
    if path.is_file():
        try:
            with tarfile.open(path, "r:*") as tar:
                members = {Path(m.name).name: m for m in tar.getmembers() if m.isfile()}
                missing = [n for n in names if n not in members]
                if missing:
                    raise PretrainConfigError(
                        f"{path}: tarball lacks {', '.join(missing)}; give "
                        "MiraBest_F_batches.tar.gz as distributed")
                return {n: tar.extractfile(members[n]).read() for n in names}
        except tarfile.TarError as exc:
            raise PretrainConfigError(f"{path}: not a readable tarball ({exc}); give the "
                                      "F_batches folder or MiraBest_F_batches.tar.gz") from None
    if path.is_dir():
        folder = path / "F_batches" if (path / "F_batches").is_dir() else path
        tarballs = sorted(folder.glob("*.tar.gz"))
        if not (folder / names[0]).is_file() and len(tarballs) == 1:
            return _read_raw(tarballs[0], names)
        missing = [n for n in names if not (folder / n).is_file()]
        if missing:
            raise PretrainConfigError(
                f"{path}: no MiraBest batches ({', '.join(missing)} missing); give the "
                "F_batches folder or MiraBest_F_batches.tar.gz")
        return {n: (folder / n).read_bytes() for n in names}
    raise PretrainConfigError(f"--data {path}: no such file or folder")


def is_mirabest(path: str | Path) -> bool:
    """True when ``path`` looks like MiraBest batches (a folder holding them, or a tarball)."""
    p = Path(path)
    if p.is_file():
        return p.name.lower().endswith((".tar.gz", ".tgz", ".tar"))
    if p.is_dir():
        folder = p / "F_batches" if (p / "F_batches").is_dir() else p
        return (folder / TEST_BATCH).is_file() or any(folder.glob("MiraBest*.tar.gz"))
    return False


@dataclass
class MiraBestSplit:
    """Images of one split with their original labels.

    Attributes
    ----------
    images : numpy.ndarray
        ``[N, 150, 150]`` uint8 as distributed.
    labels : numpy.ndarray
        ``[N]`` int, original label 0-9 (see :data:`LABEL_CODES`).
    filenames : list of str
        Source names (``<code>_<RA><Dec>_<z>_<LAS arcsec>``), without folder and suffix.
    """

    images: np.ndarray
    labels: np.ndarray
    filenames: list[str]


def read_split(path: str | Path, split: str) -> MiraBestSplit:
    """The ``train`` (batches 1-7) or ``test`` (test batch) split of MiraBest_F.

    Parameters
    ----------
    path : path
        The ``F_batches`` folder (or a folder holding it, or holding the tarball), or the
        tarball ``MiraBest_F_batches.tar.gz``.
    split : {"train", "test"}
    """
    if split not in ("train", "test"):
        raise PretrainConfigError(f"split {split!r}: use train or test")
    names = TRAIN_BATCHES if split == "train" else (TEST_BATCH,)
    raw = _read_raw(Path(path), names)
    images, labels, files = [], [], []
    for n in names:
        d = _unpickle(raw[n], f"{path}:{n}")
        x = np.asarray(d["data"], dtype=np.uint8)
        if x.size % (IMAGE_SIDE * IMAGE_SIDE):
            raise PretrainConfigError(f"{path}:{n}: images are not {IMAGE_SIDE}x{IMAGE_SIDE}")
        images.append(x.reshape(-1, IMAGE_SIDE, IMAGE_SIDE))
        labels += [int(v) for v in d["labels"]]
        files += [Path(str(f)).stem for f in d.get("filenames", [""] * len(x))]
    return MiraBestSplit(np.concatenate(images), np.asarray(labels, dtype=np.int64), files)


def binary_subset(split: MiraBestSplit, subset: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """FR I (0) / FR II (1) images of a subset of a split.

    Returns
    -------
    images : numpy.ndarray
        ``[n, 150, 150]`` uint8.
    labels : numpy.ndarray
        ``[n]`` int, 0 = FR I, 1 = FR II.
    filenames : list of str
    """
    if subset not in SUBSETS:
        raise PretrainConfigError(f"--subset {subset!r}: use {' or '.join(SUBSETS)}")
    fr1, fr2 = SUBSETS[subset]
    keep = np.isin(split.labels, sorted(fr1 | fr2))
    y = np.isin(split.labels[keep], sorted(fr2)).astype(np.int64)
    return split.images[keep], y, [f for f, k in zip(split.filenames, keep) if k]


def to_snr(images: np.ndarray, clip_sigma: float = CLIP_SIGMA) -> np.ndarray:
    """8-bit MiraBest images in units of the FIRST rms (see the module notes).

    Parameters
    ----------
    images : numpy.ndarray
        ``[..., H, W]`` uint8 (0 = below the clip level, 255 = peak).
    clip_sigma : float
        The builder's clip level in rms (3).

    Returns
    -------
    numpy.ndarray
        float32 SNR maps, same shape; all-zero images stay zero.
    """
    x = np.asarray(images, dtype=np.float32)
    flat = x.reshape(-1, x.shape[-2] * x.shape[-1])
    nz = np.where(flat > 0, flat, np.inf).min(axis=1)
    nz = np.where(np.isfinite(nz), nz, 1.0)
    scale = clip_sigma / (nz + 0.5)
    return (flat * scale[:, None]).reshape(x.shape).astype(np.float32)


def resample(images: np.ndarray, zoom: float) -> np.ndarray:
    """Bilinear zoom of ``[N, H, W]`` maps (values preserved, not flux)."""
    if zoom == 1.0:
        return np.asarray(images, dtype=np.float32)
    from scipy import ndimage

    return np.stack([ndimage.zoom(np.asarray(im, np.float32), zoom, order=1, mode="nearest")
                     for im in images])


def to_reference(images: np.ndarray) -> np.ndarray:
    """SNR maps ``[N, H', W']`` at :data:`~ssl_backbones.radio_input.REFERENCE_BEAM_PIX`
    pixels per FIRST beam (150 px become 250 px for 5 px per beam)."""
    from ssl_backbones.radio_input import resample_factor

    return resample(to_snr(images), resample_factor(FIRST_BEAM_PIX))


def load_subset(path: str | Path, subset: str, split: str
                ) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Reference-sampled SNR maps, FR labels and names of a subset of a split."""
    images, y, names = binary_subset(read_split(path, split), subset)
    return to_reference(images), y, names


def pretrain_images(path: str | Path) -> np.ndarray:
    """All training-batch images (labels ignored, hybrids included) as reference-sampled SNR
    maps ``[1099, 250, 250]``. The test batch is never read here."""
    return to_reference(read_split(path, "train").images)


def centre_crop(images: np.ndarray, size: int) -> np.ndarray:
    """Centre ``size x size`` of ``[N, H, W]`` maps, zero-padded when smaller."""
    images = np.asarray(images)
    n, h, w = images.shape
    out = np.zeros((n, size, size), dtype=images.dtype)
    sy, sx = max(0, (h - size) // 2), max(0, (w - size) // 2)
    dy, dx = max(0, (size - h) // 2), max(0, (size - w) // 2)
    ch, cw = min(h, size), min(w, size)
    out[:, dy:dy + ch, dx:dx + cw] = images[:, sy:sy + ch, sx:sx + cw]
    return out


def subset_counts(labels: Sequence[int]) -> dict[str, int]:
    """``{"FRI": n0, "FRII": n1}``."""
    c = np.bincount(np.asarray(labels, dtype=np.int64), minlength=2)
    return {CLASS_NAMES[0]: int(c[0]), CLASS_NAMES[1]: int(c[1])}
