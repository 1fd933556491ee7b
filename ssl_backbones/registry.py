"""Registry of pretrained backbones: ``<name>.npz`` weights + ``<name>.json`` metadata.

The registry folder is ``$CAESAR_MRCNN_BACKBONES`` if set, else
``$XDG_CACHE_HOME/caesar-mrcnn/backbones`` (``~/.cache/caesar-mrcnn/backbones``). Further
folders (e.g. weights shipped inside a package) can be searched by passing ``search_dirs``.
The JSON file is written last, so an entry without it is incomplete and not listed.
"""

from __future__ import annotations

import json
import os
import re
import zipfile
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from ssl_backbones import provenance
from ssl_backbones.atomic import atomic_target
from ssl_backbones.errors import BackboneWeightsError, RegistryError

ENV_VAR = "CAESAR_MRCNN_BACKBONES"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def registry_dir() -> Path:
    """The user's backbone registry folder (not created here)."""
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache).expanduser() / "caesar-mrcnn" / "backbones"


def software_version() -> str:
    """Installed version of the ``caesar-mrcnn`` distribution, or ``"unknown"``."""
    from importlib import metadata

    try:
        return metadata.version("caesar-mrcnn")
    except metadata.PackageNotFoundError:
        return "unknown"


def _search_path(search_dirs: Sequence[str | Path] = (),
                 registry: str | Path | None = None) -> list[Path]:
    first = Path(registry) if registry is not None else registry_dir()
    return [first, *map(Path, search_dirs)]


def list_backbones(search_dirs: Sequence[str | Path] = (),
                   registry: str | Path | None = None) -> list[dict[str, Any]]:
    """Metadata of every complete entry (weights + JSON) in the registry and ``search_dirs``.

    Each dict is the stored metadata plus ``name``, ``path`` (the ``.npz``) and ``source``
    (the folder). A name found in several folders is listed once, from the first folder.
    """
    seen: dict[str, dict[str, Any]] = {}
    for folder in _search_path(search_dirs, registry):
        if not folder.is_dir():
            continue
        for meta_path in sorted(folder.glob("*.json")):
            name = meta_path.stem
            weights = meta_path.with_suffix(".npz")
            if name in seen or not weights.is_file():
                continue
            try:
                meta = json.loads(meta_path.read_text())
            except (OSError, ValueError):
                meta = {"error": "unreadable metadata"}
            if not isinstance(meta, dict):
                meta = {"error": "unreadable metadata"}
            seen[name] = {**meta, "name": name, "path": str(weights), "source": str(folder)}
    return list(seen.values())


def _load_entry(weights_path: Path, meta_path: Path) -> tuple[dict[str, np.ndarray], dict]:
    try:
        meta = json.loads(meta_path.read_text())
        if not isinstance(meta, dict):
            raise ValueError("not a JSON object")
    except FileNotFoundError:
        raise RegistryError(
            f"{meta_path}: metadata file missing beside {weights_path.name}; re-export the "
            "backbone") from None
    except (OSError, ValueError) as exc:
        raise BackboneWeightsError(
            f"{meta_path}: corrupt backbone metadata ({exc}); re-export the backbone") from None
    try:
        with np.load(weights_path, allow_pickle=False) as npz:
            weights = {k: npz[k] for k in npz.files}
    except FileNotFoundError:
        raise RegistryError(f"{weights_path}: weights file missing; re-export the backbone"
                            ) from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as exc:
        raise BackboneWeightsError(
            f"{weights_path}: corrupt backbone weights ({type(exc).__name__}); re-export or "
            "re-download the backbone") from None
    if not weights:
        raise BackboneWeightsError(f"{weights_path}: holds no arrays; re-export the backbone")
    meta.setdefault("name", weights_path.stem)
    meta["path"] = str(weights_path)
    return weights, meta


