"""Models shipped inside the package, and the compact detector file they are stored in.

The package carries a reference detector and the self-supervised backbone it was built on in
``caesar_mrcnn/weights/`` (how they were made: ``docs/models.md``):

* ``ssl_byol_r18.npz`` + ``ssl_byol_r18.json``: a backbone registry entry (see
  :mod:`ssl_backbones.registry`) with float16 weights, so ``--backbone ssl_byol_r18`` works
  without a pretraining run;
* ``reference_r18.npz``: the detector in the *compact* format below, used by ``infer``,
  ``evaluate`` and ``compare`` when no weights are given.

Compact detector format
-----------------------
A detector trained with a frozen backbone holds a verbatim copy of that backbone. The compact
file stores every other weight in float16 and, for each backbone weight that is unchanged, only
the backbone weight's name; the backbone itself is found by name beside the file, in the shipped
folder or in the user's registry, and is checked against a digest. Backbone weights that did
change in training are stored like the others, so packing never loses a trained value beyond
float16 rounding. A 31-million-weight detector shrinks to a few megabytes this way.
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

from caesar_mrcnn.errors import ConfigError, WeightsError

COMPACT_FORMAT = "caesar-mrcnn-detector-compact-1"
DEFAULT_DETECTOR = "reference_r18.npz"
DEFAULT_BACKBONE = "ssl_byol_r18"
_META_KEY = "__metadata__"
_STORED = np.float16


def weights_dir() -> Path:
    """The folder of the shipped model files (inside the installed package)."""
    return Path(__file__).resolve().parent / "weights"


def backbone_search_dirs() -> list[Path]:
    """Folders searched for backbones after the user's registry: the shipped models."""
    return [weights_dir()]


def shipped_detector() -> Path:
    """Path of the shipped reference detector.

    Raises
    ------
    WeightsError
        The package was installed without its model files.
    """
    path = weights_dir() / DEFAULT_DETECTOR
    if not path.is_file():
        raise WeightsError(f"no shipped detector ({path} is missing); reinstall caesar-mrcnn "
                           "with its package data, or pass --weights PATH of a trained detector")
    return path


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
    from caesar_mrcnn.detector_io import load_detector
    from ssl_backbones.errors import BackboneError
    from ssl_backbones.registry import resolve_backbone

    model, meta = load_detector(detector)
    try:
        ref_weights, _ = resolve_backbone(Path(backbone))
    except BackboneError as exc:
        raise WeightsError(str(exc)) from None
    keys = _backbone_keys(model)
    meta = {k: v for k, v in meta.items() if k not in ("model_config", "preprocess_config")}
    if isinstance(meta.get("train"), dict) and meta["train"].get("data"):
        # A path on the training machine means nothing where the file is used: keep its name.
        meta["train"] = {**meta["train"], "data": Path(str(meta["train"]["data"])).name}
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
                packed_from=Path(detector).name)
    arrays[_META_KEY] = np.array(json.dumps(meta))
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    return _write_npz(Path(out), arrays)


def detector_from_checkpoint(run: str | Path, out: str | Path,
                             step: int | None = None) -> Path:
    """Detector file from a checkpoint of a training run that stopped before its last step.

    ``caesar-mrcnn train`` writes ``detector.npz`` only at the end of its schedule; a run cut
    short (a time limit, ``train(..., stop_at=N)``) leaves checkpoints. This writes the detector
    file of one of them, with the run's configuration and backbone metadata.

    Parameters
    ----------
    run : path-like
        The training output folder (``train_config.yaml``, ``checkpoints/``).
    out : path-like
        Detector file to write.
    step : int, optional
        Checkpoint step (default: the latest).

    Returns
    -------
    pathlib.Path
        The file written.

    Raises
    ------
    WeightsError
        No such checkpoint, or one that does not fit the run's model.
    """
    from caesar_mrcnn.detector_io import save_detector
    from caesar_mrcnn.modeling.maskrcnn import MaskRCNN
    from caesar_mrcnn.train import load_train_config
    from caesar_mrcnn.training.backbone import resolve_backbone_spec
    from caesar_mrcnn.training.checkpoint import list_checkpoints, read_checkpoint

    run = Path(run)
    found = dict(list_checkpoints(run / "checkpoints"))
    if not found or (step is not None and step not in found):
        raise WeightsError(f"{run}: no checkpoint {step if step is not None else ''} in "
                           f"{run / 'checkpoints'}; steps there: {sorted(found) or 'none'}")
    step = max(found) if step is None else step
    cfg = load_train_config(run / "train_config.yaml")
    _info, arrays, _ = read_checkpoint(found[step])
    model = MaskRCNN(cfg.model)
    if len(model.variables) != len(arrays):
        raise WeightsError(f"{found[step]}: holds {len(arrays)} model variables but the run's "
                           f"model has {len(model.variables)}")
    for var, arr in zip(model.variables, arrays):
        var.assign(arr)
    _weights, backbone = resolve_backbone_spec(cfg.backbone.name)
    backbone = {k: v for k, v in backbone.items() if k != "path"}
    extra = {"train": {"steps": step, "schedule_steps": cfg.steps, "data": cfg.data.train,
                       "seed": cfg.seed, "world_size": 1}}
    return save_detector(model, cfg, out, backbone={**backbone, "name": cfg.backbone.name},
                         extra=extra)


