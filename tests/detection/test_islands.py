"""The island floor under the network: significant islands no entry covers become entries."""

from __future__ import annotations

import math

import numpy as np
import pytest
from astropy.table import Table
from astropy.wcs import WCS

from caesar_mrcnn.data.dataset import Annotation
from caesar_mrcnn.detection.detector import TruthPredictor
from caesar_mrcnn.detection.infer import InferConfig, infer_image
from caesar_mrcnn.detection.islands import (
    attach_islands,
    island_class,
    seed_significance,
    uncovered_islands,
)
from caesar_mrcnn.io.fits import write_image
from caesar_mrcnn.measure.background import background_grid
from caesar_mrcnn.measure.sources import measure_catalogs

FWHM = 5.0  # pixels
SIGMA = FWHM / (2 * math.sqrt(2 * math.log(2)))
BEAM_AREA = 2 * math.pi * SIGMA**2


def _beam_noise(shape, rng):
    """Unit-rms noise correlated as the beam."""
    from scipy import ndimage

    n = ndimage.gaussian_filter(rng.standard_normal(shape), SIGMA / math.sqrt(2))
    return n / n.std()


def _gauss(shape, y, x, peak, sy=SIGMA, sx=SIGMA):
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    return peak * np.exp(-0.5 * (((yy - y) / sy) ** 2 + ((xx - x) / sx) ** 2))


@pytest.fixture(scope="module")
def sky():
    """200 x 240 px of beam-correlated noise (rms 1) with a 50σ and an 8σ point source, a 3σ
    one, and a 40σ source four beams wide."""
    rng = np.random.default_rng(5)
    shape = (200, 240)
    img = _beam_noise(shape, rng)
    img += _gauss(shape, 50, 50, 50.0) + _gauss(shape, 50, 180, 8.0) + _gauss(shape, 150, 60, 3.0)
    img += _gauss(shape, 140, 170, 40.0, sy=4 * SIGMA, sx=4 * SIGMA)
    return img.astype(np.float32)


def _box_object(category, y0, x0, y1, x1, **attrs):
    return Annotation(category, (y0, x0, y1, x1), np.ones((y1 - y0, x1 - x0), bool), attrs)


def test_islands_found_where_nothing_covers_them(sky):
    bkg = background_grid(sky, sky.shape, box=64)
    found = uncovered_islands(sky, sky.shape, bkg, [], 5.0, BEAM_AREA)
    centres = sorted((round(float(np.mean(np.nonzero(a.mask)[0])) + a.bbox[0], -1),
                      round(float(np.mean(np.nonzero(a.mask)[1])) + a.bbox[1], -1), a.category)
                     for a in found)
    # the two point sources above 5σ and the wide one; not the 3σ source, no noise island
    assert centres == [(50, 50, "compact"), (50, 180, "compact"), (140, 170, "extended")]
    for a in found:
        assert a.attrs["origin"] == "island" and math.isnan(a.attrs["score"])
        assert a.attrs["peak_snr"] >= 5.0


def test_an_island_sharing_one_pixel_with_an_entry_is_covered(sky):
    bkg = background_grid(sky, sky.shape, box=64)
    # a one-pixel entry on the edge of the 50σ source's island, a box on the 8σ one
    edge = Annotation("compact", (50, 54, 51, 55), np.ones((1, 1), bool))
    found = uncovered_islands(sky, sky.shape, bkg, [edge, _box_object("compact", 45, 175, 55, 185)],
                              5.0, BEAM_AREA)
    assert [a.category for a in found] == ["extended"]


