"""caesar-mrcnn evaluate: data loading, detector wiring and CLI errors, on a tiny simulated set."""

import json

import pytest

from caesar_mrcnn.cli import main
from caesar_mrcnn.detection.detector import TruthPredictor
from caesar_mrcnn.errors import ConfigError, DatasetError
from caesar_mrcnn.evaluation.evaluate import (
    check_iou,
    detect,
    infer_config,
    load_truth,
    parse_snr_bins,
)
from caesar_mrcnn.evaluation.report import write_report
from caesar_mrcnn.evaluation.scoring import score_detections


def test_parse_options():
    assert parse_snr_bins("3,5,10") == (3.0, 5.0, 10.0)
    for bad in ("3", "5,3", "a,b", "3,,5"):
        with pytest.raises(ConfigError, match="--snr-bins"):
            parse_snr_bins(bad)
    with pytest.raises(ConfigError, match="--iou"):
        check_iou(1.5)


def test_position_matching_needs_the_beam(tmp_path):
    from caesar_mrcnn.data.dataset import Sample
    from caesar_mrcnn.evaluation.evaluate import _checked_for

    with_beam = Sample(tmp_path / "a.fits", (8, 8), [], {"dx": 2.0, "bmaj": 6.0})
    assert _checked_for([with_beam], "position", "d") == [with_beam]
    without = Sample(tmp_path / "b.fits", (8, 8), [], {"dx": 2.0})
    with pytest.raises(ConfigError, match="--match position: d: image b.fits has no beam"):
        _checked_for([with_beam, without], "position", "d")
    assert _checked_for([without], "iou", "d") == [without]


def test_perfect_detector_scores_one(tiny, tmp_path):
    samples = load_truth(tiny)
    assert samples and samples[0].annotations
    # one tile, every true object (also under 5 sigma, and artefacts on their hosts):
    # detections == truth
    cfg = infer_config(None, ["tile=128", "overlap=16", "min_snr=0", "dedup_overlap=1"])
    dets = detect(samples, None, cfg, lambda s: TruthPredictor(s.annotations, cfg.tile))
    assert all("snr" in d.attrs and "flux_jy" in d.attrs for d in dets[0])
    res = score_detections(samples, dets)
    s = res.summary
    assert s["completeness"]["value"] == 1.0 and s["reliability"]["value"] == 1.0
    assert s["coco"]["segm"]["AP"] == pytest.approx(1.0)
    assert s["coco"]["bbox"]["AP"] == pytest.approx(1.0)
    assert s["classification_accuracy"] == 1.0
    # by position too: each measured entry lies on its source (the spurious sidelobe pattern
    # matched after the sources, to its own entry)
    pos = score_detections(samples, dets, match="position").summary
    assert pos["completeness"]["value"] == 1.0 and pos["reliability"]["value"] == 1.0
    write_report(res, tmp_path / "rep")
    assert json.loads((tmp_path / "rep" / "report.json").read_text())["counts"]["matched"] == \
        len(samples[0].annotations)


def test_cli_errors_leave_no_output(tiny, tmp_path, capsys):
    out = tmp_path / "rep"
    rc = main(["evaluate", "--data", str(tiny), "--weights", str(tmp_path / "none.keras"),
               "--out", str(out)])
    assert rc != 0 and not out.exists()
    assert "--weights" in capsys.readouterr().err
    rc = main(["evaluate", "--data", str(tmp_path / "missing"), "--weights", str(tiny),
               "--out", str(out)])
    assert rc != 0 and not out.exists()
    rc = main(["evaluate", "--data", str(tiny), "--weights", str(tiny), "--out", str(out),
               "--snr-bins", "10,5"])
    assert rc != 0 and not out.exists()
    assert "--snr-bins" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["evaluate", "--data", str(tiny), "--out", str(out), "--match", "nearest"])
    assert not out.exists() and "--match" in capsys.readouterr().err
    rc = main(["compare", "--data", str(tiny), "--out", str(out), "--finders", "sextractor"])
    assert rc != 0 and not out.exists()
    with pytest.raises(DatasetError):
        load_truth(tmp_path)  # a folder that is no dataset
