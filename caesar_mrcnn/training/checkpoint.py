"""Training checkpoints: every model and optimiser variable plus the step, in one ``.npz``.

The data stream, crops, augmentations and learning-rate schedule are pure functions of the seed
and the step, so weights, optimiser state (including its step counter and any loss scale) and
the step are everything an exact resume needs. Each file also records the run's provenance
(code version, command line, data digest, software versions). Files are written atomically; a
file that cannot be read back completely (truncated, bad CRC, wrong content) raises
:class:`CheckpointError`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from caesar_mrcnn.errors import CheckpointError

FORMAT = "caesar-mrcnn-checkpoint-1"
_NAME = re.compile(r"^ckpt-(\d{8})\.npz$")


def checkpoint_path(folder: str | Path, step: int) -> Path:
    """Path of the checkpoint of ``step`` in ``folder``."""
    return Path(folder) / f"ckpt-{int(step):08d}.npz"


def list_checkpoints(folder: str | Path) -> list[tuple[int, Path]]:
    """``(step, path)`` of every checkpoint in ``folder``, oldest first."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _NAME.match(p.name))]
    return sorted(found)


def save_checkpoint(folder: str | Path, step: int, model_vars: Sequence, optim_vars: Sequence,
                    meta: dict[str, Any] | None = None, keep: int = 3) -> Path:
    """Write the checkpoint of ``step`` and delete all but the ``keep`` most recent.

    Parameters
    ----------
    folder : path-like
        Checkpoint folder (created).
    step : int
        Completed training steps.
    model_vars, optim_vars : sequence of keras.Variable
        All model variables and all optimiser variables, in a fixed order.
    meta : dict, optional
        JSON-serialisable facts stored alongside (configuration, world size, and the run's
        ``provenance``: :func:`ssl_backbones.provenance.collect`; collected here, without the
        data, when ``meta`` has none).
    keep : int
        Number of checkpoints to keep.

    Returns
    -------
    pathlib.Path
    """
    from caesar_mrcnn.io.atomic import atomic_path
    from ssl_backbones.provenance import collect

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    meta = dict(meta or {})
    if "provenance" not in meta:
        meta["provenance"] = collect()
    arrays = {f"model/{i:05d}": np.asarray(v.numpy()) for i, v in enumerate(model_vars)}
    arrays.update({f"optim/{i:05d}": np.asarray(v.numpy()) for i, v in enumerate(optim_vars)})
    info = {"format": FORMAT, "step": int(step), "n_model": len(model_vars),
            "n_optim": len(optim_vars),
            "model_paths": [getattr(v, "path", str(i)) for i, v in enumerate(model_vars)],
            "meta": meta}
    arrays["__info__"] = np.array(json.dumps(info))
    path = checkpoint_path(folder, step)
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **arrays)
    for _, old in list_checkpoints(folder)[:-max(int(keep), 1)]:
        old.unlink(missing_ok=True)
    return path


def read_checkpoint(path: str | Path) -> tuple[dict[str, Any], list[np.ndarray],
                                               list[np.ndarray]]:
    """Read a checkpoint completely (every array, CRC-checked).

    Returns
    -------
    info : dict
        ``step``, ``meta`` and bookkeeping.
    model_arrays, optim_arrays : list of numpy.ndarray

    Raises
    ------
    CheckpointError
        Missing, truncated, corrupt or not a checkpoint of this program.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        with np.load(path, allow_pickle=False) as data:
            info = json.loads(str(data["__info__"]))
            if info.get("format") != FORMAT:
                raise ValueError(f"unknown format {info.get('format')!r}")
            model = [data[f"model/{i:05d}"] for i in range(int(info["n_model"]))]
            optim = [data[f"optim/{i:05d}"] for i in range(int(info["n_optim"]))]
    except CheckpointError:
        raise
    except Exception as exc:  # zipfile, JSON and key errors all mean the same to the user
        raise CheckpointError(f"{path}: corrupt or incomplete checkpoint ({type(exc).__name__}: "
                              f"{exc}); delete it to resume from an earlier one") from None
    return info, model, optim


def _check(path: Path, what: str, variables: Sequence, arrays: Sequence[np.ndarray]) -> None:
    if len(variables) != len(arrays):
        raise CheckpointError(f"{path}: holds {len(arrays)} {what} variables but the run has "
                              f"{len(variables)}; resume with the configuration that wrote it")
    for i, (var, arr) in enumerate(zip(variables, arrays)):
        if tuple(var.shape) != tuple(arr.shape):
            name = getattr(var, "path", str(i))
            raise CheckpointError(f"{path}: {what} variable {name} has shape {tuple(arr.shape)} "
                                  f"in the checkpoint but {tuple(var.shape)} in the run; resume "
                                  "with the configuration that wrote it")


def restore_checkpoint(path: str | Path, model_vars: Sequence, optim_vars: Sequence
                       ) -> dict[str, Any]:
    """Load a checkpoint into the variables of a run built like the one that saved it.

    Returns
    -------
    dict
        The checkpoint's info (``step``, ``meta``).

    Raises
    ------
    CheckpointError
        Corrupt file, or variables that do not match in number or shape.
    """
    path = Path(path)
    info, model, optim = read_checkpoint(path)
    _check(path, "model", model_vars, model)
    _check(path, "optimizer", optim_vars, optim)
    for var, arr in zip([*model_vars, *optim_vars], [*model, *optim]):
        var.assign(arr)
    return info


def latest_checkpoint(folder: str | Path) -> Path | None:
    """Most recent checkpoint in ``folder``, or None."""
    found = list_checkpoints(folder)
    return found[-1][1] if found else None
