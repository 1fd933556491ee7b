"""The compact detector file: a detector that refers to its frozen backbone instead of copying it.

A detector trained with a frozen backbone holds a verbatim copy of that backbone. The compact
file stores every other weight in float16 and, for each backbone weight that is unchanged, only
the backbone weight's name; the backbone itself is found by name beside the file, in the shipped
folder or in the user's registry, and is checked against a digest. Backbone weights that did
change in training are stored like the others, so packing never loses a trained value beyond
float16 rounding. A 31-million-weight detector shrinks to a few megabytes this way.

The metadata is the full detector's, unchanged (its ``provenance`` says how it was trained),
plus ``packing``: the provenance of the packing command itself.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from caesar_mrcnn.errors import WeightsError
from caesar_mrcnn.zoo.lookup import DEFAULT_BACKBONE, backbone_search_dirs

COMPACT_FORMAT = "caesar-mrcnn-detector-compact-1"


_META_KEY = "__metadata__"


_STORED = np.float16


def weights_digest(weights: Mapping[str, np.ndarray]) -> str:
    """SHA-256 of named weights as stored (float16), independent of key order.

    A float32 backbone and its float16 copy give the same digest, so a detector packed
    against either finds the other.
    """
    h = hashlib.sha256()
    for key in sorted(weights):
        arr = np.ascontiguousarray(np.asarray(weights[key]), dtype=_STORED)
        h.update(key.encode())
        h.update(str(arr.shape).encode())
        h.update(arr.tobytes())
    return h.hexdigest()


def _to_stored(arr: np.ndarray) -> np.ndarray:
    """Float16 copy of a float array when every value survives the cast; others unchanged."""
    arr = np.asarray(arr)
    if arr.dtype.kind != "f":
        return arr
    small = arr.astype(_STORED)
    return small if np.array_equal(np.isfinite(small), np.isfinite(arr)) else arr


def _write_npz(path: Path, arrays: dict[str, np.ndarray]) -> Path:
    from caesar_mrcnn.io.atomic import atomic_path

    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(fh, **arrays)
    return path


def compact_backbone(source: str | Path, out_dir: str | Path, name: str | None = None) -> Path:
    """Copy a registry backbone entry into ``out_dir`` with float16, compressed weights.

    Parameters
    ----------
    source : path-like
        The entry's ``.npz`` (its ``.json`` must lie beside it).
    out_dir : path-like
        Destination folder (e.g. ``caesar_mrcnn/weights``); created if missing.
    name : str, optional
        Entry name (default: the source's).

    Returns
    -------
    pathlib.Path
        The ``.npz`` written; its ``.json`` is written after it.
    """
    from caesar_mrcnn.io.atomic import atomic_open
    from ssl_backbones.errors import BackboneError
    from ssl_backbones.registry import resolve_backbone

    try:
        weights, meta = resolve_backbone(Path(source))
    except BackboneError as exc:
        raise WeightsError(str(exc)) from None
    name = name or Path(source).stem
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    npz = _write_npz(out_dir / f"{name}.npz", {k: _to_stored(v) for k, v in weights.items()})
    meta = {k: v for k, v in meta.items() if k != "path"}
    meta.update(name=name, weights=npz.name, stored_dtype="float16",
                digest=weights_digest(weights))
    with atomic_open(out_dir / f"{name}.json", "w") as fh:
        fh.write(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return npz


def _backbone_keys(model) -> dict[str, str]:
    """Detector variable path -> backbone weight name (``layer/var``) for its backbone."""
    from ssl_backbones.resnet import backbone_weights

    names = list(backbone_weights(model.backbone))
    variables = [v for layer in model.backbone.layers for v in layer.weights]
    return {v.path: k for v, k in zip(variables, names)}


def _find_backbone(name: str, digest: str, near: Path, search_dirs: Sequence[str | Path],
                   registry: str | Path | None) -> tuple[dict[str, np.ndarray], Path]:
    """The first backbone called ``name`` whose digest matches: beside ``near``, then in
    ``search_dirs`` (default: shipped), then in the user's registry."""
    from ssl_backbones.errors import BackboneError
    from ssl_backbones.registry import registry_dir, resolve_backbone

    folders = [near, *map(Path, search_dirs or backbone_search_dirs()),
               Path(registry) if registry is not None else registry_dir()]
    tried = []
    for folder in folders:
        candidate = folder / f"{name}.npz"
        if not candidate.is_file() or candidate in tried:
            continue
        tried.append(candidate)
        try:
            weights, _meta = resolve_backbone(candidate)
        except BackboneError:
            continue
        if weights_digest(weights) == digest:
            return weights, candidate
    where = ", ".join(str(f) for f in folders)
    raise WeightsError(f"backbone {name!r} with digest {digest[:12]} not found (searched {where}"
                       f"{'; other versions: ' + ', '.join(map(str, tried)) if tried else ''}); "
                       "reinstall caesar-mrcnn or copy the backbone beside the detector file")


def pack_detector(detector: str | Path, out: str | Path, backbone: str | Path,
                  name: str = DEFAULT_BACKBONE) -> Path:
    """Write the compact form of a detector file trained on a registry backbone.

    Parameters
    ----------
    detector : path-like
        A detector ``.npz`` written by ``caesar-mrcnn train``.
    out : path-like
        The compact file to write (``.npz``).
    backbone : path-like
        The backbone entry (``.npz`` with its ``.json``) the detector was trained from; the
        compact file refers to it by ``name`` and digest.
    name : str
        Name under which the backbone will be found at load time.

    Returns
    -------
    pathlib.Path
        The file written.
    """
    from caesar_mrcnn.detection.detector_file import load_full_model
    from ssl_backbones import provenance
    from ssl_backbones.errors import BackboneError
    from ssl_backbones.registry import resolve_backbone

    model, meta = load_full_model(detector)
    try:
        ref_weights, _ = resolve_backbone(Path(backbone))
    except BackboneError as exc:
        raise WeightsError(str(exc)) from None
    keys = _backbone_keys(model)
    # Everything the training run recorded is kept as it was written, provenance included,
    # so the shipped file says exactly what made it.
    meta = {k: v for k, v in meta.items() if k not in ("model_config", "preprocess_config")}
    records, arrays = [], {}
    for i, var in enumerate(model.weights):
        value = np.asarray(var.numpy())
        key = keys.get(var.path)
        record = {"path": var.path, "shape": list(value.shape), "dtype": str(value.dtype)}
        ref = ref_weights.get(key) if key is not None else None
        if ref is not None and ref.shape == value.shape and np.array_equal(
                _to_stored(ref), _to_stored(value)):
            record["backbone"] = key
        else:
            arrays[f"w{i:05d}"] = _to_stored(value)
        records.append(record)
    meta.update(format=COMPACT_FORMAT, weights=records, stored_dtype="float16",
                backbone_ref={"name": name, "digest": weights_digest(ref_weights)},
                packed=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                packed_from=Path(detector).name, packing=provenance.collect())
    arrays[_META_KEY] = np.array(json.dumps(meta))
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    return _write_npz(Path(out), arrays)


def read_compact(path: str | Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Metadata and stored arrays (``w00012`` ...) of a compact detector file.

    Raises
    ------
    WeightsError
        Missing, corrupt or not a compact detector file.
    """
    from caesar_mrcnn.detection.detector_file import read_npz_with_metadata

    return read_npz_with_metadata(
        path, COMPACT_FORMAT, missing_hint="give the path of a detector .npz or leave "
        "--weights out to use the shipped one",
        format_hint="pack one with `python -m caesar_mrcnn.zoo.pack detector`",
        fix="reinstall or pack it again")


def is_compact(path: str | Path) -> bool:
    """True when ``path`` is a compact detector file (reads only its metadata)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            if _META_KEY not in data.files:
                return False
            meta = json.loads(str(data[_META_KEY]))
    except (OSError, ValueError, EOFError, zipfile.BadZipFile):
        return False
    return isinstance(meta, dict) and meta.get("format") == COMPACT_FORMAT


def load_compact_model(path: str | Path, search_dirs: Sequence[str | Path] = (),
                          registry: str | Path | None = None) -> tuple[Any, dict[str, Any]]:
    """Build the detector of a compact file: its backbone from the registry, the rest stored.

    Parameters
    ----------
    path : path-like
        A file written by :func:`pack_detector`.
    search_dirs : sequence of path-like
        Folders searched for the backbone after the file's own folder (default: shipped).
    registry : path-like, optional
        The user's registry folder (default :func:`ssl_backbones.registry.registry_dir`).

    Returns
    -------
    model, metadata
        As :func:`caesar_mrcnn.detection.detector_file.load_full_model` returns them
        (``metadata`` adds
        ``model_config``, ``preprocess_config`` and ``backbone_file``).

    Raises
    ------
    WeightsError
        Corrupt file, backbone not found or changed, or weights that do not fit the model.
    """
    from caesar_mrcnn.detection.detector_file import assign_weights, stored_configs
    from caesar_mrcnn.modeling.maskrcnn import MaskRCNN

    path = Path(path)
    meta, arrays = read_compact(path)
    model_cfg, pre_cfg = stored_configs(meta, path)
    try:
        ref = meta["backbone_ref"]
        records = meta["weights"]
    except (KeyError, TypeError) as exc:
        raise WeightsError(f"{path}: its stored configuration does not fit this version "
                           f"({exc}); use the matching software version") from None
    backbone, backbone_file = _find_backbone(ref["name"], ref["digest"], path.parent,
                                             search_dirs, registry)
    model = MaskRCNN(model_cfg)
    variables = list(model.weights)
    if len(variables) != len(records):
        raise WeightsError(f"{path}: holds {len(records)} weights but its model has "
                           f"{len(variables)}; the file and this software version do not match")
    values = []
    for i, rec in enumerate(records):
        value = backbone.get(rec["backbone"]) if "backbone" in rec else arrays.get(f"w{i:05d}")
        if value is None:
            raise WeightsError(f"{path}: weight {i} ({rec.get('path')}) is missing; pack the "
                               "detector again")
        values.append(value)
    assign_weights(variables, values, path)
    meta = dict(meta)
    meta.update(model_config=model_cfg, preprocess_config=pre_cfg,
                backbone_file=str(backbone_file))
    return model, meta
