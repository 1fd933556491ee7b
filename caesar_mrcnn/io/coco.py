"""COCO instance-segmentation JSON: write and read labelled radio images.

The files load with :class:`pycocotools.coco.COCO`. Masks are compressed RLE (the
``pycocotools.mask`` encoding of the full, column-major image mask), categories are the
caesar-mrcnn classes with ids 1..5, and ``file_name`` is relative to the JSON's folder (or to
``info.image_root`` when the writer was given one). Beyond the COCO keys, each image entry
carries the image metadata (``rms``, ``bkg``, ``bmaj``, ``bmin``, ``bpa``, ``dx``, ``dy``,
``telescope`` ...) and each annotation its ground-truth properties (``snr``, ``flux_jy``,
``name``, ``nislands`` ...), so a write/read round trip keeps every :class:`Sample` field.
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from caesar_mrcnn.classes import CLASS_IDS, CLASS_NAMES
from caesar_mrcnn.data.dataset import Annotation, Sample
from caesar_mrcnn.errors import DatasetError
from caesar_mrcnn.io.atomic import atomic_open
from caesar_mrcnn.io.jsonable import jsonable

log = logging.getLogger(__name__)

_ANN_KEYS = ("id", "image_id", "category_id", "segmentation", "area", "bbox", "iscrowd")
_IMG_KEYS = ("id", "file_name", "height", "width", "image_name")
_PREFIX_ATTR = "attr_"  # an attribute whose name collides with a COCO key
_PREFIX_META = "meta_"
SUPERCATEGORY = "radio source"


# --- RLE ------------------------------------------------------------------------------------


def rle_counts(ann: Annotation, shape: tuple[int, int]) -> list[int]:
    """Uncompressed COCO RLE counts of ``ann``'s mask pasted into an image of ``shape``.

    Equal to what ``pycocotools.mask.encode`` gives for the full column-major mask, but
    computed from the cropped mask only (cost proportional to the object, not the image).
    """
    h, w = shape
    y0, x0, _, _ = ann.bbox
    lx, ly = np.nonzero(ann.mask.T)  # column-major order: by x, then y
    x, y = lx + x0, ly + y0
    inside = (x >= 0) & (x < w) & (y >= 0) & (y < h)
    idx = x[inside].astype(np.int64) * h + y[inside]
    if idx.size == 0:
        return [h * w]
    breaks = np.flatnonzero(np.diff(idx) != 1)
    starts = idx[np.r_[0, breaks + 1]]
    ends = idx[np.r_[breaks, idx.size - 1]] + 1
    counts = np.empty(2 * starts.size + 1, dtype=np.int64)
    counts[0] = starts[0]
    counts[2:-1:2] = starts[1:] - ends[:-1]
    counts[1::2] = ends - starts
    counts[-1] = h * w - ends[-1]
    if counts[-1] == 0:
        counts = counts[:-1]
    return counts.tolist()


def encode_rle(ann: Annotation, shape: tuple[int, int]) -> dict[str, Any]:
    """Compressed COCO RLE ``{"size": [h, w], "counts": str}`` of an annotation."""
    from pycocotools import mask as mask_utils

    h, w = (int(v) for v in shape)
    rle = mask_utils.frPyObjects({"size": [h, w], "counts": rle_counts(ann, (h, w))}, h, w)
    counts = rle["counts"]
    return {"size": [h, w], "counts": counts.decode("ascii") if isinstance(counts, bytes)
            else counts}


def decode_segmentation(seg: Any, shape: tuple[int, int]) -> np.ndarray:
    """Full boolean mask of a COCO segmentation (compressed or plain RLE, or polygons)."""
    from pycocotools import mask as mask_utils

    h, w = (int(v) for v in shape)
    if isinstance(seg, dict):
        counts = seg.get("counts")
        if isinstance(counts, list):
            rle = mask_utils.frPyObjects(seg, h, w)
        else:
            rle = {"size": list(seg["size"]),
                   "counts": counts.encode("ascii") if isinstance(counts, str) else counts}
    elif isinstance(seg, list) and seg:
        rle = mask_utils.merge(mask_utils.frPyObjects([list(map(float, p)) for p in seg], h, w))
    else:
        raise ValueError("segmentation is neither RLE nor a list of polygons")
    if list(rle["size"]) != [h, w]:
        raise ValueError(f"segmentation size {list(rle['size'])} differs from the image {[h, w]}")
    with warnings.catch_warnings():
        # pycocotools' compiled decoder predates NumPy 2's __array__(copy=) protocol
        warnings.filterwarnings("ignore", "__array__ implementation", DeprecationWarning)
        return mask_utils.decode(rle).astype(bool)


def _rle_counts(counts: str | bytes | list) -> list[int]:
    """Run lengths of a COCO RLE: a plain list, or the compressed string (6 bits per character,
    each run after the second stored as its difference from the run two before)."""
    if isinstance(counts, list):
        return [int(c) for c in counts]
    text = counts.decode("ascii") if isinstance(counts, bytes) else counts
    runs: list[int] = []
    p = 0
    while p < len(text):
        x, k, more = 0, 0, True
        while more:
            c = ord(text[p]) - 48
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            p += 1
            k += 1
            if not more and c & 0x10:
                x |= -1 << (5 * k)
        if len(runs) > 2:
            x += runs[-2]
        runs.append(x)
    return runs


def decode_segmentation_crop(seg: Any, shape: tuple[int, int]
                             ) -> tuple[tuple[int, int, int, int], np.ndarray] | None:
    """A COCO segmentation as ``(bbox, mask)`` inside its bounding box, None when empty.

    RLE is decoded run by run into the box only: decoding to the full image first (as
    :func:`decode_segmentation` does) costs one image-sized array per source, minutes for the
    thousands of sources of a survey mosaic. Polygons go through the full decoder.

    Returns
    -------
    bbox : tuple of int
        ``(y0, x0, y1, x1)``, end exclusive, in image pixels.
    mask : numpy.ndarray of bool
        ``(y1 - y0, x1 - x0)``.
    """
    h, w = (int(v) for v in shape)
    if not (isinstance(seg, dict) and "counts" in seg):
        full = decode_segmentation(seg, shape)
        ys, xs = np.flatnonzero(full.any(axis=1)), np.flatnonzero(full.any(axis=0))
        if not ys.size:
            return None
        y0, y1, x0, x1 = ys[0], ys[-1] + 1, xs[0], xs[-1] + 1
        return (y0, x0, y1, x1), full[y0:y1, x0:x1].copy()
    if [int(v) for v in seg.get("size", [h, w])] != [h, w]:
        raise ValueError(f"segmentation size {list(seg['size'])} differs from the image {[h, w]}")
    runs = _rle_counts(seg["counts"])
    if sum(runs) != h * w or any(r < 0 for r in runs):
        raise ValueError("RLE run lengths do not add up to the image size")
    # (column, first row, end row) of every piece of a foreground run; order is column-major
    pieces = []
    start = 0
    for i, run in enumerate(runs):
        if i % 2 and run:
            end = start + run
            for col in range(start // h, (end - 1) // h + 1):
                pieces.append((col, max(start - col * h, 0), min(end - col * h, h)))
        start += run
    if not pieces:
        return None
    cols = [c for c, _, _ in pieces]
    y0, y1 = min(r for _, r, _ in pieces), max(r for _, _, r in pieces)
    x0, x1 = min(cols), max(cols) + 1
    mask = np.zeros((y1 - y0, x1 - x0), dtype=bool)
    for col, r0, r1 in pieces:
        mask[r0 - y0:r1 - y0, col - x0] = True
    return (y0, x0, y1, x1), mask


# --- writer ---------------------------------------------------------------------------------


def _relative(path: Path, root: Path) -> str:
    return Path(os.path.relpath(Path(path).resolve(), root.resolve())).as_posix()


def coco_dict(samples: Sequence[Sample], json_dir: Path, image_root: Path | None = None
              ) -> dict[str, Any]:
    """The COCO dictionary of ``samples`` for a JSON file in ``json_dir``."""
    root = Path(image_root) if image_root is not None else Path(json_dir)
    info: dict[str, Any] = {"description": "caesar-mrcnn labelled radio images",
                            "version": "1.0"}
    if image_root is not None:
        info["image_root"] = _relative(root, Path(json_dir))
    images, annotations = [], []
    for img_id, sample in enumerate(samples, start=1):
        ny, nx = (int(v) for v in sample.shape)
        entry: dict[str, Any] = {"id": img_id, "file_name": _relative(sample.image_path, root),
                                 "height": ny, "width": nx}
        for key, value in sample.meta.items():
            if key == "image_id":
                entry["image_name"] = value
            else:
                entry[_PREFIX_META + key if key in _IMG_KEYS else key] = value
        images.append(entry)
        for ann in sample.annotations:
            y0, x0, y1, x1 = ann.bbox
            record: dict[str, Any] = {
                "id": len(annotations) + 1, "image_id": img_id,
                "category_id": CLASS_IDS[ann.category],
                "segmentation": encode_rle(ann, (ny, nx)),
                "area": ann.area, "bbox": [x0, y0, x1 - x0, y1 - y0], "iscrowd": 0}
            for key, value in ann.attrs.items():
                record[_PREFIX_ATTR + key if key in _ANN_KEYS else key] = value
            annotations.append(record)
    categories = [{"id": CLASS_IDS[n], "name": n, "supercategory": SUPERCATEGORY}
                  for n in CLASS_NAMES]
    return jsonable({"info": info, "licenses": [], "categories": categories, "images": images,
                     "annotations": annotations})


def write_coco(samples: Sequence[Sample], path: str | os.PathLike,
               image_root: str | os.PathLike | None = None) -> Path:
    """Write ``samples`` as a COCO instance-segmentation JSON file (atomically).

    Parameters
    ----------
    samples : sequence of Sample
        Labelled images; their FITS files are referenced, not copied.
    path : path-like
        Output JSON file; its folder must exist.
    image_root : path-like, optional
        Folder that ``file_name`` entries are relative to (recorded, relative to the JSON's
        folder, as ``info.image_root``); default the JSON's folder.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    path = Path(path)
    data = coco_dict(samples, path.parent, Path(image_root) if image_root is not None else None)
    with atomic_open(path, "w") as fh:
        json.dump(data, fh, indent=1, allow_nan=False)
    return path