def read_compact(path: str | Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Metadata and stored arrays (``w00012`` ...) of a compact detector file.

    Raises
    ------
    WeightsError
        Missing, corrupt or not a compact detector file.
    """
    from caesar_mrcnn.detector_io import read_npz_with_metadata

    return read_npz_with_metadata(
        path, COMPACT_FORMAT, missing_hint="give the path of a detector .npz or leave "
        "--weights out to use the shipped one",
        format_hint="pack one with `python -m caesar_mrcnn.shipped detector`",
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


def load_compact_detector(path: str | Path, search_dirs: Sequence[str | Path] = (),
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
        As :func:`caesar_mrcnn.detector_io.load_detector` returns them (``metadata`` adds
        ``model_config``, ``preprocess_config`` and ``backbone_file``).

    Raises
    ------
    WeightsError
        Corrupt file, backbone not found or changed, or weights that do not fit the model.
    """
    from caesar_mrcnn.detector_io import assign_weights, stored_configs
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


def load_any_detector(path: str | Path) -> tuple[Any, dict[str, Any]]:
    """Load a detector file, full (``caesar-mrcnn train``) or compact (shipped)."""
    if is_compact(path):
        return load_compact_detector(path)
    from caesar_mrcnn.detector_io import load_detector

    return load_detector(path)


def file_sizes(folder: str | Path | None = None) -> dict[str, int]:
    """Sizes (bytes) of the model files in ``folder`` (default: the shipped folder)."""
    folder = Path(folder) if folder is not None else weights_dir()
    return {p.name: p.stat().st_size for p in sorted(folder.glob("*"))
            if p.is_file() and p.suffix in (".npz", ".json")}


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m caesar_mrcnn.shipped``: pack model files for shipping (maintainers' tool).

    ``backbone SRC.npz OUT_DIR`` writes a float16 registry entry; ``detector DETECTOR.npz
    OUT.npz --backbone ENTRY.npz`` writes a compact detector; ``from-checkpoint RUN OUT.npz``
    writes the detector of a run's latest checkpoint; ``sizes [DIR]`` lists file sizes.
    """
    import argparse
    import sys

    parser = argparse.ArgumentParser(prog="python -m caesar_mrcnn.shipped",
                                     description="Pack model files for shipping.")
    sub = parser.add_subparsers(dest="what", required=True)
    p = sub.add_parser("backbone", help="float16 copy of a registry backbone entry")
    p.add_argument("source", help="backbone .npz (its .json beside it)")
    p.add_argument("out_dir", help="destination folder")
    p.add_argument("--name", default=None, help="entry name (default: the source's)")
    p = sub.add_parser("detector", help="compact form of a detector trained on a backbone")
    p.add_argument("detector", help="detector .npz written by caesar-mrcnn train")
    p.add_argument("out", help="compact detector .npz to write")
    p.add_argument("--backbone", required=True, help="backbone .npz it was trained from")
    p.add_argument("--name", default=DEFAULT_BACKBONE, help="backbone name stored in the file")
    p = sub.add_parser("from-checkpoint", help="detector file from a training checkpoint")
    p.add_argument("run", help="training output folder")
    p.add_argument("out", help="detector .npz to write")
    p.add_argument("--step", type=int, default=None, help="checkpoint step (default: latest)")
    p = sub.add_parser("sizes", help="sizes of the model files in a folder")
    p.add_argument("folder", nargs="?", default=None, help="default: the shipped folder")
    args = parser.parse_args(argv)
    from ssl_backbones.errors import BackboneError

    try:
        if args.what == "backbone":
            print(compact_backbone(args.source, args.out_dir, args.name))
        elif args.what == "detector":
            print(pack_detector(args.detector, args.out, args.backbone, args.name))
        elif args.what == "from-checkpoint":
            print(detector_from_checkpoint(args.run, args.out, args.step))
        else:
            sizes = file_sizes(args.folder)
            for name, size in sizes.items():
                print(f"{size / 2**20:8.2f} MiB  {name}")
            print(f"{sum(sizes.values()) / 2**20:8.2f} MiB  total")
    except (WeightsError, ConfigError, BackboneError) as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
