"""evaluate --detections: scoring what ``infer --json`` wrote equals scoring the run itself."""

from __future__ import annotations

import json

import pytest

from caesar_mrcnn.detection.detector import TruthPredictor
from caesar_mrcnn.detection.infer import infer_image
from caesar_mrcnn.errors import ConfigError, DatasetError
from caesar_mrcnn.evaluation.evaluate import (
    detect,
    detections_for,
    evaluate,
    infer_config,
    load_truth,
    read_detections,
)
from caesar_mrcnn.evaluation.scoring import score_detections


def test_scores_from_the_json_equal_scores_from_the_run(tiny, tmp_path):
    samples = load_truth(tiny)
    cfg = infer_config(None, ["tile=128", "overlap=16", "min_snr=0"])
    predictor = TruthPredictor(samples[0].annotations, cfg.tile)
    written = tmp_path / "dets"
    written.mkdir()
    json_path = written / f"{samples[0].image_path.stem}.json"
    infer_image(samples[0].image_path, predictor=predictor, config=cfg, json_path=json_path)
    direct = detect(samples, None, cfg, lambda s: TruthPredictor(s.annotations, cfg.tile))

    dets, meta = read_detections(json_path)
    assert meta["IMAGE"] == samples[0].image_path.name
    assert [d.bbox for d in dets] == [d.bbox for d in direct[0]]
    assert all((a.mask == b.mask).all() for a, b in zip(dets, direct[0]))
    for key in ("snr", "flux_jy", "x", "y", "ra", "dec", "score"):
        assert [d.attrs[key] for d in dets] == pytest.approx([d.attrs[key] for d in direct[0]],
                                                             nan_ok=True)
    assert detections_for(samples, written)[0][0].bbox == dets[0].bbox  # folder form

    result = evaluate(tiny, None, tmp_path / "rep", detections=json_path)
    expected = score_detections(samples, direct).summary
    assert result.summary["counts"] == expected["counts"]
    for key in ("completeness", "reliability"):
        assert result.summary[key]["value"] == expected[key]["value"]
    report = json.loads((tmp_path / "rep" / "report.json").read_text())
    assert report["counts"]["matched"] == expected["counts"]["matched"] > 0


def test_detections_of_another_image_or_with_weights_are_refused(tiny, tmp_path):
    samples = load_truth(tiny)
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"sources": [], "meta": {"IMAGE": "elsewhere.fits"}}))
    with pytest.raises(DatasetError, match="elsewhere.fits"):
        detections_for(samples, other)
    with pytest.raises(ConfigError, match="--detections"):
        evaluate(tiny, tmp_path / "w.npz", tmp_path / "rep", detections=other)
    assert not (tmp_path / "rep").exists()
