"""Start a training run from the weights of an earlier detector (``init``): fine-tuning.

The detector file may be full (``caesar-mrcnn train``) or compact (shipped). Its weights are
copied, all of them, into the freshly built model of the run, so the new run must build the
same layers with the same shapes, and feed them the same input: a detector trained on another
preprocessing would see images it never learned.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from caesar_mrcnn.config import to_dict
from caesar_mrcnn.errors import ConfigError, WeightsError


def read_initial_weights(path: str | Path, preprocess: Any) -> tuple[list, dict[str, Any]]:
    """The weights of the detector file ``path``, checked against the run's preprocessing.

    Called before the run writes anything, so a bad file leaves no output behind.

    Parameters
    ----------
    path : path-like
        Detector file to start from.
    preprocess : PreprocessConfig
        The run's preprocessing; the file's must be the same.

    Returns
    -------
    values : list of numpy.ndarray
        Every weight of the file's model, in the model's order.
    record : dict
        What the run records about its starting point: the file as given, its provenance and
        the training it had (steps, data) where the file says.

    Raises
    ------
    ConfigError
        The file's preprocessing differs from the run's.
    WeightsError
        Missing or corrupt file, or not a detector file.
    """
    from caesar_mrcnn.detection.detector import load_model

    path = Path(path)
    try:
        start, meta = load_model(path)
    except WeightsError as exc:
        raise WeightsError(f"init: {exc}") from None
    if to_dict(meta["preprocess_config"]) != to_dict(preprocess):
        raise ConfigError(f"init: {path} was trained on another preprocessing "
                          f"({to_dict(meta['preprocess_config'])}); train with the same "
                          "preprocess section or start without init")
    record = {"file": str(path), "train": meta.get("train"), "provenance": meta.get("provenance")}
    return [w.numpy() for w in start.weights], record


def assign_initial_weights(model, values: list, path: str | Path) -> None:
    """Copy the values of :func:`read_initial_weights` into the run's ``model``.

    Raises
    ------
    WeightsError
        Weights that do not fit the run's model (nothing is assigned then).
    """
    from caesar_mrcnn.detection.detector_file import assign_weights

    try:
        assign_weights(list(model.weights), values, Path(path))
    except WeightsError as exc:
        raise WeightsError(f"init: {exc}; start from a detector built with the same model "
                           "section") from None
