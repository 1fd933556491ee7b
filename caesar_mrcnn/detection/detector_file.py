"""Save and load a trained detector: weights and everything needed to use them, in one file.

A detector file is a NumPy ``.npz`` archive holding every model weight (in the model's own
order) and a JSON metadata record: the model configuration, the preprocessing configuration
(inference must repeat it exactly), the class names, the backbone it started from, and its
provenance (code version, command line, data digest, software versions; see
:mod:`ssl_backbones.provenance`). One file is easy to copy to a cluster and is written atomically.
"""

from __future__ import annotations

import json
import zipfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from caesar_mrcnn.classes import CLASS_NAMES
from caesar_mrcnn.errors import ConfigError, WeightsError

FORMAT = "caesar-mrcnn-detector-1"
_META_KEY = "__metadata__"


_COLLECT = object()


def _software(versions: dict[str, str]) -> dict[str, str]:
    """The ``software`` record of older readers, from the provenance's versions."""
    return {"caesar_mrcnn": versions.get("caesar-mrcnn", "unknown"),
            "tensorflow": versions.get("tensorflow", "unknown"),
            "keras": versions.get("keras", "unknown")}


def detector_metadata(model, cfg: Any, backbone: dict[str, Any] | None = None,
                      extra: dict[str, Any] | None = None,
                      provenance: Any = _COLLECT) -> dict[str, Any]:
    """The metadata record stored with a detector.

    Parameters
    ----------
    model : MaskRCNN
        The detector (its ``cfg`` is stored).
    cfg : TrainConfig, PreprocessConfig or dict
        The training configuration (its ``preprocess`` and ``backbone.name`` are stored), or
        just the preprocessing of the detector's input images.
    backbone : dict, optional
        Where the backbone came from (``name``, and a pretrained backbone's metadata).
    extra : dict, optional
        Anything else JSON-serialisable (training steps, data, metrics).
    provenance : dict or None, optional
        Where the weights came from (:func:`ssl_backbones.provenance.collect`). By default it
        is collected now, with ``cfg.data.train`` as the data; pass the training run's record
        when writing the detector of an earlier run, or None when that record is lost.
    """
    from caesar_mrcnn.config import to_dict
    from ssl_backbones import provenance as prov

    if provenance is _COLLECT:
        data = [cfg.data.train] if getattr(getattr(cfg, "data", None), "train", "") else []
        provenance = prov.collect(data=data)
    if hasattr(cfg, "preprocess"):
        backbone = backbone or {"name": cfg.backbone.name}
        cfg = cfg.preprocess
    pre = dict(cfg) if isinstance(cfg, dict) else to_dict(cfg)
    return {"format": FORMAT, "model": to_dict(model.cfg), "preprocess": pre,
            "classes": list(CLASS_NAMES), "backbone": backbone or {},
            "software": _software(prov.software_versions()), "provenance": provenance,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            **(extra or {})}


def save_detector(model, cfg: Any, path: str | Path,
                  backbone: dict[str, Any] | None = None,
                  extra: dict[str, Any] | None = None, provenance: Any = _COLLECT) -> Path:
    """Write a detector file (atomically).

    Parameters
    ----------
    model : MaskRCNN
    cfg : TrainConfig, PreprocessConfig or dict
        See :func:`detector_metadata`.
    path : path-like
        Output file; ``.npz`` is appended if missing.
    backbone, extra : dict, optional
        See :func:`detector_metadata`.
    provenance : dict or None, optional
        See :func:`detector_metadata` (default: collected now).

    Returns
    -------
    pathlib.Path
        The file written.
    """
    from caesar_mrcnn.io.atomic import atomic_path

    path = Path(path)
    if path.suffix != ".npz":
        path = path.with_name(path.name + ".npz")
    meta = detector_metadata(model, cfg, backbone, extra, provenance)
    weights = list(model.weights)
    meta["weights"] = [{"path": w.path, "shape": list(w.shape)} for w in weights]
    arrays = {f"w{i:05d}": np.asarray(w.numpy()) for i, w in enumerate(weights)}
    arrays[_META_KEY] = np.array(json.dumps(meta))
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **arrays)
    return path


