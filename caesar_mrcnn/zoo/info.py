"""``caesar-mrcnn info MODEL``: what a model file is and where it came from.

Reads only the metadata of a file (never its weights), so it is quick even for large files:

* a backbone registry entry (``.npz`` with its ``.json``, or a registered name);
* a detector file (:mod:`caesar_mrcnn.detection.detector_file`), full or compact
  (:mod:`caesar_mrcnn.detection.compact`; ``reference_r18`` names the shipped one);
* a training checkpoint (:mod:`caesar_mrcnn.training.checkpoint`).

Each is described by its kind, a few facts and its provenance
(:func:`ssl_backbones.provenance.describe`); files written before provenance was recorded say
``not recorded``.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from caesar_mrcnn.detection.compact import COMPACT_FORMAT
from caesar_mrcnn.detection.detector_file import FORMAT as DETECTOR_FORMAT
from caesar_mrcnn.errors import WeightsError
from caesar_mrcnn.training.checkpoint import FORMAT as CHECKPOINT_FORMAT
from caesar_mrcnn.zoo.lookup import backbone_search_dirs, weights_dir

_KINDS = {DETECTOR_FORMAT: "detector", COMPACT_FORMAT: "detector (compact)",
          CHECKPOINT_FORMAT: "checkpoint"}


def _npz_record(path: Path) -> tuple[str, dict[str, Any]] | None:
    """``(kind, metadata)`` of a caesar-mrcnn ``.npz``, or None when it holds no metadata."""
    try:
        with np.load(path, allow_pickle=False) as data:
            for key in ("__metadata__", "__info__"):
                if key in data.files:
                    meta = json.loads(str(data[key]))
                    break
            else:
                return None
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as exc:
        raise WeightsError(f"{path}: not a readable model file ({type(exc).__name__}); give "
                           "a detector, checkpoint or backbone .npz, or copy it again") from None
    if not isinstance(meta, dict):
        return None
    kind = _KINDS.get(meta.get("format"))
    return (kind, meta) if kind else None


def _find(model: str) -> Path:
    """The file ``model`` names: a path, a registered backbone, or a shipped model's name."""
    path = Path(model).expanduser()
    if path.is_file():
        return path
    from ssl_backbones.registry import list_backbones

    shipped = weights_dir() / f"{path.name}{'' if path.suffix == '.npz' else '.npz'}"
    if shipped.is_file() and not shipped.with_suffix(".json").is_file():
        return shipped
    for entry in list_backbones(backbone_search_dirs()):
        if entry["name"] == model:
            return Path(entry["path"])
    raise WeightsError(f"{model}: no such model file, registered backbone or shipped model; "
                       "give the path of a .npz (detector, checkpoint, backbone) or a name "
                       "listed by `caesar-mrcnn backbones`")


def model_info(model: str | Path) -> dict[str, Any]:
    """Kind, facts and provenance of a model file.

    Parameters
    ----------
    model : str or path-like
        A detector (full or compact), checkpoint or backbone ``.npz``, a backbone ``.json``, a
        registered backbone name, or the name of a shipped model (``reference_r18``).

    Returns
    -------
    dict
        ``path``, ``kind`` (``backbone``, ``detector``, ``detector (compact)``,
        ``checkpoint``), ``facts`` (label -> text) and ``provenance`` (the stored record, None
        when not recorded); a compact detector adds ``packing`` (the packing command's).

    Raises
    ------
    WeightsError
        No such file or name, an unreadable file, or not a caesar-mrcnn model file.
    """
    path = _find(str(model))
    if path.suffix == ".json" or (path.suffix == ".npz" and path.with_suffix(".json").is_file()):
        return _backbone_info(path.with_suffix(".json"))
    found = _npz_record(path)
    if found is None:
        raise WeightsError(f"{path}: not a caesar-mrcnn model file (no metadata); give a "
                           "detector, checkpoint or backbone .npz")
    kind, meta = found
    if kind == "checkpoint":
        inner = meta.get("meta") or {}
        train = (inner.get("config") or {})
        facts = {"step": str(meta.get("step", "?")),
                 "data": str((train.get("data") or {}).get("train", "?")),
                 "backbone": str((train.get("backbone") or {}).get("name", "?")),
                 "world size": str(inner.get("world_size", "?"))}
        return {"path": str(path), "kind": kind, "facts": facts,
                "provenance": inner.get("provenance")}
    train = meta.get("train") or {}
    facts = {"created": str(meta.get("created", "?")),
             "backbone": str((meta.get("backbone") or {}).get("name", "?")),
             "train steps": str(train.get("steps", "?")),
             "train data": str(train.get("data", "?"))}
    start = train.get("init")
    if isinstance(start, dict):
        before = start.get("train") or {}
        facts["started from"] = (f"{start.get('file', '?')} ({before.get('steps', '?')} steps on "
                                 f"{before.get('data', '?')})")
    out = {"path": str(path), "kind": kind, "facts": facts,
           "provenance": meta.get("provenance")}
    if kind == "detector (compact)":
        facts["packed"] = f"{meta.get('packed', '?')} from {meta.get('packed_from', '?')}"
        out["packing"] = meta.get("packing")
    return out


def _backbone_info(meta_path: Path) -> dict[str, Any]:
    try:
        meta = json.loads(meta_path.read_text())
        if not isinstance(meta, dict):
            raise ValueError("not a JSON object")
    except (OSError, ValueError) as exc:
        raise WeightsError(f"{meta_path}: unreadable backbone metadata ({exc}); re-export the "
                           "backbone") from None
    facts = {"created": str(meta.get("created", "?")),
             "method": f"{meta.get('method', '?')} {meta.get('arch', '?')}",
             "epochs": str(meta.get("epochs", "?")),
             "cutouts": str(meta.get("n_cutouts", "?"))}
    return {"path": str(meta_path.with_suffix(".npz")), "kind": "backbone", "facts": facts,
            "provenance": meta.get("provenance")}


def format_info(info: dict[str, Any]) -> list[str]:
    """The lines ``caesar-mrcnn info`` prints for a :func:`model_info` record."""
    from ssl_backbones.provenance import describe

    lines = [f"file:         {info['path']}", f"kind:         {info['kind']}"]
    lines += [f"{(label + ':'):<14}{text}" for label, text in info["facts"].items()]
    lines += describe(info.get("provenance"))
    if "packing" in info:
        lines.append("packed by:")
        lines += [f"  {line}" for line in describe(info.get("packing"))]
    return lines


def print_info(model: str | Path, stream=None) -> dict[str, Any]:
    """Print :func:`format_info` of ``model`` (default: to stdout) and return the record."""
    import sys

    info = model_info(model)
    for line in format_info(info):
        print(line, file=stream or sys.stdout)
    return info
