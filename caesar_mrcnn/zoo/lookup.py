"""Where the shipped models live and how they are found by name.

The package carries a reference detector and the self-supervised backbone it was built on in
``caesar_mrcnn/weights/`` (how they were made: ``docs/models.md``):

* ``ssl_byol_r18.npz`` + ``ssl_byol_r18.json``: a backbone registry entry (see
  :mod:`ssl_backbones.registry`) with float16 weights, so ``--backbone ssl_byol_r18`` works
  without a pretraining run;
* ``reference_r18.npz``: the detector in the compact format of
  :mod:`caesar_mrcnn.detection.compact`, used by ``infer``, ``evaluate`` and ``compare`` when no
  weights are given.

This module only looks things up; it imports no model code, so inference, training and the
packing tools can all depend on it.
"""

from __future__ import annotations

from pathlib import Path

from caesar_mrcnn.errors import WeightsError

DEFAULT_DETECTOR = "reference_r18.npz"


DEFAULT_BACKBONE = "ssl_byol_r18"


def weights_dir() -> Path:
    """The folder of the shipped model files (inside the installed package)."""
    return Path(__file__).resolve().parent.parent / "weights"


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


def file_sizes(folder: str | Path | None = None) -> dict[str, int]:
    """Sizes (bytes) of the model files in ``folder`` (default: the shipped folder)."""
    folder = Path(folder) if folder is not None else weights_dir()
    return {p.name: p.stat().st_size for p in sorted(folder.glob("*"))
            if p.is_file() and p.suffix in (".npz", ".json")}
