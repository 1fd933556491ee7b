"""``caesar-mrcnn evaluate``: score detections of a labelled dataset against its truth.

The detections come from running the detector (``--weights``), or from files an earlier
``caesar-mrcnn infer --json`` wrote (``--detections``): those hold each source's mask pixels and
measured parameters, so a run that already detected need not detect again.

The scoring itself (matching, metrics, COCO AP) lives in :mod:`caesar_mrcnn.evaluation` and
works on plain lists of :class:`~caesar_mrcnn.data.dataset.Annotation`; this module only loads
the data and detections, and writes the report.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from caesar_mrcnn.data.dataset import Annotation, Sample
from caesar_mrcnn.detection.command import image_stem, infer_config
from caesar_mrcnn.errors import ConfigError, DatasetError, WeightsError
from caesar_mrcnn.evaluation.metrics import DEFAULT_SNR_BINS
from caesar_mrcnn.evaluation.scoring import (
    EvaluationResult,
    position_radius,
    score_detections,
)

log = logging.getLogger(__name__)


def parse_snr_bins(text: str | Sequence[float] | None, option: str = "--snr-bins"
                   ) -> tuple[float, ...]:
    """SNR bin edges from ``"3,5,7,10"`` (or a sequence); at least two, strictly increasing.

    Raises
    ------
    ConfigError
        If the edges are not numbers, fewer than two, or not increasing.
    """
    if text is None:
        return DEFAULT_SNR_BINS
    parts = text.split(",") if isinstance(text, str) else list(text)
    try:
        edges = tuple(float(p) for p in parts)
    except (TypeError, ValueError):
        raise ConfigError(f"{option}: {text!r} is not a comma-separated list of numbers, "
                          "e.g. 3,5,10,100") from None
    if len(edges) < 2 or any(not math.isfinite(e) for e in edges) or any(
            b <= a for a, b in zip(edges, edges[1:])):
        raise ConfigError(f"{option}: need at least two finite, strictly increasing edges, "
                          f"got {text!r}")
    return edges


def check_iou(iou: float, option: str = "--iou") -> float:
    """Validate an IoU threshold in (0, 1]; raises ConfigError otherwise."""
    if not (0.0 < float(iou) <= 1.0):
        raise ConfigError(f"{option}: IoU threshold must be in (0, 1], got {iou}")
    return float(iou)


def _read_labelled(path: Path) -> list[Sample]:
    from caesar_mrcnn.data.readers import load_dataset

    return list(load_dataset(path))


def load_truth(data: str | Path) -> list[Sample]:
    """Labelled samples of a dataset file or simulated-field folder.

    Raises
    ------
    DatasetError
        If the path does not exist or holds no image.
    """
    path = Path(data)
    if not path.exists():
        raise DatasetError(f"--data {path}: no such file or folder; give a dataset (COCO JSON, "
                           "caesar JSON list) or a simulated-field folder")
    samples = _read_labelled(path)
    if not samples:
        raise DatasetError(f"--data {path}: the dataset holds no image")
    return samples


def _column(table, *names: str) -> np.ndarray:
    for name in names:
        if name in table.colnames:
            return np.asarray(table[name], dtype=float)
    return np.full(len(table), np.nan)


def detections_from_result(result) -> list[Annotation]:
    """Detections of an :class:`~caesar_mrcnn.detection.infer.InferResult` with their measured
    parameters
    copied into ``attrs`` (``snr``, ``flux_jy`` (Jy), ``peak_jyb`` (Jy/beam), ``x``, ``y``
    (pixels), ``ra``, ``dec`` (deg))."""
    table = result.table
    cols = {"snr": _column(table, "snr"), "flux_jy": _column(table, "int_flux", "flux"),
            "peak_jyb": _column(table, "peak_flux", "peak"), "x": _column(table, "x_w", "x"),
            "y": _column(table, "y_w", "y"), "ra": _column(table, "ra"),
            "dec": _column(table, "dec")}
    out = []
    for i, ann in enumerate(result.objects):
        attrs = {**ann.attrs, **{k: float(v[i]) for k, v in cols.items()}}
        out.append(Annotation(ann.category, ann.bbox, ann.mask, attrs))
    return out


# attrs of a detection <- its keys in the JSON catalogue (``catalog_json``), first one present
_JSON_ATTRS = {"snr": ("snr",), "flux_jy": ("flux", "int_flux"), "peak_jyb": ("peak_flux",),
               "x": ("X0w", "X0"), "y": ("Y0w", "Y0"), "ra": ("X0w_wcs",),
               "dec": ("Y0w_wcs",)}


def _json_number(src: dict, keys: Sequence[str]) -> float:
    for key in keys:
        value = src.get(key)
        if value is not None:
            return float(value)
    return float("nan")


def read_detections(path: str | Path) -> tuple[list[Annotation], dict]:
    """Detections of a JSON catalogue written by ``caesar-mrcnn infer --json``.

    Returns
    -------
    detections : list of Annotation
        Masks from each source's ``pixels``; ``attrs`` as :func:`detections_from_result`
        gives them (``score``, ``snr``, ``flux_jy`` (Jy), ``peak_jyb`` (Jy/beam), ``x``, ``y``
        (pixels), ``ra``, ``dec`` (deg), ``name``).
    meta : dict
        The run metadata (``IMAGE``, thresholds, weights ...).

    Raises
    ------
    DatasetError
        If the file is unreadable, not such a catalogue, or a source has no mask pixels.
    """
    import json

    from caesar_mrcnn.classes import CLASS_NAMES

    path = Path(path)
    try:
        doc = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or "not a JSON file"
        raise DatasetError(f"--detections {path}: cannot read ({reason}); give the JSON "
                           "written by caesar-mrcnn infer --json") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("sources"), list):
        raise DatasetError(f"--detections {path}: not a caesar-mrcnn catalogue (no 'sources' "
                           "list); give the JSON written by caesar-mrcnn infer --json")
    out = []
    for i, src in enumerate(doc["sources"]):
        pixels = np.asarray(src.get("pixels") or [], dtype=np.int64).reshape(-1, 2)
        if not len(pixels) or src.get("class_name") not in CLASS_NAMES:
            raise DatasetError(f"--detections {path}: source {i} has no mask pixels or an "
                               "unknown class; write the file with caesar-mrcnn infer --json")
        (y0, x0), (y1, x1) = pixels.min(axis=0), pixels.max(axis=0) + 1
        mask = np.zeros((y1 - y0, x1 - x0), dtype=bool)
        mask[pixels[:, 0] - y0, pixels[:, 1] - x0] = True
        attrs = {k: _json_number(src, keys) for k, keys in _JSON_ATTRS.items()}
        attrs["score"] = _json_number(src, ("score",))
        attrs["name"] = str(src.get("name", ""))
        out.append(Annotation(src["class_name"], (y0, x0, y1, x1), mask, attrs))
    return out, dict(doc.get("meta") or {})


def detections_for(samples: Sequence[Sample], detections: str | Path) -> list[list[Annotation]]:
    """Per sample, the detections an earlier ``infer --json`` wrote.

    ``detections`` is one JSON file (a dataset of one image), or a folder holding
    ``<image stem>.json`` per image, as ``infer ... --out-dir DIR --write json`` names them.

    Raises
    ------
    DatasetError
        If a file is missing, or holds the detections of another image.
    """
    path = Path(detections)
    if path.is_dir():
        files = [path / f"{image_stem(s.image_path)}.json" for s in samples]
    elif path.is_file():
        if len(samples) != 1:
            raise DatasetError(f"--detections {path}: one file holds one image's detections "
                               f"and the dataset has {len(samples)}; give a folder with "
                               "<image stem>.json per image")
        files = [path]
    else:
        raise DatasetError(f"--detections {path}: no such file or folder; write it with "
                           "caesar-mrcnn infer --json")
    out = []
    for sample, file in zip(samples, files):
        if not file.is_file():
            raise DatasetError(f"--detections {path}: no {file.name} for image "
                               f"{sample.image_path}; run caesar-mrcnn infer --json on it")
        dets, meta = read_detections(file)
        image = meta.get("IMAGE")
        if image and image != Path(sample.image_path).name:
            raise DatasetError(f"--detections {file}: holds the detections of {image}, not of "
                               f"{Path(sample.image_path).name}")
        out.append(dets)
    return out


def detect(samples: Sequence[Sample], weights: str | Path | None = None, config=None,
           predictor_factory=None) -> list[list[Annotation]]:
    """Run the detector on every sample's image; detections as Annotations.

    Parameters
    ----------
    samples : sequence of Sample
        Images to run on.
    weights : path-like, optional
        Trained detector weights; the shipped reference detector when None and no
        ``predictor_factory`` is given.
    config : caesar_mrcnn.detection.infer.InferConfig, optional
        Inference options.
    predictor_factory : callable, optional
        ``factory(sample) -> predictor`` used instead of the trained model (e.g.
        :class:`caesar_mrcnn.detection.detector.TruthPredictor` for an upper bound).

    Raises
    ------
    WeightsError
        If no predictor factory is given and ``weights`` does not exist.
    """
    from caesar_mrcnn.detection import infer
    from caesar_mrcnn.detection.detector import load_detector

    # loaded once for every image
    detector = load_detector(weights) if predictor_factory is None else None
    out = []
    for sample in samples:
        predictor = predictor_factory(sample) if predictor_factory else None
        result = infer.infer_image(sample.image_path, detector=detector, predictor=predictor,
                                   config=config)
        out.append(detections_from_result(result))
    return out


def evaluate(data: str | Path, weights: str | Path | None, out: str | Path, iou: float = 0.5,
             snr_bins: str | Sequence[float] | None = None, config: str | Path | None = None,
             overrides: Sequence[str] = (), confidence: float = 0.95,
             detections: str | Path | None = None, match: str = "iou") -> EvaluationResult:
    """Detect sources in a labelled dataset (or read earlier detections), score them, and write
    a report folder.

    Parameters
    ----------
    data : path-like
        Dataset (COCO JSON, caesar JSON list) or simulated-field folder.
    weights : path-like or None
        Trained detector weights; None for the shipped reference detector.
    out : path-like
        Report folder (created): report.json, CSV tables, PNG plots.
    iou : float
        Mask IoU threshold of a match.
    snr_bins : str or sequence of float, optional
        SNR bin edges (default :data:`DEFAULT_SNR_BINS`).
    config, overrides :
        Detector configuration passed to inference.
    confidence : float
        Confidence level of the Wilson intervals.
    detections : path-like, optional
        JSON catalogue(s) written by ``caesar-mrcnn infer --json`` (see
        :func:`detections_for`); scored as they are, without running the detector.
    match : {"iou", "position"}
        Match by mask IoU, or by position
        (:func:`caesar_mrcnn.evaluation.scoring.position_radius`).

    Returns
    -------
    EvaluationResult
    """
    from caesar_mrcnn.evaluation.report import check_output_folder

    iou = check_iou(iou)
    if match not in ("iou", "position"):
        raise ConfigError(f"--match {match}: unknown rule; use iou or position")
    bins = parse_snr_bins(snr_bins)
    check_output_folder(out)
    if detections is not None:
        if weights is not None or config is not None or overrides:
            raise ConfigError("--detections: scores detections already made; drop --weights, "
                              "--config and --set, which only apply when detecting")
        samples = _checked_for(load_truth(data), match, data)
        found = detections_for(samples, detections)
        return _score_and_write(samples, found, iou, bins, confidence, out, match)
    cfg = infer_config(config, overrides)
    if weights is None:
        from caesar_mrcnn.zoo.lookup import shipped_detector

        weights = shipped_detector()
    if not Path(weights).exists():
        raise WeightsError(f"--weights {weights}: no such file; train a model first "
                           "(caesar-mrcnn train) or give the path of its weights")
    samples = _checked_for(load_truth(data), match, data)
    return _score_and_write(samples, detect(samples, weights, cfg), iou, bins, confidence, out,
                            match)


def _checked_for(samples: list[Sample], match: str, data: str | Path) -> list[Sample]:
    """``samples``, refused before any detection when ``match`` needs what they lack."""
    if match == "position":
        for s in samples:
            try:
                position_radius(s.annotations, s.meta)
            except ValueError:
                raise ConfigError(f"--match position: {data}: image {s.image_path.name} has no "
                                  "beam (bmaj) or pixel size (dx) in its labels; use --match "
                                  "iou") from None
    return samples


def _score_and_write(samples: Sequence[Sample], detections: list[list[Annotation]], iou: float,
                     bins: tuple[float, ...], confidence: float,
                     out: str | Path, match: str = "iou") -> EvaluationResult:
    from caesar_mrcnn.evaluation.report import write_report

    result = score_detections(samples, detections, iou, bins, confidence, match=match)
    write_report(result, out)
    s = result.summary
    log.info("completeness %.3f, reliability %.3f, mask AP %.3f; report in %s",
             s["completeness"]["value"], s["reliability"]["value"], s["coco"]["segm"]["AP"], out)
    return result