# --- reader ---------------------------------------------------------------------------------


def _strip_prefix(key: str, prefix: str, reserved: Sequence[str]) -> str:
    if key.startswith(prefix) and key[len(prefix):] in reserved:
        return key[len(prefix):]
    return key


def samples_from_coco(data: dict[str, Any], path: str | os.PathLike,
                      check_files: bool = True) -> list[Sample]:
    """Samples of an already parsed COCO dictionary read from ``path``.

    Raises
    ------
    DatasetError
        Naming ``path`` and the entry, for a malformed file, an unknown category, or (with
        ``check_files``) a missing image file.
    """
    path = Path(path)
    try:
        categories = {int(c["id"]): str(c["name"]) for c in data.get("categories", [])}
        images = list(data["images"])
        anns = list(data["annotations"])
    except (KeyError, TypeError, ValueError) as exc:
        raise DatasetError(f"{path}: not a COCO dataset ({exc}); expected 'images', "
                           "'annotations' and 'categories'") from None
    for cid, name in categories.items():
        if name not in CLASS_IDS:
            raise DatasetError(f"{path}: category {cid} {name!r} is not a caesar-mrcnn class "
                               f"({', '.join(CLASS_NAMES)}); rename it")
    info = data.get("info") or {}
    root = path.parent / info.get("image_root", ".") if isinstance(info, dict) else path.parent
    by_image: dict[Any, list[dict]] = {}
    for ann in anns:
        by_image.setdefault(ann.get("image_id"), []).append(ann)
    samples = []
    for i, entry in enumerate(images):
        try:
            img_id, file_name = entry["id"], entry["file_name"]
            shape = (int(entry["height"]), int(entry["width"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise DatasetError(f"{path}: images[{i}] lacks id/file_name/height/width "
                               f"({exc})") from None
        image_path = (root / file_name) if not Path(file_name).is_absolute() else Path(file_name)
        if check_files and not image_path.is_file():
            raise DatasetError(f"{path}: image file {image_path} (images[{i}].file_name) not "
                               "found; fix the path or the image_root")
        meta = {_strip_prefix(k, _PREFIX_META, _IMG_KEYS): v for k, v in entry.items()
                if k not in _IMG_KEYS}
        meta["image_id"] = entry.get("image_name", img_id)
        annotations = [_annotation(path, a, categories, shape)
                       for a in by_image.get(img_id, [])]
        samples.append(Sample(image_path, shape, [a for a in annotations if a is not None],
                              meta))
    return samples


def _annotation(path: Path, ann: dict[str, Any], categories: dict[int, str],
                shape: tuple[int, int]) -> Annotation | None:
    aid = ann.get("id", "?")
    try:
        name = categories[int(ann["category_id"])]
    except (KeyError, TypeError, ValueError):
        raise DatasetError(f"{path}: annotation {aid} has category_id "
                           f"{ann.get('category_id')!r}, not among the categories") from None
    try:
        cropped = decode_segmentation_crop(ann["segmentation"], shape)
    except (KeyError, TypeError, ValueError) as exc:
        raise DatasetError(f"{path}: annotation {aid} has an unusable segmentation "
                           f"({exc})") from None
    if cropped is None:
        log.warning("%s: annotation %s has an empty mask; skipped", path, aid)
        return None
    attrs = {_strip_prefix(k, _PREFIX_ATTR, _ANN_KEYS): v for k, v in ann.items()
             if k not in _ANN_KEYS}
    if ann.get("iscrowd"):
        attrs["iscrowd"] = 1
    bbox, mask = cropped
    return Annotation(name, bbox, mask, attrs)


def read_coco(path: str | os.PathLike, check_files: bool = True) -> list[Sample]:
    """Read a COCO instance-segmentation JSON file (RLE or polygon masks) into samples.

    Parameters
    ----------
    path : path-like
        JSON file.
    check_files : bool
        Require every referenced image file to exist.

    Raises
    ------
    DatasetError
        Naming the file, when it is missing, not JSON, or not a usable COCO dataset.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: COCO JSON file not found")
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: not valid JSON ({exc}); fix or regenerate it") from None
    if not isinstance(data, dict):
        raise DatasetError(f"{path}: not a COCO dataset (top level is not an object)")
    return samples_from_coco(data, path, check_files=check_files)