def read_npz_with_metadata(path: str | Path, expected_format: str, *, missing_hint: str,
                           format_hint: str, fix: str) -> tuple[dict[str, Any],
                                                              dict[str, np.ndarray]]:
    """Metadata and arrays of a detector ``.npz`` (JSON metadata under ``__metadata__``).

    Parameters
    ----------
    path : path-like
        The file.
    expected_format : str
        The ``format`` its metadata must declare.
    missing_hint, format_hint, fix : str
        What to do when the file is missing, is not of this format, or is corrupt; each ends
        the corresponding one-line message.

    Raises
    ------
    WeightsError
        Missing, truncated or corrupt file, or not of ``expected_format``.
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: detector weights not found; {missing_hint}")
    try:
        with np.load(path, allow_pickle=False) as data:
            if _META_KEY not in data.files:
                raise WeightsError(f"{path}: not a caesar-mrcnn detector file (no metadata); "
                                   f"{format_hint}")
            meta = json.loads(str(data[_META_KEY]))
            found = meta.get("format") if isinstance(meta, dict) else None
            if found != expected_format:
                raise WeightsError(f"{path}: detector format {found!r}, expected "
                                   f"{expected_format}; {format_hint}")
            arrays = {k: data[k] for k in data.files if k != _META_KEY}
    except WeightsError:
        raise
    except (OSError, ValueError, KeyError, EOFError, TypeError, zipfile.BadZipFile) as exc:
        raise WeightsError(f"{path}: corrupt or truncated detector file "
                           f"({type(exc).__name__}); {fix}") from None
    return meta, arrays


def read_detector(path: str | Path) -> tuple[dict[str, Any], list[np.ndarray]]:
    """Metadata and weight arrays of a detector file, without building the model.

    Raises
    ------
    WeightsError
        Missing, truncated or corrupt file, or not a detector file.
    """
    meta, arrays = read_npz_with_metadata(
        path, FORMAT, missing_hint="train one with `caesar-mrcnn train` or give the path of "
        "its .npz file", format_hint="give the detector.npz written by `caesar-mrcnn train`",
        fix="copy or export it again")
    try:
        return meta, [arrays[f"w{i:05d}"] for i in range(len(meta["weights"]))]
    except (KeyError, TypeError) as exc:
        raise WeightsError(f"{path}: corrupt or truncated detector file "
                           f"({type(exc).__name__}); copy or export it again") from None


def load_full_model(path: str | Path) -> tuple[Any, dict[str, Any]]:
    """Build the detector a file describes and load its weights.

    Parameters
    ----------
    path : path-like
        A file written by :func:`save_detector`.

    Returns
    -------
    model : MaskRCNN
        Ready for inference (``model(images)``).
    metadata : dict
        The stored record (``model``, ``preprocess``, ``classes``, ``backbone``, ``software``,
        ...) plus ``model_config`` (:class:`ModelConfig`) and ``preprocess_config``
        (:class:`PreprocessConfig`) rebuilt from it.

    Raises
    ------
    WeightsError
        Missing or corrupt file, other class names, or weights that do not fit the model.
    """
    from caesar_mrcnn.modeling.maskrcnn import MaskRCNN

    path = Path(path)
    meta, arrays = read_detector(path)
    model_cfg, pre_cfg = stored_configs(meta, path)
    model = MaskRCNN(model_cfg)
    assign_weights(list(model.weights), arrays, path)
    meta = dict(meta)
    meta["model_config"] = model_cfg
    meta["preprocess_config"] = pre_cfg
    return model, meta


def stored_configs(meta: dict[str, Any], path: Path) -> tuple[Any, Any]:
    """The model and preprocessing configurations stored in a detector file's metadata.

    Raises
    ------
    WeightsError
        If the file was trained for another class set or its configuration does not fit.
    """
    from caesar_mrcnn.config import from_dict
    from caesar_mrcnn.data.preprocess import PreprocessConfig, stored_spec
    from caesar_mrcnn.modeling.config import ModelConfig

    if list(meta.get("classes", [])) != list(CLASS_NAMES):
        raise WeightsError(f"{path}: trained for classes {meta.get('classes')} but this version "
                           f"knows {list(CLASS_NAMES)}; retrain the detector")
    try:
        model_cfg = from_dict(ModelConfig, meta["model"], f"{path} model")
        pre_cfg = from_dict(PreprocessConfig, stored_spec(meta["preprocess"]),
                            f"{path} preprocess")
    except (ConfigError, KeyError, TypeError) as exc:
        raise WeightsError(f"{path}: its stored configuration does not fit this version "
                           f"({exc}); retrain or use the matching software version") from None
    return model_cfg, pre_cfg


def assign_weights(variables: list, values: list, path: Path) -> None:
    """Assign stored arrays to a model's variables, in order, after checking count and shapes.

    Nothing is assigned unless every value fits, so a bad file leaves the model untouched.
    """
    if len(variables) != len(values):
        raise WeightsError(f"{path}: holds {len(values)} weights but its model has "
                           f"{len(variables)}; the file and this software version do not match")
    for i, (var, value) in enumerate(zip(variables, values)):
        if tuple(var.shape) != tuple(value.shape):
            raise WeightsError(f"{path}: weight {i} ({var.path}) has shape {tuple(value.shape)} "
                               f"but the model needs {tuple(var.shape)}; the file and this "
                               "software version do not match")
    for var, value in zip(variables, values):
        var.assign(np.asarray(value, dtype=var.dtype))