def resolve_backbone(name_or_path: str | Path, search_dirs: Sequence[str | Path] = (),
                     registry: str | Path | None = None
                     ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Weights and metadata of a registered name or of a ``.npz``/``.json`` path.

    Raises
    ------
    RegistryError
        Unknown name (the message lists the known ones) or missing file.
    BackboneWeightsError
        The weights or metadata file exists but cannot be read.
    """
    text = str(name_or_path)
    as_path = Path(text).expanduser()
    if as_path.suffix in (".npz", ".json") or os.sep in text or as_path.is_file():
        if not as_path.is_file():
            raise RegistryError(f"{as_path}: no such backbone file")
        if as_path.suffix not in (".npz", ".json"):
            raise RegistryError(f"{as_path}: not a backbone file; give the .npz written by "
                                "`caesar-mrcnn pretrain` (with its .json beside it) or a "
                                "registered name")
        return _load_entry(as_path.with_suffix(".npz"), as_path.with_suffix(".json"))
    for folder in _search_path(search_dirs, registry):
        meta_path = folder / f"{text}.json"
        if meta_path.is_file():
            return _load_entry(meta_path.with_suffix(".npz"), meta_path)
    known = [b["name"] for b in list_backbones(search_dirs, registry)]
    where = ", ".join(str(p) for p in _search_path(search_dirs, registry))
    raise RegistryError(
        f"backbone {text!r} is not registered (searched {where}); known: "
        f"{', '.join(known) if known else 'none'}; run `caesar-mrcnn pretrain` or give a .npz "
        "path")


def check_export_target(name: str, registry: str | Path | None = None) -> Path:
    """The registry folder an entry ``name`` would be exported to, checked before training.

    Raises
    ------
    RegistryError
        If ``name`` is not a valid entry name or the registry path is not a usable folder.
    """
    if not _NAME_RE.match(name):
        raise RegistryError(f"--name {name!r}: use letters, digits, '_', '.', '-' only")
    folder = Path(registry) if registry is not None else registry_dir()
    existing = next((p for p in (folder, *folder.parents) if p.exists()), None)
    if existing is not None and not existing.is_dir():
        raise RegistryError(f"--registry {folder}: {existing} is a file, not a folder; "
                            "choose another registry folder")
    if existing is not None and not os.access(existing, os.W_OK | os.X_OK):
        raise RegistryError(f"--registry {folder}: {existing} is not writable; choose another "
                            "registry folder")
    return folder


def export_backbone(model, name: str, meta: dict[str, Any],
                    registry: str | Path | None = None) -> Path:
    """Write a backbone's weights and metadata into the registry (atomically).

    Parameters
    ----------
    model : keras.Model
        A backbone from ``build_resnet``.
    name : str
        Entry name (letters, digits, ``_.-``), e.g. ``ssl_byol_r18``.
    meta : dict
        JSON-serialisable metadata (method, arch, in_channels, input_size, preprocessing,
        epochs, data_digest, ...); ``name``, ``created``, ``software_version`` and (unless
        given) ``provenance`` (:func:`ssl_backbones.provenance.collect`, with the command line
        and ``data_digest`` of this run) are added.
    registry : path, optional
        Folder (default :func:`registry_dir`).

    Returns
    -------
    Path
        The ``.npz`` file written.
    """
    from ssl_backbones.resnet import backbone_weights

    folder = check_export_target(name, registry)
    weights_path = folder / f"{name}.npz"
    meta_path = folder / f"{name}.json"
    full = {**meta, "name": name, "weights": weights_path.name,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    full.setdefault("software_version", software_version())
    if "provenance" not in full:
        full["provenance"] = provenance.collect(data_digest=meta.get("data_digest"))
    text = json.dumps(full, indent=2, sort_keys=True)
    with atomic_target(weights_path, error=RegistryError) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **backbone_weights(model))
    with atomic_target(meta_path, error=RegistryError) as tmp:
        tmp.write_text(text + "\n")
    return weights_path


def load_backbone(name_or_path: str | Path, search_dirs: Sequence[str | Path] = (),
                  registry: str | Path | None = None):
    """Build the backbone a registry entry describes and load its weights.

    Returns
    -------
    model : keras.Model
        From ``build_resnet(meta["arch"], meta["in_channels"], meta["small_stem"],
        meta["norm"])``.
    meta : dict
    """
    from ssl_backbones.resnet import build_resnet, load_backbone_weights

    weights, meta = resolve_backbone(name_or_path, search_dirs, registry)
    missing = [k for k in ("arch", "in_channels") if k not in meta]
    if missing:
        raise BackboneWeightsError(
            f"{meta['path']}: metadata lacks {', '.join(missing)}; re-export the backbone")
    model = build_resnet(meta["arch"], int(meta["in_channels"]),
                         bool(meta.get("small_stem", False)), meta.get("norm", "batch"))
    load_backbone_weights(model, weights, strict=True)
    return model, meta


def print_backbones(search_dirs: Sequence[str | Path] = (), registry: str | Path | None = None,
                    stream=None) -> list[dict[str, Any]]:
    """Print a table of :func:`list_backbones` (name, method, arch, channels, epochs, path),
    then each entry's provenance (code version, command line, data digest, software versions;
    ``not recorded`` for entries written before it was kept)."""
    import sys

    stream = stream or sys.stdout
    if registry is not None and Path(registry).exists() and not Path(registry).is_dir():
        raise RegistryError(f"--registry {registry}: is a file, not a folder; give the "
                            "registry folder")
    entries = list_backbones(search_dirs, registry)
    if not entries:
        where = ", ".join(str(p) for p in _search_path(search_dirs, registry))
        print(f"no backbones registered (searched {where}); run `caesar-mrcnn pretrain`",
              file=stream)
        return entries
    cols = ("name", "method", "arch", "in_channels", "epochs", "path")
    rows = [[str(e.get(c, "?")) for c in cols] for e in entries]
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(cols)]
    header = ("name", "method", "arch", "channels", "epochs", "path")
    print("  ".join(h.ljust(w) for h, w in zip(header, widths)).rstrip(), file=stream)
    for r in rows:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip(), file=stream)
    for e in entries:
        print(f"\n{e['name']}:", file=stream)
        for line in provenance.describe(e.get("provenance")):
            print(f"  {line}", file=stream)
    return entries
