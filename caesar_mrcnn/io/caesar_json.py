"""The dataset format of the original caesar-mrcnn: a list of per-image JSON files.

A text list file names one JSON file per line (relative to the list's folder, or absolute;
blank lines and ``#`` comments are ignored). Each JSON file describes one image::

    {"img": "field_0001.fits",            # FITS image, relative to this JSON's folder
     "telescope": "ASKAP", "bkg": 0.0, "rms": 3e-05,      # Jy/beam
     "bmaj": 11.0, "bmin": 9.0, "bpa": 0.0,               # arcsec, arcsec, deg
     "dx": 2.0, "dy": 2.0, "nx": 512, "ny": 512,          # arcsec/pixel, pixels
     "objs": [{"mask": "masks/field_0001_obj00000.fits",  # full-size FITS, non-zero = inside
               "class": "compact", "nislands": 1, "sidelobe-mixed": 0,
               "name": "field_0001_00000", "snr": 12.3, "border": 0,
               "maxsize_beam": 1.1, "minsize_beam": 0.9}, ...]}

Object keys other than ``mask`` and ``class`` become :attr:`Annotation.attrs` (with
``sidelobe-mixed`` spelled ``sidelobe_mixed`` there); image keys other than ``img``, ``objs``,
``nx`` and ``ny`` become :attr:`Sample.meta`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from caesar_mrcnn.classes import CLASS_NAMES
from caesar_mrcnn.data.dataset import Annotation, Sample
from caesar_mrcnn.errors import DatasetError, OutputError
from caesar_mrcnn.io.atomic import atomic_open
from caesar_mrcnn.io.jsonable import jsonable

log = logging.getLogger(__name__)

_IMAGE_KEYS = ("img", "objs", "nx", "ny")
_OBJ_KEYS = ("mask", "class")
# attribute names in memory -> key names in the JSON, where they differ
_ATTR_TO_JSON = {"sidelobe_mixed": "sidelobe-mixed"}
_JSON_TO_ATTR = {v: k for k, v in _ATTR_TO_JSON.items()}
MASK_FOLDER = "masks"


# --- writer ---------------------------------------------------------------------------------


def _safe_stem(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.+-]", "_", text) or "image"


def _image_json(sample: Sample, out_dir: Path, stem: str) -> tuple[dict[str, Any], list]:
    """The JSON dictionary of one sample and its ``(mask path, annotation)`` pairs."""
    ny, nx = (int(v) for v in sample.shape)
    img = Path(os.path.relpath(Path(sample.image_path).resolve(), out_dir.resolve()))
    record: dict[str, Any] = {"img": img.as_posix()}
    record.update({k: v for k, v in sample.meta.items() if k not in _IMAGE_KEYS})
    record.update(nx=nx, ny=ny)
    objs, masks = [], []
    for k, ann in enumerate(sample.annotations):
        mask_rel = Path(MASK_FOLDER) / f"{stem}_obj{k:05d}.fits"
        obj: dict[str, Any] = {"mask": mask_rel.as_posix(), "class": ann.category,
                               "nislands": 1, "sidelobe-mixed": 0}
        for key, value in ann.attrs.items():
            key = _ATTR_TO_JSON.get(key, key)
            if key not in _OBJ_KEYS:
                obj[key] = int(value) if isinstance(value, bool | np.bool_) else value
        objs.append(obj)
        masks.append((out_dir / mask_rel, ann))
    record["objs"] = objs
    return jsonable(record), masks


def write_caesar_dataset(samples: Sequence[Sample], out_dir: str | os.PathLike,
                         list_name: str = "datalist.txt") -> Path:
    """Write ``samples`` in the caesar JSON format under ``out_dir``.

    Creates one ``<image>.json`` per sample, one full-size mask FITS (uint8, 1 inside) per
    object under ``masks/``, and the list file ``list_name``, all paths relative. The images
    themselves are referenced, not copied. On failure, the files written so far are removed.

    Parameters
    ----------
    samples : sequence of Sample
        Labelled images.
    out_dir : path-like
        Existing output folder.
    list_name : str
        Name of the list file inside ``out_dir``.

    Returns
    -------
    pathlib.Path
        The list file.
    """
    from caesar_mrcnn.io.fits import write_image

    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        raise OutputError(f"{out_dir}: output folder does not exist; create it first")
    written: list[Path] = []
    stems: set[str] = set()
    try:
        (out_dir / MASK_FOLDER).mkdir(exist_ok=True)
        json_names = []
        for i, sample in enumerate(samples):
            stem = _safe_stem(str(sample.meta.get("image_id", Path(sample.image_path).stem)))
            if stem in stems:
                stem = f"{stem}_{i:05d}"
            stems.add(stem)
            record, masks = _image_json(sample, out_dir, stem)
            for mask_path, ann in masks:
                written.append(mask_path)
                write_image(mask_path, ann.full_mask(tuple(sample.shape)), dtype=np.uint8)
            json_path = out_dir / f"{stem}.json"
            written.append(json_path)
            with atomic_open(json_path, "w") as fh:
                json.dump(record, fh, indent=1, allow_nan=False)
            json_names.append(json_path.name)
        list_path = out_dir / list_name
        written.append(list_path)
        with atomic_open(list_path, "w") as fh:
            fh.write("".join(f"{name}\n" for name in json_names))
    except BaseException:
        for p in written:
            with contextlib.suppress(FileNotFoundError):
                p.unlink()
        with contextlib.suppress(OSError):
            (out_dir / MASK_FOLDER).rmdir()  # only if it is empty
        raise
    return list_path


# --- reader ---------------------------------------------------------------------------------


def _read_mask(json_path: Path, i: int, mask_path: Path, shape: tuple[int, int]) -> np.ndarray:
    from astropy.io import fits

    if not mask_path.is_file():
        raise DatasetError(f"{json_path}: mask file {mask_path} (objs[{i}].mask) not found")
    try:
        data = fits.getdata(mask_path, memmap=False)
    except Exception as exc:  # astropy raises OSError, TypeError, ValueError, IndexError...
        raise DatasetError(f"{json_path}: mask file {mask_path} (objs[{i}].mask) is not a "
                           f"readable FITS image ({exc})") from None
    if data is None:
        raise DatasetError(f"{json_path}: mask file {mask_path} (objs[{i}].mask) holds no data")
    data = np.squeeze(np.asarray(data))
    if data.shape != tuple(shape):
        raise DatasetError(f"{json_path}: mask file {mask_path} has shape {data.shape}, the "
                           f"image {tuple(shape)}; masks must be full-image size")
    return np.isfinite(data) & (data != 0)


def _image_shape(json_path: Path, record: dict[str, Any], image_path: Path) -> tuple[int, int]:
    """``(ny, nx)`` from the record, or from the image header when nx/ny are absent."""
    if "nx" in record and "ny" in record:
        try:
            return int(record["ny"]), int(record["nx"])
        except (TypeError, ValueError):
            raise DatasetError(f"{json_path}: nx/ny must be integers") from None
    if not image_path.is_file():
        raise DatasetError(f"{json_path}: image file {image_path} (img) not found")
    from caesar_mrcnn.errors import InputImageError
    from caesar_mrcnn.io.fits import open_image

    try:
        with open_image(image_path) as img:
            return img.shape
    except InputImageError as exc:
        raise DatasetError(f"{json_path}: {exc}") from None


def sample_from_caesar_json(record: Any, json_path: str | os.PathLike,
                            check_files: bool = True) -> Sample:
    """The sample described by one parsed caesar JSON record read from ``json_path``.

    Raises
    ------
    DatasetError
        Naming ``json_path``: missing keys, unknown class, missing image (with
        ``check_files``) or mask file.
    """
    json_path = Path(json_path)
    if not isinstance(record, dict) or "img" not in record:
        raise DatasetError(f"{json_path}: not a caesar JSON image record (no 'img' key)")
    folder = json_path.parent
    image_path = folder / str(record["img"])
    if check_files and not image_path.is_file():
        raise DatasetError(f"{json_path}: image file {image_path} (img) not found; fix the path "
                           "(relative to the JSON's folder)")
    shape = _image_shape(json_path, record, image_path)
    objs = record.get("objs", [])
    if not isinstance(objs, list):
        raise DatasetError(f"{json_path}: 'objs' must be a list of objects")
    annotations = []
    for i, obj in enumerate(objs):
        if not isinstance(obj, dict) or "mask" not in obj or "class" not in obj:
            raise DatasetError(f"{json_path}: objs[{i}] needs 'mask' and 'class'")
        name = str(obj["class"]).strip().lower()
        if name not in CLASS_NAMES:
            raise DatasetError(f"{json_path}: objs[{i}].class {obj['class']!r} is not one of "
                               f"{', '.join(CLASS_NAMES)}")
        mask = _read_mask(json_path, i, folder / str(obj["mask"]), shape)
        if not mask.any():
            log.warning("%s: objs[%d] has an empty mask; skipped", json_path, i)
            continue
        attrs = {_JSON_TO_ATTR.get(k, k): v for k, v in obj.items() if k not in _OBJ_KEYS}
        annotations.append(Annotation.from_full_mask(name, mask, **attrs))
    meta = {k: v for k, v in record.items() if k not in _IMAGE_KEYS}
    meta.setdefault("image_id", json_path.stem)
    return Sample(image_path, shape, annotations, meta)


def _load_json(path: Path) -> Any:
    if not path.is_file():
        raise DatasetError(f"{path}: JSON file not found")
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: not valid JSON ({exc}); fix or regenerate it") from None


def read_caesar_list(path: str | os.PathLike, check_files: bool = True) -> list[Sample]:
    """Read a caesar JSON list file (or a single caesar JSON file) into samples.

    Parameters
    ----------
    path : path-like
        Text file listing JSON files, one per line (relative to its folder), or one JSON file.
    check_files : bool
        Require every referenced image file to exist (mask files are always read).

    Raises
    ------
    DatasetError
        Naming the list or JSON file and the offending entry.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: dataset list file not found")
    with open(path, "rb") as fh:
        head = fh.read(4096).lstrip()
    if path.suffix.lower() == ".json" or head.startswith(b"{"):
        return [sample_from_caesar_json(_load_json(path), path, check_files)]
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        raise DatasetError(f"{path}: not a text list of JSON files") from None
    entries = [ln.strip() for ln in lines]
    entries = [e for e in entries if e and not e.startswith("#")]
    samples = []
    for n, entry in enumerate(entries, start=1):
        json_path = Path(entry) if Path(entry).is_absolute() else path.parent / entry
        if not json_path.is_file():
            raise DatasetError(f"{path}: entry {n} ({entry}) not found; paths are relative to "
                               "the list file's folder")
        samples.append(sample_from_caesar_json(_load_json(json_path), json_path, check_files))
    return samples
