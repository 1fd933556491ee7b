"""Signal-first tiling: the map of cells that hold signal, the tiles it keeps, and the same
catalogue with and without skipping the tiles of pure noise (simulated and real images)."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from caesar_mrcnn.detection.detector import TruthPredictor
from caesar_mrcnn.detection.infer import InferConfig, infer_image
from caesar_mrcnn.detection.signal_tiles import (
    _strip_maps,
    select_tiles,
    signal_map,
    tiles_with_signal,
)
from caesar_mrcnn.detection.tiling import tile_grid
from caesar_mrcnn.io.fits import write_image
from caesar_mrcnn.measure.background import background_grid

REAL = Path(os.environ.get("CAESAR_REAL_DATA",
                           Path(__file__).resolve().parents[2] / ".." / "shared" / "real"))
ATCA = REAL / "fields" / "atca_scorpio_FaintSNRField.fits"


def _noise_with_sources(shape=(300, 400), seed=3):
    """Unit-rms white noise with one bright source, one 3-sigma plateau touching it, and a
    blank corner."""
    rng = np.random.default_rng(seed)
    img = rng.normal(0.0, 1.0, shape).astype(np.float32)
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    img += 40.0 * np.exp(-((yy - 60) ** 2 + (xx - 80) ** 2) / (2 * 2.0 ** 2))
    img[58:63, 86:140] += 4.0  # faint emission reaching out from the source
    img[250:, 350:] = np.nan
    return img


def test_strip_maps_match_the_background_grid():
    img = _noise_with_sources()
    bg = background_grid(img, img.shape, box=32)
    bkg, rms = _strip_maps(bg, 37, 151, img.shape[1])
    ref_bkg, ref_rms = bg.window(37, 151, 0, img.shape[1])
    np.testing.assert_allclose(bkg, ref_bkg, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(rms, ref_rms, rtol=1e-5)


def test_map_marks_islands_with_a_seed_and_their_faint_parts():
    img = _noise_with_sources()
    bg = background_grid(img, img.shape, box=32)
    smap = signal_map(img, img.shape, bg, min_snr=5.0, margin=0, cell=4)
    assert smap.touches(56, 76, 64, 84)  # the source
    assert smap.touches(58, 120, 63, 140)  # the 4-sigma plateau it holds up
    assert not smap.touches(150, 200, 240, 330)  # noise
    assert not smap.touches(250, 350, 300, 400)  # blank
    assert smap.fraction < 0.05
    grown = signal_map(img, img.shape, bg, min_snr=5.0, margin=20, cell=4)
    assert grown.touches(80, 60, 84, 64) and not smap.touches(80, 60, 84, 64)
    assert grown.cells[smap.cells].all()


def test_map_does_not_depend_on_the_strips():
    img = _noise_with_sources()
    bg = background_grid(img, img.shape, box=32)
    one = signal_map(img, img.shape, bg, 5.0, margin=6, cell=8, strip_pixels=img.size)
    many = signal_map(img, img.shape, bg, 5.0, margin=6, cell=8, strip_pixels=1000)
    np.testing.assert_array_equal(one.cells, many.cells)


def test_pixels_without_a_usable_rms_count_as_signal():
    img = np.zeros((64, 64), np.float32)  # constant: rms 0, nothing can be judged
    bg = background_grid(img, img.shape, box=32)
    smap = signal_map(img, img.shape, bg, 5.0, margin=0)
    assert smap.cells.all()


def test_tiles_touching_signal_are_kept_in_grid_order():
    img = _noise_with_sources()
    bg = background_grid(img, img.shape, box=32)
    tiles = tile_grid(img.shape, 64, 16)
    kept = tiles_with_signal(img, img.shape, tiles, bg, min_snr=5.0)
    assert 0 < len(kept) < len(tiles) // 2
    assert [t.index for t in kept] == sorted(t.index for t in kept)
    assert all(t.y0 < 80 and t.x0 < 160 for t in kept)
    # every entry counts without a significance cut: nothing is skipped
    assert tiles_with_signal(img, img.shape, tiles, bg, min_snr=0.0) == tiles
    smap = signal_map(img, img.shape, bg, 5.0, margin=0)
    assert select_tiles(tiles, smap) == [t for t in tiles if smap.touches(*t.window)]


@pytest.fixture(scope="module")
def clustered_field(tmp_path_factory):
    """A simulated 256 x 384 field whose sources all lie in its left half (the right half is
    pure noise)."""
    from caesar_mrcnn.config import load_config
    from caesar_mrcnn.sim.config import SimConfig
    from caesar_mrcnn.sim.field import simulate_field

    cfg = load_config(SimConfig, None, ["field.nx=192", "field.ny=256", "compact.n=14",
                                        "extended.n=2", "extended.n_multisland=1",
                                        "spurious.n=1"])
    sim = simulate_field(cfg, np.random.default_rng(5))
    # white noise of the simulator's rms (30 uJy/beam) beside the simulated sky
    noise = np.random.default_rng(6).normal(0.0, cfg.noise.rms_ujy * 1e-6, (256, 192))
    image = np.concatenate([sim.image, noise.astype(np.float32)], axis=1)
    path = tmp_path_factory.mktemp("clustered") / "field.fits"
    write_image(path, image, sim.header)
    return sim, path


def _same_catalogue(a, b):
    assert [(o.bbox, o.category, o.mask.tobytes()) for o in a.objects] == \
        [(o.bbox, o.category, o.mask.tobytes()) for o in b.objects]
    assert list(a.table["name"]) == list(b.table["name"])
    for col in ("peak_flux", "int_flux", "snr", "ra", "dec"):
        np.testing.assert_allclose(a.table[col], b.table[col], rtol=1e-6, equal_nan=True)


def test_skipping_gives_the_full_pass_catalogue_on_a_simulated_field(clustered_field, tmp_path):
    sim, path = clustered_field
    cfg = InferConfig(tile=64, overlap=16, bkg_box=32, min_snr=5.0)
    predict = TruthPredictor(sim.annotations, 64)
    skip = infer_image(path, predictor=predict, config=cfg, catalog=tmp_path / "skip.fits")
    full = infer_image(path, predictor=predict, config=dataclasses.replace(cfg, skip_empty=False),
                       catalog=tmp_path / "full.fits")
    assert len(full.objects) > 5
    assert skip.ntiles < full.ntiles
    _same_catalogue(skip, full)
    head_skip, head_full = (fits.getheader(tmp_path / f"{n}.fits", 1) for n in ("skip", "full"))
    assert head_skip["SKIPEMPT"] and not head_full["SKIPEMPT"]
    assert head_skip["NTILES"] == skip.ntiles < head_skip["NTILEALL"] == full.ntiles


def test_pure_noise_gives_an_empty_catalogue_without_a_model_call(tmp_path):
    path = tmp_path / "noise.fits"
    noise = np.clip(np.random.default_rng(1).normal(0, 1, (200, 200)), -3.5, 3.5)
    write_image(path, noise.astype(np.float32))
    calls = []

    def predict(batch, windows):
        calls.append(len(windows))
        raise AssertionError("no tile holds signal")

    res = infer_image(path, predictor=predict, config=InferConfig(tile=64, overlap=16))
    assert calls == [] and res.ntiles == 0 and len(res.table) == 0


@pytest.mark.slow
@pytest.mark.skipif(not ATCA.exists(), reason="real survey images absent")
def test_skipping_gives_the_full_pass_catalogue_on_a_real_image(tmp_path):
    """The shipped detector on a part of a real ATCA field with empty sky in it; and the
    masks computed for the slots that ``score_thr`` keeps only (what ``infer`` does) against
    every slot's (a predictor that is not a ``ModelPredictor`` gets every slot)."""
    pytest.importorskip("tensorflow")
    from caesar_mrcnn.detection.detector import load_detector

    with fits.open(ATCA) as hdul:
        header = hdul[0].header.copy()
        data = np.asarray(hdul[0].data, np.float32)[450:1000, 0:560]
    header["CRPIX2"] -= 450
    path = tmp_path / "atca_part.fits"
    write_image(path, data, header)
    detector = load_detector()
    skip = infer_image(path, detector=detector, config=InferConfig())
    full = infer_image(path, detector=detector, config=InferConfig(skip_empty=False))
    assert skip.ntiles < full.ntiles and len(full.objects) > 0
    _same_catalogue(skip, full)
    every_slot = dataclasses.replace(detector, predictor=lambda b, w: detector.predictor(b, w))
    _same_catalogue(infer_image(path, detector=every_slot, config=InferConfig()), skip)


def test_map_reads_the_image_strip_by_strip():
    """A mosaic is never read whole: every read is one strip of at most ``strip_pixels``."""
    img = _noise_with_sources((400, 256))
    bg = background_grid(img, img.shape, box=32)

    class Windows:
        def __init__(self):
            self.reads = []

        def read_window(self, y0, y1, x0, x1):
            self.reads.append((y1 - y0) * (x1 - x0))
            return img[y0:y1, x0:x1]

    lazy = Windows()
    strips = signal_map(lazy, img.shape, bg, 5.0, margin=4, cell=8, strip_pixels=256 * 32)
    assert len(lazy.reads) == 400 // 32 + 1 and max(lazy.reads) <= 256 * 32
    whole = signal_map(img, img.shape, bg, 5.0, margin=4, cell=8)
    np.testing.assert_array_equal(strips.cells, whole.cells)
