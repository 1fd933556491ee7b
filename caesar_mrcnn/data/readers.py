"""Load a labelled dataset in whichever supported format it is, as a list of samples.

Supported: a COCO instance-segmentation JSON (``images`` + ``annotations``), a caesar JSON list
(text file of JSON paths), a single caesar JSON file, or a folder holding one of them
(``coco.json``, ``datalist.txt`` or ``caesar/datalist.txt``, as the simulator writes).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from caesar_mrcnn.data.dataset import Sample
from caesar_mrcnn.errors import DatasetError

FOLDER_CANDIDATES = ("coco.json", "datalist.txt", "caesar/datalist.txt")
"""Files looked for, in this order, when a folder is given."""


def _sniff(path: Path) -> str:
    """``"json"`` when the file starts like a JSON object, ``"text"`` otherwise."""
    with open(path, "rb") as fh:
        head = fh.read(4096)
    if head.lstrip().startswith(b"{"):
        return "json"
    if head.startswith(b"SIMPLE  ="):
        raise DatasetError(f"{path}: a FITS image, not a dataset; give a COCO JSON or a caesar "
                           "JSON list")
    if b"\x00" in head:
        raise DatasetError(f"{path}: binary file, not a dataset; give a COCO JSON or a caesar "
                           "JSON list")
    return "text"


def load_dataset(path: str | os.PathLike, check_files: bool = True) -> list[Sample]:
    """Read a labelled dataset, choosing the reader from the file's content.

    Parameters
    ----------
    path : path-like
        COCO JSON, caesar JSON list, caesar JSON, or a folder containing one of
        :data:`FOLDER_CANDIDATES`.
    check_files : bool
        Require every referenced image file to exist.

    Raises
    ------
    DatasetError
        Naming the file: not found, not a recognised format, or referencing a missing image or
        mask file.
    """
    from caesar_mrcnn.io.caesar_json import read_caesar_list, sample_from_caesar_json
    from caesar_mrcnn.io.coco import samples_from_coco

    path = Path(path)
    if path.is_dir():
        for name in FOLDER_CANDIDATES:
            if (path / name).is_file():
                return load_dataset(path / name, check_files)
        raise DatasetError(f"{path}: folder holds no dataset ({', '.join(FOLDER_CANDIDATES)}); "
                           "give the dataset file")
    if not path.is_file():
        raise DatasetError(f"{path}: dataset file not found")
    if _sniff(path) == "text":
        return read_caesar_list(path, check_files)
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: not valid JSON ({exc}); fix or regenerate it") from None
    if isinstance(data, dict) and "images" in data and "annotations" in data:
        return samples_from_coco(data, path, check_files)
    if isinstance(data, dict) and "img" in data:
        return [sample_from_caesar_json(data, path, check_files)]
    raise DatasetError(f"{path}: JSON is neither COCO (images, annotations) nor a caesar image "
                       "record (img, objs)")
