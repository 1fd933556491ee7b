"""Whole-image inference: tiles, merge, measurement and outputs, with a perfect detector built
from a simulated field's ground truth, then through the CLI with a real (untrained) Mask R-CNN.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.table import Table

from caesar_mrcnn.classes import CLASS_NAMES
from caesar_mrcnn.cli import main
from caesar_mrcnn.detection.detector import TruthPredictor
from caesar_mrcnn.detection.infer import InferConfig, detect_tiles, infer_image
from caesar_mrcnn.detection.merge import merge_detections
from caesar_mrcnn.detection.tiling import tile_grid
from caesar_mrcnn.errors import AllNaNError, OutputError, WeightsError
from caesar_mrcnn.io.fits import open_image, write_image
from caesar_mrcnn.io.regions import read_regions

TILE, OVERLAP = 64, 16


@pytest.fixture(scope="module")
def field(tmp_path_factory):
    """A simulated 150 x 200 field with a blanked border, written as a 4-axis FITS cube."""
    from caesar_mrcnn.config import load_config
    from caesar_mrcnn.sim.config import SimConfig
    from caesar_mrcnn.sim.field import simulate_field
    from caesar_mrcnn.sim.writer import write_field_fits

    cfg = load_config(SimConfig, None, ["field.nx=200", "field.ny=150", "compact.n=12",
                                        "extended.n=3", "extended.n_multisland=1",
                                        "spurious.n=1", "field.four_axes=true"])
    sim = simulate_field(cfg, np.random.default_rng(11), keep_model=True)
    path = tmp_path_factory.mktemp("field") / "field.fits"
    write_field_fits(sim, path)
    return sim, path


def _truth_in_image(sim):
    """Ground-truth objects restricted to finite pixels (what any detector can see)."""
    out = []
    finite = np.isfinite(sim.image)
    for ann in sim.annotations:
        y0, x0, y1, x1 = ann.bbox
        mask = ann.mask & finite[y0:y1, x0:x1]
        if mask.any():
            out.append((ann.category, ann.full_mask(sim.shape) & finite))
    return out


def test_perfect_detector_recovers_every_object(field, tmp_path):
    sim, path = field
    # every true object, also those under 5 sigma and artefacts sharing pixels with their hosts
    cfg = InferConfig(tile=TILE, overlap=OVERLAP, batch_size=3, bkg_box=32, min_snr=0.0,
                      dedup_overlap=1.0)
    result = infer_image(path, predictor=TruthPredictor(sim.annotations, TILE), config=cfg,
                         regions=tmp_path / "out.reg", catalog=tmp_path / "out.fits",
                         json_path=tmp_path / "out.json", plot=tmp_path / "out.png")
    truth = _truth_in_image(sim)
    assert len(result.objects) == len(truth)
    found = {(o.category, o.full_mask(sim.shape).tobytes()) for o in result.objects}
    assert found == {(c, m.tobytes()) for c, m in truth}
    # at least one source crossed a tile border and was united from several tiles
    assert any(o.attrs["merged"] for o in result.objects)
    table = Table.read(tmp_path / "out.fits")
    assert len(table) == len(truth) and table.meta["TILE"] == TILE
    # compact sources: flux-weighted positions within a fraction of the beam of the truth
    truth_compact = [a for a in sim.annotations if a.category == "compact"]
    true_pos = SkyCoord([a.attrs["ra"] for a in truth_compact],
                        [a.attrs["dec"] for a in truth_compact], unit="deg")
    got = table[table["class"] == "compact"]
    sep = SkyCoord(got["ra"], got["dec"], unit="deg").match_to_catalog_sky(true_pos)[1]
    assert np.median(sep.arcsec) < 0.3 * sim.meta["bmaj"]
    regs = read_regions(tmp_path / "out.reg")
    assert {r.meta["text"] for r in regs} == set(table["name"])
    doc = json.loads((tmp_path / "out.json").read_text())
    assert len(doc["sources"]) == len(truth)
    assert (tmp_path / "out.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_split_over_ranks_merges_to_the_same_objects(field):
    """Tiles split in two contiguous shards (as two ranks take them) merge identically."""
    sim, path = field
    cfg = InferConfig(tile=TILE, overlap=OVERLAP, batch_size=2)
    predict = TruthPredictor(sim.annotations, TILE)
    with open_image(path) as img:
        tiles = tile_grid(img.shape, TILE, OVERLAP)
        whole, n_all = detect_tiles(img, img.shape, tiles, predict, np.nan_to_num, cfg)
        half = len(tiles) // 2
        a, na = detect_tiles(img, img.shape, tiles[:half], predict, np.nan_to_num, cfg)
        b, nb = detect_tiles(img, img.shape, tiles[half:], predict, np.nan_to_num, cfg)
    assert na + nb == n_all
    one = merge_detections(whole, tiles)
    two = merge_detections(b + a, tiles)
    assert [(o.bbox, o.category, o.mask.tobytes()) for o in one] == \
        [(o.bbox, o.category, o.mask.tobytes()) for o in two]


def test_min_snr_keeps_only_significant_entries(field, tmp_path):
    sim, path = field
    cfg = InferConfig(tile=TILE, overlap=OVERLAP, bkg_box=32, min_snr=0.0, dedup_overlap=1.0)
    every = infer_image(path, predictor=TruthPredictor(sim.annotations, TILE), config=cfg,
                        catalog=tmp_path / "all.fits")
    cut = dataclasses.replace(cfg, min_snr=8.0)
    kept = infer_image(path, predictor=TruthPredictor(sim.annotations, TILE), config=cut,
                       catalog=tmp_path / "cut.fits")
    # the seed significance (brightest pixel), as a classical finder's threshold
    snr = np.asarray(every.table["snr_pix"])
    assert 0 < len(kept.table) == int((snr >= 8.0).sum()) < len(every.table)
    assert (np.asarray(kept.table["snr_pix"]) >= 8.0).all()
    # a fitted peak is an estimate of the source's peak, the brightest pixel its seed
    fitted = np.asarray(every.table["fitted"], bool)
    assert np.isfinite(every.table["snr_pix"]).all() and fitted.any()
    assert len(kept.objects) == len(kept.table)
    assert Table.read(tmp_path / "cut.fits").meta["MINSNR"] == 8.0


def test_no_detections_give_valid_empty_outputs(field, tmp_path):
    sim, path = field
    outs = {"regions": tmp_path / "e.reg", "catalog": tmp_path / "e.vot",
            "json_path": tmp_path / "e.json", "plot": tmp_path / "e.png"}
    # islands off: the field's bright sources would otherwise be entries of their own
    # (tests/detection/test_islands.py)
    result = infer_image(path, predictor=TruthPredictor([], TILE),
                         config=InferConfig(tile=TILE, overlap=OVERLAP, islands=False), **outs)
    assert result.objects == [] and len(result.table) == 0
    assert len(read_regions(outs["regions"])) == 0
    assert len(Table.read(outs["catalog"])) == 0
    assert json.loads(outs["json_path"].read_text())["sources"] == []
    assert outs["plot"].stat().st_size > 0


def test_all_nan_tiles_skipped_and_all_nan_image_rejected(tmp_path):
    data = np.full((100, 130), np.nan, np.float32)
    data[70:, 90:] = 1.0
    path = tmp_path / "partial.fits"
    write_image(path, data)
    calls = []

    def predict(batch, windows):
        calls.append(windows.copy())
        n = len(windows)
        return {"scores": np.zeros((n, 1)), "classes": np.zeros((n, 1), int),
                "masks": np.zeros((n, 1, TILE, TILE)), "valid": np.zeros((n, 1), bool)}

    res = infer_image(path, predictor=predict, config=InferConfig(tile=TILE, overlap=OVERLAP))
    seen = np.concatenate(calls)
    # only the tiles touching the finite corner went through the model
    assert res.ntiles == len(seen) < len(tile_grid(data.shape, TILE, OVERLAP))
    assert np.all((seen[:, 2] > 70) & (seen[:, 3] > 90))
    write_image(tmp_path / "nan.fits", np.full((40, 40), np.nan, np.float32))
    with pytest.raises(AllNaNError):
        infer_image(tmp_path / "nan.fits", predictor=predict,
                    regions=tmp_path / "nan.reg", config=InferConfig(tile=TILE, overlap=8))
    assert not (tmp_path / "nan.reg").exists()


def test_bad_outputs_fail_before_work(field, tmp_path):
    _, path = field
    with pytest.raises(OutputError, match="unknown catalogue extension"):
        infer_image(path, predictor=TruthPredictor([], TILE), catalog=tmp_path / "c.txt")
    with pytest.raises(OutputError, match="does not exist"):
        infer_image(path, predictor=TruthPredictor([], TILE), regions=tmp_path / "no" / "r.reg")
    with pytest.raises(WeightsError):
        infer_image(path, weights=tmp_path / "missing.npz", regions=tmp_path / "r.reg")
    assert list(tmp_path.iterdir()) == []


# --- command line ---------------------------------------------------------------------------


def _run(argv, capsys):
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def tiny_detector(tmp_path_factory):
    """A real Mask R-CNN (ResNet18, 64 px input, narrow heads), untrained, saved to a file."""
    pytest.importorskip("tensorflow")
    from caesar_mrcnn.data.preprocess import PreprocessConfig
    from caesar_mrcnn.detection.detector_file import save_detector
    from caesar_mrcnn.modeling.config import ModelConfig
    from caesar_mrcnn.modeling.maskrcnn import MaskRCNN

    cfg = ModelConfig(image_size=TILE, in_channels=3, fpn_channels=16, rpn_head_channels=16,
                      box_head_dims=(32, 32), mask_head_convs=1, mask_head_channels=16,
                      mask_roi_size=7, mask_size=14, detections_per_image=10,
                      rpn_pre_nms_topk_infer=64, rpn_post_nms_topk_infer=32,
                      score_threshold=0.0)
    model = MaskRCNN(cfg)
    model(model.dummy_images(1))
    return save_detector(model, PreprocessConfig(), tmp_path_factory.mktemp("det") / "det.npz")


@pytest.mark.parametrize("kind", ["not_fits", "all_nan", "missing_weights", "corrupt_weights",
                                  "bad_catalog"])
def test_cli_bad_inputs_leave_no_output(tiny_detector, tmp_path, capsys, kind):
    image = tmp_path / "img.fits"
    if kind == "not_fits":
        image.write_text("this is not a FITS file\n" * 200)
    elif kind == "all_nan":
        write_image(image, np.full((32, 32), np.nan, np.float32))
    else:
        write_image(image, np.ones((32, 32), np.float32))
    weights = tiny_detector
    if kind == "missing_weights":
        weights = tmp_path / "none.npz"
    elif kind == "corrupt_weights":
        weights = tmp_path / "half.npz"
        weights.write_bytes(tiny_detector.read_bytes()[:100000])
    out = tmp_path / "out"
    out.mkdir()
    catalog = out / ("cat.txt" if kind == "bad_catalog" else "cat.fits")
    code, stdout, err = _run(["infer", str(image), "--regions", str(out / "r.reg"),
                              "--catalog", str(catalog), "--weights", str(weights)], capsys)
    assert code != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("caesar-mrcnn: error:")
    expected = {"not_fits": "not a FITS file", "all_nan": "NaN",
                "missing_weights": "weights not found", "corrupt_weights": "corrupt",
                "bad_catalog": "catalogue extension"}
    assert expected[kind] in lines[0]
    assert list(out.iterdir()) == []


def test_cli_end_to_end_with_real_maskrcnn(tiny_detector, tmp_path, capsys):
    rng = np.random.default_rng(2)
    data = rng.normal(0, 1e-4, (96, 112)).astype(np.float32)
    yy, xx = np.mgrid[:96, :112]
    data += 5e-3 * np.exp(-((xx - 50) ** 2 + (yy - 40) ** 2) / 8.0).astype(np.float32)
    hdr = fits.Header({"CTYPE1": "RA---SIN", "CTYPE2": "DEC--SIN", "CRVAL1": 150.0,
                       "CRVAL2": -30.0, "CRPIX1": 56.0, "CRPIX2": 48.0, "CDELT1": -2 / 3600,
                       "CDELT2": 2 / 3600, "RADESYS": "ICRS", "BMAJ": 6 / 3600,
                       "BMIN": 6 / 3600, "BPA": 0.0, "BUNIT": "JY/BEAM"})
    image = tmp_path / "img.fits"
    write_image(image, data, hdr)
    out = {k: tmp_path / f"out.{k}" for k in ("reg", "ecsv", "json", "png")}
    # an untrained detector scores near the class prior: a low threshold keeps detections
    code, stdout, err = _run(["infer", str(image), "--regions", str(out["reg"]),
                              "--catalog", str(out["ecsv"]), "--json", str(out["json"]),
                              "--plot", str(out["png"]), "--weights", str(tiny_detector),
                              "--score-thr", "0.01", "--overlap", "16", "--batch-size", "3"],
                             capsys)
    assert code == 0, err
    assert "sources" in stdout
    table = Table.read(out["ecsv"])
    regs = read_regions(out["reg"])
    assert table.meta["WEIGHTS"] == tiny_detector.name and table.meta["TILE"] == TILE
    assert len(table) > 0 and len(regs) >= len(table)
    assert set(table["class"]) <= {"spurious", "compact", "extended", "extended-multisland",
                                   "flagged"}
    assert np.all((table["x"] >= 0) & (table["x"] < 112) & (table["y"] >= 0)
                  & (table["y"] < 96))
    assert len(json.loads(out["json"].read_text())["sources"]) == len(table)
    # detection by objectness: the class probabilities of a network entry sum to its score
    # (merged across tiles too), its class is the most probable one, and both catalogue and
    # JSON carry them; an entry of the island floor has no network judgement (NaN)
    probs = np.column_stack([table[f"p_{c.replace('-', '_')}"] for c in CLASS_NAMES])
    net = ~np.asarray(table["flag_island"], bool)
    assert net.any()
    np.testing.assert_allclose(probs[net].sum(axis=1), table["score"][net], rtol=1e-4,
                               atol=1e-6)
    assert [CLASS_NAMES[k] for k in probs[net].argmax(axis=1)] == list(table["class"][net])
    assert np.isnan(probs[~net]).all() and np.isnan(table["score"][~net]).all()
    src = json.loads(out["json"].read_text())["sources"][0]
    assert {f"p_{c.replace('-', '_')}" for c in CLASS_NAMES} <= set(src)


def test_cli_one_output_of_any_kind_is_enough(tiny_detector, tmp_path, capsys):
    data = np.random.default_rng(4).normal(0, 1e-4, (64, 64)).astype(np.float32)
    image = tmp_path / "img.fits"
    write_image(image, data)
    code, _, err = _run(["infer", str(image), "--catalog", str(tmp_path / "only.fits"),
                         "--weights", str(tiny_detector)], capsys)
    assert code == 0, err
    assert (tmp_path / "only.fits").exists() and not list(tmp_path.glob("*.reg"))
    code, _, err = _run(["infer", str(image), "--weights", str(tiny_detector)], capsys)
    assert code != 0 and "no output requested" in err and "--catalog" in err