@pytest.mark.parametrize("seed", [9, 10])
def test_islands_match_a_whole_image_reference(seed, sky):
    """Read group by group on a cell map, the islands are those of a plain labelling of the
    whole significance image: same count, same pixels (noise alone, then with sources)."""
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    noise = _beam_noise(sky.shape, rng).astype(np.float32)
    for img in (noise, noise + sky):
        bkg = background_grid(img, img.shape, box=64)
        b, r = bkg.window(0, img.shape[0], 0, img.shape[1])
        snr = (img - b) / r
        labels, n = ndimage.label(snr >= 3.0, structure=np.ones((3, 3), bool))
        peaks = ndimage.maximum(snr, labels, np.arange(1, n + 1))
        want = {tuple(np.argwhere(labels == k + 1)[0]) for k in range(n) if peaks[k] >= 5.0}
        found = uncovered_islands(img, img.shape, bkg, [], 5.0, BEAM_AREA, cell=8)
        got = {(a.bbox[0] + int(np.argwhere(a.mask)[0][0]),
                a.bbox[1] + int(np.argwhere(a.mask)[0][1])) for a in found}
        assert got == want
    assert uncovered_islands(noise, noise.shape, bkg, [], 0.0, BEAM_AREA) == []


@pytest.mark.parametrize("snr", [6.0, 10.0, 30.0, 300.0])
def test_island_class_from_the_area_of_a_point_source(snr):
    # a point source's island above 3σ: pi sigma^2 * 2 ln(snr / 3) pixels, judged as a 10σ
    # one below 10σ
    point = 2 * math.pi * SIGMA**2 * math.log(max(snr, 10.0) / 3.0)
    assert island_class(int(point), snr, BEAM_AREA) == "compact"
    assert island_class(int(1.9 * point), snr, BEAM_AREA) == "compact"
    assert island_class(int(2.1 * point) + 1, snr, BEAM_AREA) == "extended"
    # a source three beams across covers nine times the point source's area
    assert island_class(int(9 * point), snr, BEAM_AREA) == "extended"


def test_a_tail_beyond_the_reach_of_a_covering_entry_is_a_source():
    """A compact core with a 15σ tail running 6 beams on from it, one 3σ island: the entry
    the network drew over the core alone covers the island, but the tail beyond two beams of
    its mask is added, flagged ``beside``. A 1000σ point source whose mask covers its core
    alone leaves nothing beyond that reach (its wings are under 3σ there)."""
    rng = np.random.default_rng(8)
    shape = (120, 160)
    img = _beam_noise(shape, rng)
    img += _gauss(shape, 60, 40, 200.0)
    img += _gauss(shape, 60, 62, 15.0, sy=SIGMA, sx=12.0)  # the tail, x 40..85
    img += _gauss(shape, 60, 130, 1000.0)
    img = img.astype(np.float32)
    bkg = background_grid(img, shape, box=64)
    core = Annotation("compact", (57, 37, 64, 44), np.ones((7, 7), bool))
    point = Annotation("compact", (57, 127, 64, 134), np.ones((7, 7), bool))
    assert not uncovered_islands(img, shape, bkg, [core, point], 5.0, BEAM_AREA)
    found = uncovered_islands(img, shape, bkg, [core, point], 5.0, BEAM_AREA,
                              reach_pix=2 * FWHM)
    assert len(found) == 1 and found[0].attrs["beside"]
    ys, xs = np.nonzero(found[0].mask)
    ys, xs = ys + found[0].bbox[0], xs + found[0].bbox[1]
    # every pixel of it beyond two beams of the core's mask (rows 57-63, columns 37-43)
    gap = np.hypot(np.clip(xs - 43, 0, None), np.maximum(np.clip(57 - ys, 0, None),
                                                          np.clip(ys - 63, 0, None)))
    assert gap.min() > 2 * FWHM and xs.max() > 75
    assert found[0].attrs["peak_snr"] > 10 and found[0].category == "extended"
    assert found[0].attrs["island_of"] == [0]  # the core's island
    # beside a compact core the tail is an entry of its own; beside an extended entry (the
    # network's mask over part of a galaxy) it joins that entry: one entry per source
    objects, rest = attach_islands([core, point], found, gap_pix=2 * FWHM)
    assert rest == found and objects == [core, point]
    lobe = Annotation("extended", core.bbox, core.mask, {"score": 0.8})
    objects, rest = attach_islands([lobe, point], found, gap_pix=2 * FWHM)
    assert rest == [] and objects[0].attrs["islands_joined"] == 1
    assert objects[0].area == lobe.area + found[0].area and objects[0].category == "extended"


def test_seed_significance_is_the_catalogues_snr_pix(sky):
    bkg = background_grid(sky, sky.shape, box=64)
    objects = [_box_object("compact", 40, 40, 61, 61), _box_object("extended", 120, 150, 161, 191)]
    table, _ = measure_catalogs(objects, sky, sky.shape, beam_area_pix=BEAM_AREA,
                                background=bkg)
    np.testing.assert_allclose(seed_significance(objects, sky, bkg), table["snr_pix"],
                               rtol=1e-5)


def test_islands_inside_an_extended_box_join_it():
    host = _box_object("extended", 10, 10, 30, 60, score=0.9, probs=[0.0, 0.1, 0.8, 0.0, 0.0])
    host.mask[:, 20:30] = False  # two lobes; the core between them left out by the mask
    core = Annotation("compact", (15, 32, 21, 38), np.ones((6, 6), bool), {"origin": "island"})
    outside = Annotation("compact", (40, 40, 45, 45), np.ones((5, 5), bool),
                         {"origin": "island"})
    half_in = Annotation("compact", (26, 0, 34, 8), np.ones((8, 8), bool), {"origin": "island"})
    objects, rest = attach_islands([host], [core, outside, half_in])
    assert rest == [outside, half_in]
    joined = objects[0]
    assert joined.category == "extended" and joined.attrs["islands_joined"] == 1
    assert joined.attrs["score"] == 0.9 and joined.bbox == host.bbox
    assert joined.area == host.area + core.area
    # an island beyond the box joins when it comes within the gap of the mask, not farther
    tip = Annotation("compact", (33, 40, 36, 44), np.ones((3, 4), bool), {"origin": "island"})
    objects, rest = attach_islands([host], [tip], gap_pix=3.0)  # 4 rows below the mask
    assert rest == [tip]
    objects, rest = attach_islands([host], [tip], gap_pix=4.0)
    assert rest == [] and objects[0].area == host.area + tip.area
    assert objects[0].bbox == (10, 10, 36, 60)
    # a compact entry takes no island
    objects, rest = attach_islands([_box_object("compact", 10, 10, 30, 60)], [core])
    assert rest == [core] and objects[0].attrs.get("islands_joined") is None


def test_infer_reports_what_a_blind_network_leaves_out(sky, tmp_path):
    """A network that sees nothing: the catalogue holds the significant islands, flagged, with
    no network probabilities; with ``islands`` off it is empty."""
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---SIN", "DEC--SIN"]
    w.wcs.crval, w.wcs.crpix = [150.0, 2.0], [120.0, 100.0]
    w.wcs.cdelt = [-1.5 / 3600, 1.5 / 3600]
    header = w.to_header()
    header["BMAJ"] = header["BMIN"] = FWHM * 1.5 / 3600
    header["BPA"], header["BUNIT"] = 0.0, "JY/BEAM"
    path = tmp_path / "sky.fits"
    write_image(path, sky * 1e-4, header)
    blind = InferConfig(tile=128, overlap=32)
    res = infer_image(path, predictor=TruthPredictor([], 128), config=blind,
                      catalog=tmp_path / "c.fits")
    table = Table.read(tmp_path / "c.fits", hdu=1)
    assert len(table) == 3 and table.meta["NISLANDS"] == 3
    assert table["flag_island"].all()
    assert np.isnan(np.ma.filled(table["score"], np.nan)).all()
    assert np.isnan(np.ma.filled(table["p_compact"], np.nan)).all()
    assert sorted(table["class"]) == ["compact", "compact", "extended"]
    assert (table["snr_pix"] >= 5).all()
    assert len(res.objects) == 3
    off = infer_image(path, predictor=TruthPredictor([], 128),
                      config=InferConfig(tile=128, overlap=32, islands=False))
    assert len(off.table) == 0
